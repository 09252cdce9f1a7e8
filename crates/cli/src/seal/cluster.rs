//! Talking to the sealing controller: through the API server's service proxy (kubeseal's way)
//! with the kubectl connection flags, or directly with hush's `--controller-url`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::go_bool;

/// The kubectl connection flags kubeseal takes (client-go `RecommendedConfigOverrideFlags`).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct KubeFlags {
    /// Path to a kube config. Only required if out-of-cluster
    #[arg(long, env = "SEALED_SECRETS_KUBECONFIG", value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use
    #[arg(long, env = "SEALED_SECRETS_CONTEXT")]
    pub(crate) context: Option<String>,
    /// The name of the kubeconfig cluster to use
    #[arg(long, env = "SEALED_SECRETS_CLUSTER")]
    pub(crate) cluster: Option<String>,
    /// The name of the kubeconfig user to use
    #[arg(long, env = "SEALED_SECRETS_USER")]
    pub(crate) user: Option<String>,
    /// If present, the namespace scope for this CLI request
    #[arg(short = 'n', long, env = "SEALED_SECRETS_NAMESPACE")]
    pub(crate) namespace: Option<String>,
    /// The address and port of the Kubernetes API server
    #[arg(long, env = "SEALED_SECRETS_SERVER")]
    pub(crate) server: Option<String>,
    /// Bearer token for authentication to the API server
    #[arg(long, env = "SEALED_SECRETS_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Username to impersonate for the operation
    #[arg(long = "as", env = "SEALED_SECRETS_AS")]
    pub(crate) as_user: Option<String>,
    /// Group to impersonate for the operation, this flag can be repeated to specify multiple groups.
    #[arg(long = "as-group", env = "SEALED_SECRETS_AS_GROUP")]
    pub(crate) as_group: Vec<String>,
    /// UID to impersonate for the operation
    #[arg(long = "as-uid", env = "SEALED_SECRETS_AS_UID")]
    pub(crate) as_uid: Option<String>,
    /// Path to a cert file for the certificate authority
    #[arg(long, env = "SEALED_SECRETS_CERTIFICATE_AUTHORITY")]
    pub(crate) certificate_authority: Option<PathBuf>,
    /// Path to a client certificate file for TLS
    #[arg(long, env = "SEALED_SECRETS_CLIENT_CERTIFICATE")]
    pub(crate) client_certificate: Option<String>,
    /// Path to a client key file for TLS
    #[arg(long, env = "SEALED_SECRETS_CLIENT_KEY")]
    pub(crate) client_key: Option<String>,
    /// If true, the server's certificate will not be checked for validity. This will make your HTTPS connections insecure
    #[arg(long, env = "SEALED_SECRETS_INSECURE_SKIP_TLS_VERIFY", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    pub(crate) insecure_skip_tls_verify: bool,
    /// If provided, this name will be used to validate server certificate. If this is not provided, hostname used to contact the server is used.
    #[arg(long, env = "SEALED_SECRETS_TLS_SERVER_NAME")]
    pub(crate) tls_server_name: Option<String>,
    /// Username for basic authentication to the API server
    #[arg(long, env = "SEALED_SECRETS_USERNAME")]
    pub(crate) username: Option<String>,
    /// Password for basic authentication to the API server
    #[arg(long, env = "SEALED_SECRETS_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,
    /// The length of time to wait before giving up on a single server request. Non-zero values should contain a corresponding time unit (e.g. 1s, 2m, 3h). A value of zero means don't timeout requests.
    #[arg(long, env = "SEALED_SECRETS_REQUEST_TIMEOUT", default_value = "0")]
    pub(crate) request_timeout: String,
    /// If provided, this URL will be used to connect via proxy
    #[arg(long, env = "SEALED_SECRETS_PROXY_URL")]
    pub(crate) proxy_url: Option<String>,
    /// If true, opt-out of response compression for all requests to the server
    #[arg(long, env = "SEALED_SECRETS_DISABLE_COMPRESSION", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = go_bool)]
    pub(crate) disable_compression: bool,
}

