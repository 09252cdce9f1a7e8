//! Which settings a render reads, and from where.
//!
//! Argo CD passes every `spec.source.plugin.env` entry of an Application as `ARGOCD_ENV_<NAME>`,
//! so anyone who can edit an Application controls those variables. argocd-vault-plugin strips
//! the prefix and gives them the highest precedence, which lets an Application author point the
//! plugin at another Vault or change its credentials. hush does not: backend addresses,
//! credentials, path rules, key directories and the reseal certificate, secret and switch come
//! only from the plugin's own environment (the sidecar), its `-c` file or its `-s` Secret.
//! `ARGOCD_ENV_*` may set only the harmless options in [`APP_ALLOWED`]; any other
//! `ARGOCD_ENV_*` naming a setting is ignored with a warning (name only, never the value).

use std::collections::BTreeMap;
use std::path::PathBuf;

use regex::Regex;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Options an Application may set through `ARGOCD_ENV_<NAME>`.
pub const APP_ALLOWED: &[&str] = &[
    "HUSH_ALLOW_EMPTY",
    "HUSH_RENDER_CONCURRENCY",
    "HUSH_HELM_VALUES_FILES",
    "AVP_KV_VERSION",
];

/// Settings that only the plugin's own environment may set (an `ARGOCD_ENV_` copy is refused).
pub const SIDECAR_ONLY: &[&str] = &[
    "AVP_TYPE",
    "AVP_AUTH_TYPE",
    "AVP_ROLE_ID",
    "AVP_SECRET_ID",
    "AVP_USERNAME",
    "AVP_PASSWORD",
    "AVP_K8S_ROLE",
    "AVP_K8S_MOUNT_PATH",
    "AVP_K8S_TOKEN_PATH",
    "AVP_MOUNT_PATH",
    "AVP_PATH_PREFIX",
    "AVP_PATH_VALIDATION",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "VAULT_NAMESPACE",
    "AWS_REGION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "HUSH_KUBE_TOKEN_FILE",
    "HUSH_KUBE_CA_FILE",
    "HUSH_AZURE_VAULT_DOMAIN",
    "HUSH_RESEAL_CERT",
    "HUSH_RESEAL_SECRET",
    "HUSH_RESEAL_SECRET_FILE",
    "HUSH_SOPS_KEYS_DIR",
    "HUSH_SOPS_VAULT_ADDRS",
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY_CMD",
];

/// How to log in to Vault (AVP's `AVP_AUTH_TYPE`).
#[derive(Clone)]
#[non_exhaustive]
pub enum VaultAuth {
    /// `token`: `VAULT_TOKEN`.
    Token(SecretString),
    /// `approle`: `AVP_ROLE_ID`, `AVP_SECRET_ID`, mount `AVP_MOUNT_PATH` (default `approle`).
    AppRole {
        /// Role id.
        role_id: String,
        /// Secret id.
        secret_id: SecretString,
        /// Mount.
        mount: Option<String>,
    },
    /// `userpass`: `AVP_USERNAME`, `AVP_PASSWORD`, mount `AVP_MOUNT_PATH` (default `userpass`).
    UserPass {
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
        /// Mount.
        mount: Option<String>,
    },
    /// `k8s`: `AVP_K8S_ROLE`, the service account token at `AVP_K8S_TOKEN_PATH`, mount
    /// `AVP_K8S_MOUNT_PATH` (default `kubernetes`).
    Kubernetes {
        /// Vault role.
        role: String,
        /// The service account JWT.
        jwt: SecretString,
        /// Mount.
        mount: Option<String>,
    },
}

impl std::fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::AppRole { role_id, mount, .. } => f
                .debug_struct("AppRole")
                .field("role_id", role_id)
                .field("mount", mount)
                .finish_non_exhaustive(),
            Self::UserPass {
                username, mount, ..
            } => f
                .debug_struct("UserPass")
                .field("username", username)
                .field("mount", mount)
                .finish_non_exhaustive(),
            Self::Kubernetes { role, mount, .. } => f
                .debug_struct("Kubernetes")
                .field("role", role)
                .field("mount", mount)
                .finish_non_exhaustive(),
        }
    }
}

