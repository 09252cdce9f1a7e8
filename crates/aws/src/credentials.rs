//! AWS credentials: the standard chain, as the AWS SDKs resolve it (the parts sops users meet).
//!
//! Order: environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) unless a
//! profile was named; the shared files (`AWS_SHARED_CREDENTIALS_FILE` / `~/.aws/credentials`,
//! `AWS_CONFIG_FILE` / `~/.aws/config`) for the profile (`--aws-profile`, `AWS_PROFILE`,
//! `default`) with static keys, `credential_process`, or `role_arn` + `source_profile`; web
//! identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, EKS IRSA); container credentials
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` / `…_RELATIVE_URI`, ECS and EKS Pod Identity); EC2
//! instance metadata (IMDSv2).

use std::collections::HashMap;
use std::path::PathBuf;

pub use crate::keys::{Credentials, Secret};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// An INI file as the AWS shared files use it: `[section]`, `key = value`, `#`/`;` comments.
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    out
}

/// The merged settings of one profile from the credentials and config files.
#[derive(Default)]
pub(crate) struct Profile {
    values: HashMap<String, String>,
}

impl Profile {
    pub(crate) fn load(name: &str) -> Result<Option<Self>, String> {
        let credentials_file = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".aws/credentials")));
        let config_file = env("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".aws/config")));
        let read = |path: &Option<PathBuf>| -> Result<Option<String>, String> {
            let Some(path) = path else { return Ok(None) };
            match std::fs::read_to_string(path) {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            }
        };
        let mut values = HashMap::new();
        let mut found = false;
        if let Some(text) = read(&config_file)? {
            let ini = parse_ini(&text);
            let section = if name == "default" {
                ini.get("default").or_else(|| ini.get("profile default"))
            } else {
                ini.get(&format!("profile {name}"))
            };
            if let Some(s) = section {
                found = true;
                values.extend(s.clone());
            }
        }
        if let Some(text) = read(&credentials_file)?
            && let Some(s) = parse_ini(&text).get(name)
        {
            found = true;
            values.extend(s.clone());
        }
        Ok(found.then_some(Self { values }))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Resolves credentials for `profile` (or the chain when `None`). `sts` is used for profiles
/// with `role_arn` and for web identity.
pub(crate) async fn resolve(
    profile: Option<&str>,
    client: &reqwest::Client,
    region: &str,
) -> Result<Credentials, String> {
    if profile.is_none()
        && let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
    {
        return Ok(Credentials::new(
            &id,
            &secret,
            env("AWS_SESSION_TOKEN").as_deref(),
        ));
    }
    let name = profile
        .map(str::to_owned)
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_owned());
    if let Some(p) = Profile::load(&name)? {
        return Box::pin(from_profile(&name, &p, client, region, 0)).await;
    }
    if profile.is_some() || env("AWS_PROFILE").is_some() {
        return Err(format!(
            "AWS profile {name:?} not found in the shared config files"
        ));
    }
    if let (Some(token_file), Some(role)) =
        (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN"))
    {
        let token = std::fs::read_to_string(&token_file)
            .map_err(|e| format!("cannot read AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: {e}"))?;
        let session = env("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "hush".to_owned());
        return crate::sts::assume_role_with_web_identity(
            client,
            region,
            &role,
            &session,
            token.trim(),
        )
        .await;
    }
    if env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
    {
        return container(client).await;
    }
    imds(client).await.map_err(|e| {
        format!("no AWS credentials found (environment, shared files, web identity, container, instance metadata): {e}")
    })
}

async fn from_profile(
    name: &str,
    p: &Profile,
    client: &reqwest::Client,
    region: &str,
    depth: usize,
) -> Result<Credentials, String> {
    if depth > 4 {
        return Err(format!(
            "AWS profile {name:?}: source_profile chain too long"
        ));
    }
    if let Some(role) = p.get("role_arn") {
        let base = if let Some(source) = p.get("source_profile") {
            let sp = Profile::load(source)?.ok_or_else(|| {
                format!("AWS profile {name:?}: source_profile {source:?} not found")
            })?;
            if source == name {
                static_keys(name, &sp)?
            } else {
                Box::pin(from_profile(source, &sp, client, region, depth + 1)).await?
            }
        } else if let Some(token_file) = p.get("web_identity_token_file") {
            let token = std::fs::read_to_string(token_file)
                .map_err(|e| format!("AWS profile {name:?}: cannot read {token_file}: {e}"))?;
            let session = p.get("role_session_name").unwrap_or("hush");
            return crate::sts::assume_role_with_web_identity(
                client,
                region,
                role,
                session,
                token.trim(),
            )
            .await;
        } else {
            return Err(format!(
                "AWS profile {name:?}: role_arn needs source_profile or web_identity_token_file"
            ));
        };
        let session = p.get("role_session_name").unwrap_or("hush");
        let url = crate::endpoint_str("sts", region)?;
        let role = crate::RoleRequest {
            role_arn: role,
            session_name: session,
            external_id: None,
        };
        return crate::sts::assume_role(client, &url, region, &base, role).await;
    }
    if let Some(cmd) = p.get("credential_process") {
        return credential_process(name, cmd);
    }
    static_keys(name, p)
}

fn static_keys(name: &str, p: &Profile) -> Result<Credentials, String> {
    match (p.get("aws_access_key_id"), p.get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Credentials::new(id, secret, p.get("aws_session_token"))),
        _ => Err(format!(
            "AWS profile {name:?} has no aws_access_key_id/aws_secret_access_key"
        )),
    }
}

/// Credentials from JSON `{AccessKeyId, SecretAccessKey, Token|SessionToken}`.
fn from_json(v: &serde_json::Value, source: &str) -> Result<Credentials, String> {
    let id = v["AccessKeyId"].as_str();
    let secret = v["SecretAccessKey"].as_str();
    let token = v["Token"].as_str().or(v["SessionToken"].as_str());
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Credentials::new(id, secret, token)),
        _ => Err(format!(
            "{source}: response has no AccessKeyId/SecretAccessKey"
        )),
    }
}