impl KubeFlags {
    /// The namespace as client-go's `clientConfig.Namespace()`: `-n` (explicit), else the
    /// context's namespace, else `default`; an error when there is no kubeconfig at all.
    pub(crate) fn namespace(&self) -> Result<(String, bool), String> {
        if let Some(ns) = self.namespace.as_ref().filter(|n| !n.is_empty()) {
            return Ok((ns.clone(), true));
        }
        let kubeconfig = match &self.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|_| {
            "invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER environment variable"
                .to_owned()
        })?;
        let ns = self
            .context
            .clone()
            .or(kubeconfig.current_context.clone())
            .and_then(|name| {
                kubeconfig
                    .contexts
                    .into_iter()
                    .find(|c| c.name == name)?
                    .context?
                    .namespace
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        Ok((ns, false))
    }

    async fn config(&self) -> anyhow::Result<kube::Config> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        let mut config = match (&self.kubeconfig, &self.server) {
            (Some(path), _) => {
                let kc = Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &options).await?
            }
            (None, server) => match kube::Config::from_kubeconfig(&options).await {
                Ok(c) => c,
                Err(e) => match server {
                    Some(s) => kube::Config::new(s.parse().context("invalid --server URL")?),
                    None => {
                        bail!("invalid configuration: no configuration has been provided ({e})")
                    }
                },
            },
        };
        if let Some(server) = &self.server {
            config.cluster_url = server.parse().context("invalid --server URL")?;
        }
        if let Some(ca) = &self.certificate_authority {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            let certs = pem::parse_many(&pem).context("invalid --certificate-authority PEM")?;
            config.root_cert = Some(certs.into_iter().map(|c| c.into_contents()).collect());
        }
        if self.insecure_skip_tls_verify {
            config.accept_invalid_certs = true;
        }
        if let Some(name) = &self.tls_server_name {
            config.tls_server_name = Some(name.clone());
        }
        if let Some(proxy) = &self.proxy_url {
            config.proxy_url = Some(proxy.parse().context("invalid --proxy-url")?);
        }
        config.disable_compression |= self.disable_compression;
        let auth = &mut config.auth_info;
        if let Some(token) = &self.token {
            auth.token = Some(secrecy::SecretString::from(token.clone()));
            auth.token_file = None;
            auth.exec = None;
            auth.auth_provider = None;
        }
        if let Some(user) = &self.username {
            auth.username = Some(user.clone());
        }
        if let Some(password) = &self.password {
            auth.password = Some(secrecy::SecretString::from(password.clone()));
        }
        if let Some(cert) = &self.client_certificate {
            auth.client_certificate = Some(cert.clone());
            auth.client_certificate_data = None;
        }
        if let Some(key) = &self.client_key {
            auth.client_key = Some(key.clone());
            auth.client_key_data = None;
        }
        if let Some(user) = &self.as_user {
            auth.impersonate = Some(user.clone());
        }
        if !self.as_group.is_empty() {
            auth.impersonate_groups = Some(self.as_group.clone());
        }
        if let Some(uid) = &self.as_uid {
            auth.impersonate_uid = Some(uid.clone());
        }
        if let Some(timeout) = parse_go_duration(&self.request_timeout)? {
            config.read_timeout = Some(timeout);
            config.connect_timeout = Some(timeout);
        }
        Ok(config)
    }
}

/// Go's `time.ParseDuration` for the forms kubectl users write (`0`, `30s`, `1m30s`, `500ms`);
/// zero means no timeout.
fn parse_go_duration(text: &str) -> anyhow::Result<Option<Duration>> {
    let text = text.trim();
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // kubectl accepts a bare integer as seconds.
        return Ok(Some(Duration::from_secs(text.parse()?)));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = num
            .parse()
            .with_context(|| format!("invalid duration {text:?}"))?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => bail!("invalid duration {text:?}: unknown unit {unit:?}"),
        };
        total += value * scale;
        rest = tail;
    }
    if total <= 0.0 {
        return Ok(None);
    }
    // Go's ParseDuration refuses what does not fit in an int64 of nanoseconds; a bigger value
    // must be an error here too, not a panic in Duration::from_secs_f64.
    if total > i64::MAX as f64 / 1e9 {
        bail!("invalid duration {text:?}: too large");
    }
    Duration::try_from_secs_f64(total)
        .with_context(|| format!("invalid duration {text:?}"))
        .map(Some)
}

/// Where the controller's HTTP API is reached.
pub(crate) enum Controller {
    /// Through the API server: `/api/v1/namespaces/<ns>/services/http:<name>:<port>/proxy`.
    Proxy {
        client: kube::Client,
        namespace: String,
        name: String,
    },
    /// Directly (hush `--controller-url`): `<url>/v1/...`.
    Direct { client: kube::Client },
}

/// A failed controller call: the HTTP status when the server answered, and the message.
#[derive(Debug)]
pub(crate) struct CallError {
    pub(crate) status: Option<u16>,
    pub(crate) message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<kube::Error> for CallError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => CallError {
                status: Some(status.code),
                message: if status.message.is_empty() {
                    format!("the server returned HTTP {}", status.code)
                } else {
                    status.message.clone()
                },
            },
            other => CallError {
                status: None,
                message: other.to_string(),
            },
        }
    }
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Controller::Proxy {
                namespace, name, ..
            } => write!(f, "Controller::Proxy({namespace}/{name})"),
            Controller::Direct { .. } => f.write_str("Controller::Direct"),
        }
    }
}