/// The secret backend.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BackendSettings {
    /// `AVP_TYPE=vault`.
    Vault {
        /// `VAULT_ADDR`.
        address: String,
        /// `VAULT_NAMESPACE`.
        namespace: Option<String>,
        /// `AVP_AUTH_TYPE` and its credentials.
        auth: VaultAuth,
        /// `AVP_KV_VERSION` (default 2).
        kv_version: u8,
    },
    /// `AVP_TYPE=awssecretsmanager`: credentials from the sidecar's standard AWS chain.
    AwsSecretsManager {
        /// `AWS_REGION` (or `AWS_DEFAULT_REGION`).
        region: String,
    },
    /// `AVP_TYPE=kubernetessecret`: the cluster the plugin runs in, as the plugin's own
    /// ServiceAccount (client-go's in-cluster configuration).
    KubernetesSecret {
        /// `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
        server: String,
        /// The cluster CA (PEM): the pod's `ca.crt`, or `HUSH_KUBE_CA_FILE`.
        ca_pem: Vec<u8>,
        /// The pod's ServiceAccount token, or the one in `HUSH_KUBE_TOKEN_FILE`.
        token: SecretString,
    },
    /// `AVP_TYPE=gcpsecretmanager`: the service-account key at `GOOGLE_APPLICATION_CREDENTIALS`.
    GcpSecretManager {
        /// The key file's JSON.
        key: SecretString,
    },
    /// `AVP_TYPE=azurekeyvault`: an application's credentials from the Azure SDK's environment.
    AzureKeyVault {
        /// `AZURE_TENANT_ID`.
        tenant_id: String,
        /// `AZURE_CLIENT_ID`.
        client_id: String,
        /// `AZURE_CLIENT_SECRET`, or the PEM at `AZURE_CLIENT_CERTIFICATE_PATH`.
        proof: AzureProof,
        /// Key Vault's DNS domain (`HUSH_AZURE_VAULT_DOMAIN`, default `vault.azure.net`): the
        /// vault a path names is `https://<name>.<domain>`.
        vault_domain: String,
    },
}

/// How an Azure application proves itself.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AzureProof {
    /// `AZURE_CLIENT_SECRET`.
    Secret(SecretString),
    /// `AZURE_CLIENT_CERTIFICATE_PATH`: a PEM certificate and its private key.
    Certificate(SecretString),
}