fn credential_process(name: &str, cmd: &str) -> Result<Credentials, String> {
    let args = shlex::split(cmd)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("AWS profile {name:?}: cannot parse credential_process"))?;
    let out = std::process::Command::new(&args[0])
        .args(&args[1..])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("AWS profile {name:?}: cannot run credential_process: {e}"))?;
    let stdout = zeroize::Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(format!(
            "AWS profile {name:?}: credential_process failed: {}",
            out.status
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&stdout)
        .map_err(|_| format!("AWS profile {name:?}: credential_process did not print JSON"))?;
    from_json(&v, "credential_process")
}

async fn container(client: &reqwest::Client) -> Result<Credentials, String> {
    let url = match env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        Some(rel) => format!("http://169.254.170.2{rel}"),
        None => env("AWS_CONTAINER_CREDENTIALS_FULL_URI").unwrap_or_default(),
    };
    let mut request = client.get(&url).timeout(std::time::Duration::from_secs(5));
    let token = match env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(f) => Some(
            std::fs::read_to_string(&f)
                .map_err(|e| {
                    format!("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {f}: {e}")
                })?
                .trim()
                .to_owned(),
        ),
        None => env("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    if let Some(t) = token {
        request = request.header("Authorization", t);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("container credentials: {}", e.without_url()))?;
    let status = response.status();
    let body = zeroize::Zeroizing::new(
        response
            .bytes()
            .await
            .map_err(|e| format!("container credentials: {}", e.without_url()))?
            .to_vec(),
    );
    if !status.is_success() {
        return Err(format!("container credentials: HTTP {status}"));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| "container credentials: response is not JSON".to_owned())?;
    from_json(&v, "container credentials")
}

async fn imds(client: &reqwest::Client) -> Result<Credentials, String> {
    if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err("instance metadata disabled".into());
    }
    let base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|| "http://169.254.169.254".to_owned());
    let base = base.trim_end_matches('/');
    let timeout = std::time::Duration::from_secs(1);
    let err = |e: reqwest::Error| format!("instance metadata: {}", e.without_url());
    let token = client
        .put(format!("{base}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "21600")
        .timeout(timeout)
        .send()
        .await
        .map_err(err)?
        .text()
        .await
        .map_err(err)?;
    let token = zeroize::Zeroizing::new(token);
    let path = format!("{base}/latest/meta-data/iam/security-credentials/");
    let role = client
        .get(&path)
        .header("X-aws-ec2-metadata-token", token.as_str())
        .timeout(timeout)
        .send()
        .await
        .map_err(err)?
        .text()
        .await
        .map_err(err)?;
    let role = role.lines().next().unwrap_or_default().trim().to_owned();
    if role.is_empty() {
        return Err("instance metadata: no instance role".into());
    }
    let body = zeroize::Zeroizing::new(
        client
            .get(format!("{path}{role}"))
            .header("X-aws-ec2-metadata-token", token.as_str())
            .timeout(timeout)
            .send()
            .await
            .map_err(err)?
            .bytes()
            .await
            .map_err(err)?
            .to_vec(),
    );
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| "instance metadata: response is not JSON".to_owned())?;
    from_json(&v, "instance metadata")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shared_files() {
        let ini = parse_ini(
            "# c\n[default]\naws_access_key_id = AKIA1\n\n[profile dev]\nregion=eu-west-1\n; x\nrole_arn = arn:aws:iam::1:role/r\n",
        );
        assert_eq!(ini["default"]["aws_access_key_id"], "AKIA1");
        assert_eq!(ini["profile dev"]["region"], "eu-west-1");
        assert_eq!(ini["profile dev"]["role_arn"], "arn:aws:iam::1:role/r");
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let c = Credentials::new("AKIA", "very-secret", Some("tok-secret"));
        let d = format!("{c:?}");
        assert!(d.contains("AKIA") && !d.contains("secret"), "{d}");
    }

    #[test]
    fn json_credentials() {
        let v = serde_json::json!({"AccessKeyId": "A", "SecretAccessKey": "S", "Token": "T"});
        let c = from_json(&v, "x").unwrap();
        assert_eq!(c.access_key_id, "A");
        assert_eq!(c.session_token.unwrap().expose(), "T");
        assert!(from_json(&serde_json::json!({}), "x").is_err());
    }
}
