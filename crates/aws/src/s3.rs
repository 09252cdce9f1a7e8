//! S3 `PutObject`, for `sops publish` to an `s3_bucket` destination.
//!
//! Addressing follows the AWS SDK: virtual-hosted (`https://<bucket>.s3.<region>.amazonaws.com`)
//! on AWS when the bucket name is a DNS label without dots, path-style (`<endpoint>/<bucket>`)
//! otherwise and for every custom endpoint (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`: MinIO,
//! moto, LocalStack). The payload hash is signed (`x-amz-content-sha256`), as S3 requires.
//!
//! Bucket names and keys come from configuration files a repository author writes: a `.` or
//! `..` segment (which a URL parser would collapse, reaching another bucket) is refused, as are
//! names outside S3's rules.

use sha2::{Digest as _, Sha256};

use crate::keys::Credentials;
use crate::{AwsError, Signed};

/// S3's limit on the length of an object key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Uploads `body` as `key` into `bucket` in `region` (credentials already resolved).
pub async fn put_object(
    client: &reqwest::Client,
    credentials: &Credentials,
    region: &str,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<(), AwsError> {
    check_bucket(bucket).map_err(AwsError::Config)?;
    check_key(key).map_err(AwsError::Config)?;
    let url = object_url(bucket, key, region, |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
    .map_err(AwsError::Config)?;
    let digest = hex::encode(Sha256::digest(&body));
    let headers = [("x-amz-content-sha256", digest.as_str())];
    let request = Signed {
        method: "PUT",
        url: &url,
        headers: &headers,
        body,
    };
    let (status, text) = crate::send_signed_request(client, request, credentials, region, "s3")
        .await
        .map_err(|message| AwsError::Transport {
            service: "s3".into(),
            message,
        })?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    // S3 errors are XML: `<Error><Code>NoSuchBucket</Code><Message>…</Message></Error>`.
    Err(AwsError::Api {
        action: "PutObject".into(),
        status,
        code: xml_text(&text, "Code").unwrap_or_default(),
        message: xml_text(&text, "Message").unwrap_or_default(),
    })
}

/// The URL of `key` in `bucket`; `env` stands for the process environment.
pub fn object_url(
    bucket: &str,
    key: &str,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let custom = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL"));
    let path = encode_key(key);
    match custom {
        Some(endpoint) => {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(format!(
                    "endpoint {endpoint:?} must start with http:// or https://"
                ));
            }
            Ok(format!(
                "{}/{}/{path}",
                endpoint.trim_end_matches('/'),
                encode_key(bucket)
            ))
        }
        None => {
            let aws = crate::endpoint_with("s3", region, |_| None)?;
            if bucket.contains('.') {
                Ok(format!("{aws}/{bucket}/{path}"))
            } else {
                let host = aws.trim_start_matches("https://");
                Ok(format!("https://{bucket}.{host}/{path}"))
            }
        }
    }
}

/// S3's canonical URI encoding: every byte but `A-Za-z0-9-._~` and `/` as `%XX`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A bucket name S3 accepts: 3 to 63 of `a-z 0-9 . -` (and the `A-Z _` of legacy US buckets),
/// starting and ending with a letter or digit.
pub fn check_bucket(bucket: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && bucket
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && bucket
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "S3 bucket {bucket:?} is not a valid bucket name (3 to 63 letters, digits, '.' and \
             '-', starting and ending with a letter or digit)"
        ))
    }
}

/// An object key hush writes: 1 to [`MAX_KEY_BYTES`] bytes, no control characters, no empty,
/// `.` or `..` segment after the first character.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "S3 key {key:?} must be 1 to {MAX_KEY_BYTES} bytes long"
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(format!("S3 key {key:?} has control characters"));
    }
    if key
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(format!(
            "S3 key {key:?} has a '.' or '..' segment (an HTTP client would collapse it)"
        ));
    }
    Ok(())
}

/// The text of the first `<tag>…</tag>` in `xml` (entities left as they are).
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(xml[start..start + len].chars().take(512).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn urls_are_virtual_hosted_on_aws_and_path_style_elsewhere() {
        let none = env_of(&[]);
        assert_eq!(
            object_url("my-bucket", "sops/app.yaml", "eu-west-1", &none).unwrap(),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/sops/app.yaml"
        );
        assert_eq!(
            object_url("my.bucket", "a b+c", "eu-west-1", &none).unwrap(),
            "https://s3.eu-west-1.amazonaws.com/my.bucket/a%20b%2Bc"
        );
        let moto = env_of(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/")]);
        assert_eq!(
            object_url("b1", "p/x.yaml", "us-east-1", &moto).unwrap(),
            "http://127.0.0.1:5000/b1/p/x.yaml"
        );
        let s3 = env_of(&[
            ("AWS_ENDPOINT_URL", "http://all:1"),
            ("AWS_ENDPOINT_URL_S3", "http://s3:2"),
        ]);
        assert_eq!(
            object_url("b1", "k", "us-east-1", &s3).unwrap(),
            "http://s3:2/b1/k"
        );
        let bad = env_of(&[("AWS_ENDPOINT_URL_S3", "s3:2")]);
        assert!(object_url("b1", "k", "us-east-1", &bad).is_err());
    }

    #[test]
    fn hostile_buckets_and_keys_are_refused() {
        for ok in ["abc", "my-bucket.v2", "Legacy_Bucket"] {
            assert!(check_bucket(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "-ab",
            "ab-",
            "a/b",
            "a..b",
            "a b",
            &"x".repeat(64),
        ] {
            assert!(check_bucket(bad).is_err(), "{bad:?}");
        }
        for ok in ["a", "dir/file.yaml", "dir/.hidden", "a..b"] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../other/x", "a/./b", "a/..", "a\nb", &"k".repeat(1025)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn s3_error_documents_give_code_and_message() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(xml_text(xml, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(
            xml_text(xml, "Message").as_deref(),
            Some("The specified bucket does not exist")
        );
        assert_eq!(xml_text("<html/>", "Code"), None);
    }
}