/// Where a pod's ServiceAccount credentials are mounted.
const POD_SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Everything a render is configured with. `Debug` redacts the reseal secret.
#[derive(Default)]
pub struct Settings {
    /// The backend, if configured.
    pub backend: Option<BackendSettings>,
    /// `AVP_PATH_PREFIX`.
    pub path_prefix: Option<String>,
    /// `AVP_PATH_VALIDATION`.
    pub path_validation: Option<Regex>,
    /// `HUSH_RESEAL_CERT` (file or URL).
    pub reseal_cert: Option<String>,
    /// `HUSH_RESEAL_SECRET` or the content of `HUSH_RESEAL_SECRET_FILE`.
    pub reseal_secret: Option<Zeroizing<Vec<u8>>>,
    /// `HUSH_SOPS_KEYS_DIR`.
    pub sops_keys_dir: Option<PathBuf>,
    /// Vault addresses a SOPS file's `hc_vault` key may send the token to: `VAULT_ADDR` and the
    /// comma-separated `HUSH_SOPS_VAULT_ADDRS` of the plugin's own environment.
    pub sops_vault_addresses: Vec<String>,
    /// `HUSH_ALLOW_EMPTY=true`.
    pub allow_empty: bool,
    /// `HUSH_RENDER_CONCURRENCY` (default 16).
    pub concurrency: usize,
    /// `HUSH_HELM_VALUES_FILES` (comma-separated) and `PARAM_VALUES_FILES_<i>`.
    pub values_files: Vec<String>,
    /// `ARGOCD_APP_NAME`.
    pub app_name: Option<String>,
    /// `ARGOCD_APP_NAMESPACE`.
    pub app_namespace: Option<String>,
    /// `KUBE_VERSION`.
    pub kube_version: Option<String>,
    /// `KUBE_API_VERSIONS` (comma-separated).
    pub api_versions: Vec<String>,
    /// Warnings to print (names only).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("backend", &self.backend)
            .field("path_prefix", &self.path_prefix)
            .field("path_validation", &self.path_validation)
            .field("reseal_cert", &self.reseal_cert)
            .field(
                "reseal_secret",
                &self.reseal_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("sops_keys_dir", &self.sops_keys_dir)
            .field("allow_empty", &self.allow_empty)
            .field("concurrency", &self.concurrency)
            .field("values_files", &self.values_files)
            .field("app_name", &self.app_name)
            .field("app_namespace", &self.app_namespace)
            .field("kube_version", &self.kube_version)
            .field("api_versions", &self.api_versions)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// Builds settings from `env` (the process environment), over `base` (the `-s` Secret and `-c`
/// file, already merged in that order).
pub fn settings(
    env: &BTreeMap<String, String>,
    base: &BTreeMap<String, String>,
) -> Result<Settings> {
    let mut s = Settings {
        concurrency: 16,
        ..Settings::default()
    };
    let (own, app) = views(env, base, &mut s.warnings);
    app_settings(&mut s, env, &app)?;
    sidecar_settings(&mut s, &own)?;
    s.backend = backend(&own, &app)?;
    Ok(s)
}

/// A variable's value; empty counts as unset.
fn get(m: &BTreeMap<String, String>, k: &str) -> Option<String> {
    m.get(k).filter(|v| !v.is_empty()).cloned()
}

/// The items of a comma-separated list, trimmed, empty ones dropped.
fn comma_list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
}

/// The sidecar-owned view (base, then the process environment without `ARGOCD_ENV_`) and the
/// app-owned view (the sidecar's, with allow-listed `ARGOCD_ENV_` entries winning). An
/// `ARGOCD_ENV_` entry naming a sidecar-only setting is ignored with a warning.
fn views(
    env: &BTreeMap<String, String>,
    base: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut own: BTreeMap<String, String> = base.clone();
    for (k, v) in env {
        if !k.starts_with("ARGOCD_ENV_") {
            own.insert(k.clone(), v.clone());
        }
    }
    let mut app = own.clone();
    for (k, v) in env {
        let Some(name) = k.strip_prefix("ARGOCD_ENV_") else {
            continue;
        };
        if APP_ALLOWED.contains(&name) {
            app.insert(name.to_owned(), v.clone());
        } else if SIDECAR_ONLY.contains(&name)
            || name.starts_with("AVP_")
            || name.starts_with("HUSH_")
        {
            warnings.push(format!(
                "{k} is ignored: {name} can only be set in the plugin's own environment"
            ));
        }
    }
    (own, app)
}

/// What the Application may set (`app`) and what Argo CD passes about it (`env`).
fn app_settings(
    s: &mut Settings,
    env: &BTreeMap<String, String>,
    app: &BTreeMap<String, String>,
) -> Result<()> {
    s.allow_empty = get(app, "HUSH_ALLOW_EMPTY").is_some_and(|v| v == "true");
    if let Some(c) = get(app, "HUSH_RENDER_CONCURRENCY") {
        s.concurrency = c
            .parse::<usize>()
            .ok()
            .filter(|c| (1..=256).contains(c))
            .ok_or_else(|| Error::Config("HUSH_RENDER_CONCURRENCY must be 1 to 256".into()))?;
    }
    if let Some(v) = get(app, "HUSH_HELM_VALUES_FILES") {
        s.values_files.extend(comma_list(&v));
    }
    for i in 0.. {
        match get(env, &format!("PARAM_VALUES_FILES_{i}")) {
            Some(f) => s.values_files.push(f),
            None => break,
        }
    }
    s.app_name = get(env, "ARGOCD_APP_NAME");
    s.app_namespace = get(env, "ARGOCD_APP_NAMESPACE");
    s.kube_version = get(env, "KUBE_VERSION");
    s.api_versions = get(env, "KUBE_API_VERSIONS")
        .map(|v| comma_list(&v).collect())
        .unwrap_or_default();
    Ok(())
}

/// What only the plugin's own environment may set (`own`), besides the backend.
fn sidecar_settings(s: &mut Settings, own: &BTreeMap<String, String>) -> Result<()> {
    s.path_prefix = get(own, "AVP_PATH_PREFIX");
    if let Some(re) = get(own, "AVP_PATH_VALIDATION") {
        s.path_validation = Some(Regex::new(&re).map_err(|_| {
            Error::Config("AVP_PATH_VALIDATION is not a valid regular expression".into())
        })?);
    }
    s.reseal_cert = get(own, "HUSH_RESEAL_CERT");
    if let Some(secret) = get(own, "HUSH_RESEAL_SECRET") {
        s.reseal_secret = Some(Zeroizing::new(secret.into_bytes()));
    } else if let Some(file) = get(own, "HUSH_RESEAL_SECRET_FILE") {
        let bytes = Zeroizing::new(read_file(&file)?);
        s.reseal_secret = Some(Zeroizing::new(bytes.trim_ascii().to_vec()));
    }
    s.sops_keys_dir = get(own, "HUSH_SOPS_KEYS_DIR").map(PathBuf::from);
    s.sops_vault_addresses = get(own, "VAULT_ADDR")
        .into_iter()
        .chain(
            get(own, "HUSH_SOPS_VAULT_ADDRS")
                .iter()
                .flat_map(|v| comma_list(v)),
        )
        .collect();
    Ok(())
}

/// The `AVP_TYPE` backend (`vault` when only `VAULT_ADDR` is set); `None` without either.
fn backend(
    own: &BTreeMap<String, String>,
    app: &BTreeMap<String, String>,
) -> Result<Option<BackendSettings>> {
    let kind = get(own, "AVP_TYPE").or_else(|| get(own, "VAULT_ADDR").map(|_| "vault".to_owned()));
    Ok(match kind.as_deref() {
        None => None,
        Some("vault") => Some(vault(own, app)?),
        Some("awssecretsmanager") => {
            let region = get(own, "AWS_REGION")
                .or_else(|| get(own, "AWS_DEFAULT_REGION"))
                .ok_or_else(|| {
                    Error::Config("AVP_TYPE=awssecretsmanager needs AWS_REGION".into())
                })?;
            Some(BackendSettings::AwsSecretsManager { region })
        }
        Some("kubernetessecret") => Some(kubernetes(own)?),
        Some("gcpsecretmanager") => Some(gcp(own)?),
        Some("azurekeyvault") => Some(azure(own)?),
        Some(other) => {
            return Err(Error::Config(format!(
                "AVP_TYPE={other} is not supported (supported: vault, awssecretsmanager, \
                 kubernetessecret, gcpsecretmanager, azurekeyvault)"
            )));
        }
    })
}

fn read_file(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| Error::Io {
        path: path.into(),
        error,
    })
}

