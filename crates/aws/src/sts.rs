//! AWS STS `AssumeRole`, `AssumeRoleWithWebIdentity` and `GetSessionToken` (query protocol,
//! XML answers).

use crate::keys::Credentials;
use crate::{endpoint_str as endpoint, send_signed_str as send_signed};

const VERSION: &str = "2011-06-15";

/// `AssumeRole` with `base` credentials (sops: session name `sops@<hostname>`; ESO adds
/// `ExternalId`).
pub(crate) async fn assume_role(
    client: &reqwest::Client,
    url: &str,
    region: &str,
    base: &Credentials,
    role: crate::RoleRequest<'_>,
) -> Result<Credentials, String> {
    let mut pairs = vec![
        ("Action", "AssumeRole"),
        ("Version", VERSION),
        ("RoleArn", role.role_arn),
        ("RoleSessionName", role.session_name),
    ];
    if let Some(id) = role.external_id.filter(|id| !id.is_empty()) {
        pairs.push(("ExternalId", id));
    }
    let (status, text) = send_form(client, url, base, region, &pairs).await?;
    parse_credentials(status, &text, "AssumeRole")
}

/// `AssumeRoleWithWebIdentity` (unsigned; the token is the proof).
pub(crate) async fn assume_role_with_web_identity(
    client: &reqwest::Client,
    region: &str,
    role_arn: &str,
    session_name: &str,
    token: &str,
) -> Result<Credentials, String> {
    let body = zeroize::Zeroizing::new(form(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", VERSION),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
        ("WebIdentityToken", token),
    ]));
    let url = endpoint("sts", region)?;
    let response = client
        .post(url.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.as_bytes().to_vec())
        .send()
        .await
        .map_err(|e| format!("AssumeRoleWithWebIdentity: {}", e.without_url()))?;
    let status = response.status().as_u16();
    let text = zeroize::Zeroizing::new(
        response
            .text()
            .await
            .map_err(|e| format!("AssumeRoleWithWebIdentity: {}", e.without_url()))?,
    );
    parse_credentials(status, &text, "AssumeRoleWithWebIdentity")
}

/// `GetSessionToken` with `base` credentials: the new credentials and their `Expiration` text.
pub(crate) async fn get_session_token(
    client: &reqwest::Client,
    url: &str,
    region: &str,
    base: &Credentials,
    params: &crate::SessionTokenParams,
) -> Result<(Credentials, String), String> {
    let duration = params.duration_seconds.map(|d| d.to_string());
    let mut pairs = vec![("Action", "GetSessionToken"), ("Version", VERSION)];
    if let Some(d) = &duration {
        pairs.push(("DurationSeconds", d));
    }
    if let Some(s) = params.serial_number.as_deref() {
        pairs.push(("SerialNumber", s));
    }
    if let Some(t) = params.token_code.as_deref() {
        pairs.push(("TokenCode", t));
    }
    let (status, text) = send_form(client, url, base, region, &pairs).await?;
    let c = parse_credentials(status, &text, "GetSessionToken")?;
    let expiration = xml_value(&text, "Expiration")
        .ok_or_else(|| "STS GetSessionToken: response has no Expiration".to_owned())?;
    Ok((c, expiration))
}

/// POSTs the form `pairs` to STS at `url`, signed with `base`: the status and the body.
async fn send_form(
    client: &reqwest::Client,
    url: &str,
    base: &Credentials,
    region: &str,
    pairs: &[(&str, &str)],
) -> Result<(u16, zeroize::Zeroizing<String>), String> {
    send_signed(
        client,
        url,
        base,
        region,
        "sts",
        &[("content-type", "application/x-www-form-urlencoded")],
        form(pairs).into_bytes(),
    )
    .await
}

fn parse_credentials(status: u16, text: &str, action: &str) -> Result<Credentials, String> {
    if !(200..300).contains(&status) {
        let code = xml_value(text, "Code").unwrap_or_default();
        let message = xml_value(text, "Message").unwrap_or_default();
        return Err(format!("STS {action}: HTTP {status}: {code} {message}"));
    }
    match (
        xml_value(text, "AccessKeyId"),
        xml_value(text, "SecretAccessKey"),
        xml_value(text, "SessionToken"),
    ) {
        (Some(id), Some(secret), token) => Ok(Credentials::new(
            &id,
            &zeroize::Zeroizing::new(secret),
            token.as_deref(),
        )),
        _ => Err(format!("STS {action}: response has no credentials")),
    }
}

/// The text of the first `<tag>…</tag>`, XML entities decoded.
fn xml_value(text: &str, tag: &str) -> Option<String> {
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + text[start..].find(&format!("</{tag}>"))?;
    Some(
        text[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers() {
        let ok = "<AssumeRoleResponse><AssumeRoleResult><Credentials>\
            <AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s/e+c&amp;</SecretAccessKey>\
            <SessionToken>tok</SessionToken></Credentials></AssumeRoleResult></AssumeRoleResponse>";
        let c = parse_credentials(200, ok, "AssumeRole").unwrap();
        assert_eq!(c.access_key_id, "ASIA1");
        assert_eq!(c.secret_access_key.expose(), "s/e+c&");
        let err = parse_credentials(
            403,
            "<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>",
            "AssumeRole",
        )
        .unwrap_err();
        assert!(err.contains("AccessDenied"), "{err}");
        assert!(parse_credentials(200, "<x/>", "AssumeRole").is_err());
        assert_eq!(
            form(&[("RoleArn", "arn:aws:iam::1:role/a b")]),
            "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b"
        );
    }
}
