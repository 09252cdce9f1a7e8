//! AWS Signature Version 4 for the few POST requests hush makes (KMS, STS).
//! Spec: <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::keys::Credentials;

type HmacSha256 = Hmac<Sha256>;

/// A request to sign: method, URL parts and the headers to sign (besides `host`, `x-amz-date`
/// and `x-amz-security-token`, which are added).
pub struct Request<'a> {
    /// The HTTP method (`POST`).
    pub method: &'a str,
    /// The host name the request goes to (the signed `host` header).
    pub host: &'a str,
    /// The path, already URI-encoded (`/` for KMS and STS).
    pub path: &'a str,
    /// Extra headers, lower-case names.
    pub headers: &'a [(&'a str, &'a str)],
    /// The request body (its SHA-256 is signed).
    pub body: &'a [u8],
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may hold key material or secret values.
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Returns the headers to add: `x-amz-date`, optionally `x-amz-security-token`, and
/// `authorization`. `amz_date` is `YYYYMMDDTHHMMSSZ`.
pub fn sign(
    request: &Request<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Vec<(&'static str, String)> {
    let date = &amz_date[..8.min(amz_date.len())];
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    headers.push(("host".into(), request.host.to_owned()));
    headers.push(("x-amz-date".into(), amz_date.to_owned()));
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".into(), token.expose().to_owned()));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical_request = format!(
        "{}\n{}\n\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.path,
        hex::encode(Sha256::digest(request.body))
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let secret = zeroize::Zeroizing::new(format!("AWS4{}", credentials.secret_access_key.expose()));
    let k_date = hmac(secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    let mut out = vec![("x-amz-date", amz_date.to_owned())];
    if let Some(token) = &credentials.session_token {
        out.push(("x-amz-security-token", token.expose().to_owned()));
    }
    out.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC), without a date library.
pub fn amz_date(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil-from-days (Howard Hinnant), valid for the Unix era.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Secret;

    /// AWS SigV4 test suite, `post-x-www-form-urlencoded` and `get-vanilla` (credentials
    /// AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830T123600Z, us-east-1,
    /// service "service").
    #[test]
    fn aws_test_suite_vectors() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        let get = sign(
            &Request {
                method: "GET",
                host: "example.amazonaws.com",
                path: "/",
                headers: &[],
                body: b"",
            },
            &creds,
            "us-east-1",
            "service",
            "20150830T123600Z",
        );
        assert_eq!(
            get[1].1,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        let post = sign(
            &Request {
                method: "POST",
                host: "example.amazonaws.com",
                path: "/",
                headers: &[("content-type", "application/x-www-form-urlencoded")],
                body: b"Param1=value1",
            },
            &creds,
            "us-east-1",
            "service",
            "20150830T123600Z",
        );
        assert_eq!(
            post[1].1,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    #[test]
    fn formats_amz_dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    }
}