fn text_file(path: &str) -> Result<SecretString> {
    let bytes = Zeroizing::new(read_file(path)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::Config(format!("{path} is not UTF-8 text")))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

/// client-go's in-cluster configuration (what argocd-vault-plugin uses), with the token and CA
/// files overridable for a plugin run outside a pod.
fn kubernetes(own: &BTreeMap<String, String>) -> Result<BackendSettings> {
    let get = |k: &str| own.get(k).filter(|v| !v.is_empty()).cloned();
    let (Some(host), Some(port)) = (
        get("KUBERNETES_SERVICE_HOST"),
        get("KUBERNETES_SERVICE_PORT"),
    ) else {
        return Err(Error::Config(
            "AVP_TYPE=kubernetessecret reads the cluster the plugin runs in: \
             KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"
                .into(),
        ));
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let file = |var: &str, name: &str| get(var).unwrap_or(format!("{POD_SERVICE_ACCOUNT}/{name}"));
    Ok(BackendSettings::KubernetesSecret {
        server: format!("https://{host}:{port}"),
        ca_pem: read_file(&file("HUSH_KUBE_CA_FILE", "ca.crt"))?,
        token: text_file(&file("HUSH_KUBE_TOKEN_FILE", "token"))?,
    })
}

/// Google's Application Default Credentials, as far as hush has them: a service-account key
/// file (gcloud's user credentials and the metadata server are not used).
fn gcp(own: &BTreeMap<String, String>) -> Result<BackendSettings> {
    let path = own
        .get("GOOGLE_APPLICATION_CREDENTIALS")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::Config(
                "AVP_TYPE=gcpsecretmanager needs GOOGLE_APPLICATION_CREDENTIALS (a \
                 service-account key file); hush does not use gcloud's user credentials or the \
                 metadata server"
                    .into(),
            )
        })?;
    Ok(BackendSettings::GcpSecretManager {
        key: text_file(path)?,
    })
}