impl Controller {
    /// Connects through the API server (kubeseal) or directly (`--controller-url`).
    pub(crate) async fn connect(
        flags: &KubeFlags,
        controller_url: Option<&str>,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<Self> {
        if let Some(url) = controller_url {
            let uri: http::Uri = url
                .trim_end_matches('/')
                .parse()
                .with_context(|| format!("invalid --controller-url {url:?}"))?;
            let client = kube::Client::try_from(kube::Config::new(uri))?;
            return Ok(Controller::Direct { client });
        }
        let client = kube::Client::try_from(flags.config().await?)?;
        Ok(Controller::Proxy {
            client,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    fn client(&self) -> &kube::Client {
        match self {
            Controller::Proxy { client, .. } | Controller::Direct { client } => client,
        }
    }

    /// The path prefix under which `/v1/...` lives. Through the proxy this first reads the
    /// service's first port name, as kubeseal does.
    async fn base(&self) -> anyhow::Result<String> {
        match self {
            Controller::Direct { .. } => Ok(String::new()),
            Controller::Proxy {
                client,
                namespace,
                name,
            } => {
                let path = format!("/api/v1/namespaces/{namespace}/services/{name}");
                let req = http::Request::get(path).body(Vec::new())?;
                let service: serde_json::Value = match client.request_text(req).await {
                    Ok(text) => serde_json::from_str(&text).unwrap_or_default(),
                    Err(e) => bail!(
                        "cannot get sealed secret service: {}.\nPlease, use the flag --controller-name and --controller-namespace to set up the name and namespace of the sealed secrets controller",
                        CallError::from(e)
                    ),
                };
                let port = service
                    .pointer("/spec/ports/0/name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                Ok(format!(
                    "/api/v1/namespaces/{namespace}/services/http:{name}:{port}/proxy"
                ))
            }
        }
    }

    /// `GET /v1/cert.pem`.
    pub(crate) async fn cert(&self) -> anyhow::Result<Vec<u8>> {
        let base = self.base().await?;
        let req = http::Request::get(format!("{base}/v1/cert.pem"))
            .header(http::header::ACCEPT, "application/x-pem-file, */*")
            .body(Vec::new())?;
        match self.client().request_text(req).await {
            Ok(text) => Ok(text.into_bytes()),
            Err(e) => bail!("cannot fetch certificate: {}", CallError::from(e)),
        }
    }

    /// `POST /v1/<op>` with a JSON body; returns the response body or the call error.
    pub(crate) async fn post(
        &self,
        op: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Result<String, CallError>> {
        let base = self.base().await?;
        let req = http::Request::post(format!("{base}/v1/{op}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)?;
        Ok(self
            .client()
            .request_text(req)
            .await
            .map_err(CallError::from))
    }
}

/// Reads a `--cert` URL (`http://`, `https://`) with a plain client (no cluster credentials),
/// as kubeseal's `openCertURI`.
pub(crate) async fn fetch_url(url: &str) -> anyhow::Result<Vec<u8>> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("invalid URL {url:?}"))?;
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri
        .authority()
        .with_context(|| format!("invalid URL {url:?}: no host"))?;
    let origin: http::Uri = format!("{scheme}://{authority}").parse()?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let client = kube::Client::try_from(kube::Config::new(origin))?;
    let req = http::Request::get(path).body(Vec::new())?;
    match client.request_text(req).await {
        Ok(text) => Ok(text.into_bytes()),
        Err(e) => {
            let e = CallError::from(e);
            match e.status {
                Some(code) => bail!("cannot fetch {url:?}: {code} {}", reason(code)),
                None => bail!("cannot fetch {url:?}: {e}"),
            }
        }
    }
}

fn reason(code: u16) -> &'static str {
    http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0").ok(), Some(None));
        assert_eq!(
            parse_go_duration("30").ok(),
            Some(Some(Duration::from_secs(30)))
        );
        assert_eq!(
            parse_go_duration("1m30s").ok(),
            Some(Some(Duration::from_secs(90)))
        );
        assert_eq!(
            parse_go_duration("500ms").ok(),
            Some(Some(Duration::from_millis(500)))
        );
        assert!(parse_go_duration("5x").is_err());
    }

    #[test]
    fn huge_durations_are_errors_not_panics() {
        for text in ["99999999999999999999999h", "2562048h", "1e400s"] {
            assert!(parse_go_duration(text).is_err(), "{text}");
        }
        assert!(parse_go_duration("2562047h").unwrap().is_some());
    }
}
