//! `sops keyservice`: serve this machine's master keys over sops' gRPC key service protocol
//! (`keyservice.proto`: `/KeyService/Encrypt`, `/KeyService/Decrypt`), so a real sops (or hush)
//! elsewhere can use them with `--keyservice tcp://HOST:PORT` or `unix:///path`.
//!
//! Each request names its master key; the key is served by the same hush-keys services `sops
//! encrypt`/`decrypt` use here (age identities from the environment, gpg, Vault transit, AWS
//! KMS with this machine's credentials). Key types hush has no service for are answered
//! `UNIMPLEMENTED` naming the type. Data keys are never logged.

mod proto;
mod remote;
mod server;

pub(super) use remote::{Address, RemoteKey};

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Network {
    /// TCP: `--address HOST:PORT`.
    Tcp,
    /// A Unix socket: `--address PATH`.
    Unix,
}

/// What `sops keyservice` serves on.
#[derive(Debug, Clone)]
pub(super) struct Listen {
    pub(super) network: Network,
    pub(super) address: String,
}

/// Runs the key service until SIGINT/SIGTERM.
pub(super) fn run(listen: &Listen, prompt: bool) -> Result<ExitCode> {
    if prompt {
        bail!(
            "--prompt is not supported by hush: restrict who can reach the key service (a Unix \
             socket with file permissions, or a loopback address) instead"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(listen))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(listen: &Listen) -> Result<()> {
    let service = server::KeyServiceServer::new();
    let router = tonic::transport::Server::builder().add_service(service);
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending().await,
                }
            } => {}
        }
    };
    match listen.network {
        Network::Tcp => {
            let listener = tokio::net::TcpListener::bind(&listen.address)
                .await
                .with_context(|| format!("listening on tcp {}", listen.address))?;
            eprintln!(
                "hush sops keyservice: listening on tcp://{}",
                listener.local_addr()?
            );
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
                .context("serving the key service")
        }
        Network::Unix => {
            let path = PathBuf::from(&listen.address);
            let listener = tokio::net::UnixListener::bind(&path)
                .with_context(|| format!("listening on unix socket {}", path.display()))?;
            eprintln!(
                "hush sops keyservice: listening on unix://{}",
                path.display()
            );
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            let served = router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
                .context("serving the key service");
            let _ = std::fs::remove_file(&path);
            served
        }
    }
}