/// The Azure SDK's environment credential, as far as hush has it: an application with a
/// client secret or a PEM certificate.
fn azure(own: &BTreeMap<String, String>) -> Result<BackendSettings> {
    let get = |k: &str| own.get(k).filter(|v| !v.is_empty()).cloned();
    let need = |k: &str| {
        get(k).ok_or_else(|| {
            Error::Config(format!(
                "AVP_TYPE=azurekeyvault needs {k} (hush authenticates as an application: \
                 AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or \
                 AZURE_CLIENT_CERTIFICATE_PATH)"
            ))
        })
    };
    for unsupported in [
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_USERNAME",
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        if get(unsupported).is_some() {
            return Err(Error::Config(format!(
                "AVP_TYPE=azurekeyvault: {unsupported} is not supported by hush (an application \
                 with AZURE_CLIENT_SECRET or an unencrypted PEM at AZURE_CLIENT_CERTIFICATE_PATH)"
            )));
        }
    }
    let proof = match (
        get("AZURE_CLIENT_SECRET"),
        get("AZURE_CLIENT_CERTIFICATE_PATH"),
    ) {
        (Some(secret), None) => AzureProof::Secret(SecretString::from(secret)),
        (None, Some(path)) => AzureProof::Certificate(text_file(&path)?),
        _ => {
            return Err(Error::Config(
                "AVP_TYPE=azurekeyvault needs exactly one of AZURE_CLIENT_SECRET and \
                 AZURE_CLIENT_CERTIFICATE_PATH"
                    .into(),
            ));
        }
    };
    Ok(BackendSettings::AzureKeyVault {
        tenant_id: need("AZURE_TENANT_ID")?,
        client_id: need("AZURE_CLIENT_ID")?,
        proof,
        vault_domain: get("HUSH_AZURE_VAULT_DOMAIN")
            .map(|d| d.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| "vault.azure.net".into()),
    })
}

