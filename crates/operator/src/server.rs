//! The process's metrics and health endpoint: `GET /metrics` (Prometheus text 0.0.4),
//! `GET /healthz` (the process is up) and `GET /readyz` (it has finished starting: keys loaded,
//! caches synced). Followers of a leader election are ready too: they serve their read-only
//! endpoints.
//!
//! [`serve`] runs every HTTP endpoint of a process (this one and the Sealed Secrets API) within
//! [`HttpLimits`]: a time to send the request head (which also ends idle keep-alive
//! connections), to send the body, to answer and to take the answer; a body size; and connection
//! caps overall and per client address, so that slow or many connections from one client do not
//! starve the others. docs/security.md lists each limit with its flag.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

use crate::{Error, Result, Shutdown};

/// Limits of every HTTP endpoint of a process (flags of `hush controller`, docs/security.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time for a client to send a request's head (line and headers), counted from the moment
    /// the server waits for it, so it also closes an idle keep-alive connection
    /// (`--http-header-timeout`, 10 s).
    pub header_timeout: Duration,
    /// Time to receive a request's body (Bitnami's `--read-timeout`, 2 min).
    pub read_timeout: Duration,
    /// Time to produce the answer, and the longest a client may leave written answer bytes
    /// unread (Bitnami's `--write-timeout`, 2 min).
    pub write_timeout: Duration,
    /// Largest request body (`--http-max-body-bytes`, 3 MiB).
    pub max_body_bytes: usize,
    /// Largest request head (`--http-max-header-bytes`, 64 KiB).
    pub max_header_bytes: usize,
    /// Connections at once; more are closed at once (`--http-max-connections`, 512).
    pub max_connections: usize,
    /// Connections at once from one client address (`--http-max-connections-per-client`, 32).
    pub max_connections_per_client: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(120),
            max_body_bytes: 3 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            max_connections: 512,
            max_connections_per_client: 32,
        }
    }
}

/// Readiness of the process, set once start-up is complete.
#[derive(Debug, Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
}

impl Health {
    /// Marks the process ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether the process is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    health: Health,
}

/// The router of the metrics and health endpoint.
pub fn router(registry: Arc<Registry>, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { registry, health })
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::prometheus_text::encode(&mut body, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            body,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.health.is_ready() {
        "ok\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

/// Binds `addr` (Go-style `:8081` means all interfaces).
pub async fn bind(addr: &str) -> Result<TcpListener> {
    let resolved = parse_listen_addr(addr)?;
    TcpListener::bind(resolved)
        .await
        .map_err(|source| Error::Listen {
            addr: addr.to_owned(),
            source,
        })
}

/// Parses a Go listen address: `:8080`, `127.0.0.1:8080`, `[::1]:8080`.
pub fn parse_listen_addr(addr: &str) -> Result<SocketAddr> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_owned()
    };
    full.parse().map_err(|_| Error::Invalid {
        what: "listen address",
        reason: format!("{addr:?} is not host:port or :port"),
    })
}

/// Serves `router` on `listener` within `limits` until `shutdown` fires. Handlers may extract
/// `ConnectInfo<SocketAddr>` (the peer).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: Shutdown,
) -> Result<()> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let limits = Arc::new(limits);
    let router = router.layer(axum::middleware::from_fn_with_state(
        Arc::clone(&limits),
        bounded_request,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = Arc::new(PerClient::default());
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(%addr, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        // Over a cap the connection is closed unanswered: cheaper than a 503, and nothing of it
        // is read.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%addr, %peer, "connection refused: --http-max-connections reached");
            continue;
        };
        let Some(client_slot) = per_client.enter(peer.ip(), limits.max_connections_per_client)
        else {
            tracing::debug!(%addr, %peer, "connection refused: --http-max-connections-per-client reached");
            continue;
        };
        tasks.spawn(connection(
            stream,
            peer,
            router.clone(),
            Arc::clone(&limits),
            (slot, client_slot),
            shutdown.clone(),
        ));
        // Finished connections are reaped as we go, so the set stays as large as what is open.
        while tasks.try_join_next().is_some() {}
    }
    // Open connections finish their request (graceful shutdown), bounded by the write timeout.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.write_timeout, drain)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
    Ok(())
}

/// One connection: HTTP/1.1 with the head timeout, the head size cap and the write-stall guard;
/// ends gracefully on shutdown.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Arc<HttpLimits>,
    _slots: (OwnedSemaphorePermit, ClientSlot),
    shutdown: Shutdown,
) {
    let _ = stream.set_nodelay(true);
    let io = hyper_util::rt::TokioIo::new(StallGuard::new(stream, limits.write_timeout));
    let service = router.map_request(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let service = hyper_util::service::TowerToHyperService::new(service);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(100);
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::trace!(%peer, error = %e, "connection ended");
            }
        }
        () = shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Reads the whole body within `read_timeout` and `max_body_bytes`, then gives the handler