fn vault(
    own: &BTreeMap<String, String>,
    app: &BTreeMap<String, String>,
) -> Result<BackendSettings> {
    let get = |k: &str| own.get(k).filter(|v| !v.is_empty()).cloned();
    let need = |k: &str| get(k).ok_or_else(|| Error::Config(format!("{k} is required")));
    let address = need("VAULT_ADDR")?;
    let auth = match get("AVP_AUTH_TYPE").as_deref().unwrap_or("token") {
        "token" => VaultAuth::Token(SecretString::from(need("VAULT_TOKEN")?)),
        "approle" => VaultAuth::AppRole {
            role_id: need("AVP_ROLE_ID")?,
            secret_id: SecretString::from(need("AVP_SECRET_ID")?),
            mount: get("AVP_MOUNT_PATH").map(|m| m.trim_start_matches("auth/").to_owned()),
        },
        "userpass" => VaultAuth::UserPass {
            username: need("AVP_USERNAME")?,
            password: SecretString::from(need("AVP_PASSWORD")?),
            mount: get("AVP_MOUNT_PATH").map(|m| m.trim_start_matches("auth/").to_owned()),
        },
        "k8s" => {
            let path = get("AVP_K8S_TOKEN_PATH")
                .unwrap_or_else(|| "/var/run/secrets/kubernetes.io/serviceaccount/token".into());
            let jwt = std::fs::read_to_string(&path).map_err(|error| Error::Io {
                path: path.into(),
                error,
            })?;
            VaultAuth::Kubernetes {
                role: need("AVP_K8S_ROLE")?,
                jwt: SecretString::from(jwt.trim().to_owned()),
                mount: get("AVP_K8S_MOUNT_PATH").map(|m| m.trim_start_matches("auth/").to_owned()),
            }
        }
        other => {
            return Err(Error::Config(format!(
                "AVP_AUTH_TYPE={other} is not supported (supported: token, approle, userpass, k8s)"
            )));
        }
    };
    let kv_version = match app.get("AVP_KV_VERSION").map(String::as_str) {
        None | Some("" | "2") => 2,
        Some("1") => 1,
        Some(_) => return Err(Error::Config("AVP_KV_VERSION must be 1 or 2".into())),
    };
    Ok(BackendSettings::Vault {
        address,
        namespace: get("VAULT_NAMESPACE"),
        auth,
        kv_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    /// The reseal secret keys stable resealing; `Debug` (logs, panics) must not print it.
    #[test]
    fn debug_redacts_the_reseal_secret() {
        let e = env(&[
            ("HUSH_RESEAL_SECRET", "s3cret-render-key-0123456789"),
            ("VAULT_ADDR", "http://vault.internal:8200"),
            ("VAULT_TOKEN", "sidecar-token"),
        ]);
        let s = settings(&e, &BTreeMap::new()).unwrap();
        assert!(s.reseal_secret.is_some());
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("115, 51"), "{shown}");
        assert!(!shown.contains("sidecar-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn application_env_cannot_set_backend_or_reseal() {
        let e = env(&[
            ("VAULT_ADDR", "http://vault.internal:8200"),
            ("VAULT_TOKEN", "sidecar-token"),
            ("ARGOCD_ENV_VAULT_ADDR", "http://attacker:8200"),
            ("ARGOCD_ENV_AVP_AUTH_TYPE", "approle"),
            ("ARGOCD_ENV_HUSH_RESEAL_CERT", "/tmp/evil.pem"),
            ("ARGOCD_ENV_HUSH_ALLOW_EMPTY", "true"),
            ("ARGOCD_ENV_AVP_KV_VERSION", "1"),
        ]);
        let s = settings(&e, &BTreeMap::new()).unwrap();
        match s.backend.unwrap() {
            BackendSettings::Vault {
                address,
                auth,
                kv_version,
                ..
            } => {
                assert_eq!(address, "http://vault.internal:8200");
                assert!(matches!(auth, VaultAuth::Token(_)));
                assert_eq!(kv_version, 1);
            }
            other => panic!("expected the Vault backend, got {other:?}"),
        }
        assert!(s.reseal_cert.is_none());
        assert!(s.allow_empty);
        assert_eq!(s.warnings.len(), 3);
        assert!(s.warnings.iter().all(|w| !w.contains("attacker")));
    }

    #[test]
    fn kubernetes_secret_reads_the_in_cluster_configuration() {
        let e = env(&[("AVP_TYPE", "kubernetessecret")]);
        let err = settings(&e, &BTreeMap::new()).unwrap_err().to_string();
        assert!(err.contains("KUBERNETES_SERVICE_HOST"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        let ca = dir.path().join("ca.crt");
        std::fs::write(&token, "sa-token-canary\n").unwrap();
        std::fs::write(&ca, "PEM").unwrap();
        let e = env(&[
            ("AVP_TYPE", "kubernetessecret"),
            ("KUBERNETES_SERVICE_HOST", "fd00::1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("HUSH_KUBE_TOKEN_FILE", token.to_str().unwrap()),
            ("HUSH_KUBE_CA_FILE", ca.to_str().unwrap()),
            ("ARGOCD_ENV_HUSH_KUBE_TOKEN_FILE", "/tmp/other"),
        ]);
        let s = settings(&e, &BTreeMap::new()).unwrap();
        assert!(!format!("{s:?}").contains("canary"));
        match s.backend.unwrap() {
            BackendSettings::KubernetesSecret {
                server,
                ca_pem,
                token,
            } => {
                assert_eq!(server, "https://[fd00::1]:443");
                assert_eq!(ca_pem, b"PEM");
                assert_eq!(
                    secrecy::ExposeSecret::expose_secret(&token),
                    "sa-token-canary"
                );
            }
            other => panic!("expected kubernetessecret, got {other:?}"),
        }
    }

    #[test]
    fn aws_secrets_manager_needs_a_region_from_the_sidecar() {
        let e = env(&[
            ("AVP_TYPE", "awssecretsmanager"),
            ("ARGOCD_ENV_AWS_REGION", "eu-west-1"),
        ]);
        let err = settings(&e, &BTreeMap::new()).unwrap_err().to_string();
        assert!(err.contains("AWS_REGION"), "{err}");
        let e = env(&[
            ("AVP_TYPE", "awssecretsmanager"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        match settings(&e, &BTreeMap::new()).unwrap().backend.unwrap() {
            BackendSettings::AwsSecretsManager { region } => assert_eq!(region, "eu-west-1"),
            other => panic!("expected AWS Secrets Manager, got {other:?}"),
        }
    }
}