/// `write_timeout` to answer.
async fn bounded_request(
    State(limits): State<Arc<HttpLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, limits.max_body_bytes);
    let bytes = match tokio::time::timeout(limits.read_timeout, read).await {
        Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "request body timed out\n"),
        Ok(Err(_)) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or broken\n",
            );
        }
        Ok(Ok(bytes)) => bytes,
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    match tokio::time::timeout(limits.write_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n"),
    }
}

fn plain(code: StatusCode, body: &'static str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Open connections per client address.
#[derive(Debug, Default)]
struct PerClient {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    /// A slot for one more connection from `ip`, or `None` at `max`.
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(ip).or_default();
        if *n >= max.max(1) {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            owner: Arc::clone(self),
            ip,
        })
    }
}

/// One open connection of a client; released on drop.
#[derive(Debug)]
struct ClientSlot {
    owner: Arc<PerClient>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self
            .owner
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A stream whose writes fail once they have made no progress for `limit`: a client that stops
/// reading its answer cannot hold the connection (and its slots) for good.
#[derive(Debug)]
struct StallGuard<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> StallGuard<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Maps a pending write to an error once the stall is over the limit; progress resets it.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_listen_addresses() {
        assert_eq!(
            parse_listen_addr(":8080").ok(),
            Some(SocketAddr::from(([0, 0, 0, 0], 8080)))
        );
        assert_eq!(
            parse_listen_addr("127.0.0.1:0").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 0)))
        );
        assert!(parse_listen_addr("localhost").is_err());
    }

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A server on loopback with short limits; `/echo` answers with the body's length.
    async fn limited(limits: HttpLimits) -> (SocketAddr, Shutdown) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/healthz", get(healthz)).route(
            "/echo",
            axum::routing::post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        );
        let shutdown = Shutdown::new();
        tokio::spawn(serve(listener, router, limits, shutdown.clone()));
        (addr, shutdown)
    }

    /// What the server sends until it closes the connection, or `None` if it keeps it open
    /// for `wait`.
    async fn until_closed(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
        let mut got = Vec::new();
        match tokio::time::timeout(wait, stream.read_to_end(&mut got)).await {
            Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
            Err(_) => None,
        }
    }

    #[tokio::test]
    async fn slow_heads_slow_bodies_and_crowds_are_cut_off() {
        let limits = HttpLimits {
            header_timeout: Duration::from_millis(300),
            read_timeout: Duration::from_millis(300),
            max_body_bytes: 1000,
            max_connections: 8,
            max_connections_per_client: 3,
            ..HttpLimits::default()
        };
        let (addr, shutdown) = limited(limits).await;
        let connect = || tokio::net::TcpStream::connect(addr);

        // A head that never ends (slowloris) and an idle keep-alive connection are closed.
        let mut slow = connect().await.unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        assert!(
            until_closed(&mut slow, Duration::from_secs(3))
                .await
                .is_some()
        );
        let mut idle = connect().await.unwrap();
        assert!(
            until_closed(&mut idle, Duration::from_secs(3))
                .await
                .is_some()
        );

        // A body that stops coming: 408; too large a body: 413.
        let mut stalled = connect().await.unwrap();
        stalled
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
            .await
            .unwrap();
        let answer = until_closed(&mut stalled, Duration::from_secs(3))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        let mut big = connect().await.unwrap();
        big.write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2000\r\n\r\n",
        )
        .await
        .unwrap();
        big.write_all(&[b'x'; 2000]).await.unwrap();
        let answer = until_closed(&mut big, Duration::from_secs(3))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

        // One client holds at most 3 connections; the 4th is closed unanswered at once.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut c = connect().await.unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            held.push(c);
        }
        let mut fourth = connect().await.unwrap();
        let refused = until_closed(&mut fourth, Duration::from_millis(200)).await;
        assert_eq!(
            refused.as_deref(),
            Some(""),
            "the 4th connection was served"
        );
        // Closed connections free their slots.
        drop(held);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = connect().await.unwrap();
        again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = until_closed(&mut again, Duration::from_secs(3))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        shutdown.trigger();
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_off() {
        let limits = HttpLimits {
            write_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // An answer far larger than the socket buffers.
        let router = Router::new().route("/big", get(|| async { vec![b'x'; 64 << 20] }));
        let shutdown = Shutdown::new();
        let server = tokio::spawn(serve(listener, router, limits, shutdown.clone()));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // Read nothing for a while, then see the server gave up before sending it all.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => got += n,
                Err(_) => panic!("the connection stayed open"),
            }
        }
        assert!(got < 64 << 20, "the whole answer was sent ({got} bytes)");
        shutdown.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
}
