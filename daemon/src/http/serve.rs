//! Serving HTTP/1 with every connection bounded, so that a flood of slow or idle connections
//! cannot take the process's file descriptors (and with them the control socket) away.
//!
//! - **Connection caps**, counted at `accept`, before a single byte is read: at most
//!   [`ServeLimits::max_connections`] at once, and at most [`ServeLimits::max_per_ip`] from one
//!   client address (internet-facing roles). A connection over a cap is answered with a
//!   one-shot `503` (written only if the socket takes it at once) and closed.
//! - **Header deadline**: a client has [`ServeLimits::header_timeout`] (10 s by default) to send
//!   a complete request head. The same timer runs while a keep-alive connection waits for its
//!   next request, so it is also the idle timeout.
//! - **Request deadline**: [`super::REQUEST_DEADLINE`] for reading a body and answering
//!   (WebSocket sessions, once upgraded, are outside it; the relay bounds them per id).
//! - **Upgraded connections keep their slot**: the permits travel inside the socket ([`Held`]),
//!   which hyper hands to the WebSocket task on upgrade, so a WebSocket counts against both
//!   caps until it closes, like any other connection.
//! - **File descriptors**: the soft `RLIMIT_NOFILE` is raised to the hard limit at start and the
//!   connection cap is kept [`FD_RESERVE`] below it, so the store, the control socket and
//!   outbound connections always have descriptors. Under systemd, `LimitNOFILE=16384` is
//!   assumed; a lower limit lowers the cap (logged).
//! - **Accept errors** (`EMFILE` and the like) pause the accept loop briefly instead of
//!   spinning and logging at full speed.

use axum::extract::ConnectInfo;
use axum::Router;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Descriptors kept free for everything that is not an HTTP connection.
pub const FD_RESERVE: u64 = 256;

/// Bounds for one listener.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections from one client address (`None`: no per-address cap).
    pub max_per_ip: Option<usize>,
    /// Peers exempt from the per-address cap: trusted reverse proxies, which carry many
    /// clients over their connections (the per-client rate limits still apply to those).
    pub proxies: super::TrustedProxies,
    /// Time allowed for a request head, and for an idle keep-alive connection.
    pub header_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 4096,
            max_per_ip: None,
            proxies: super::TrustedProxies::default(),
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` with the default (local) limits; see [`serve_limited`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve_limited(listener, router, shutdown, ServeLimits::default()).await
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// finish. Handlers can extract `ConnectInfo<SocketAddr>` for the peer address. Every
/// connection gets `TCP_NODELAY`: replies and pushes are small writes, and Nagle's algorithm
/// meeting a delayed ACK would hold some back for ~40 ms.
pub async fn serve_limited(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    mut limits: ServeLimits,
) -> anyhow::Result<()> {
    limits.max_connections = fit_to_fd_limit(limits.max_connections);
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        super::REQUEST_DEADLINE,
    ));
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let tracker = TaskTracker::new();
    let mut refused = Refusals::default();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    refused.accept_error(&e);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        let Ok(permit) = Arc::clone(&total).try_acquire_owned() else {
            refused.over_cap(tcp, "the server's connection limit");
            continue;
        };
        let ip = peer.ip().to_canonical();
        let slot = match limits.max_per_ip {
            Some(max) if !limits.proxies.trusts(ip) => match PerIp::enter(&per_ip, ip, max) {
                Some(slot) => Some(slot),
                None => {
                    refused.over_cap(tcp, "the per-address connection limit");
                    continue;
                }
            },
            _ => None,
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let shutdown = shutdown.clone();
        let timeout = limits.header_timeout;
        let held = Held {
            io: tcp,
            _slots: (permit, slot),
        };
        tracker.spawn(connection(held, peer, router, shutdown, timeout));
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

async fn connection(
    tcp: Held,
    peer: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
    header_timeout: Duration,
) {
    use tower::ServiceExt;
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let conn = builder
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(super::REQUEST_DEADLINE, conn).await;
        }
    }
}

/// A connection's socket with the slots it holds under the caps. The slots go when the socket
/// does: at the end of the HTTP connection, or, when it is upgraded to a WebSocket, at the end
/// of that (hyper moves the socket into the upgraded stream).
struct Held {
    io: TcpStream,
    _slots: (OwnedSemaphorePermit, Option<IpSlot>),
}

impl AsyncRead for Held {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Held {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Open connections per client address; an entry exists only while its count is above 0.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its address; uncounted on drop.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn enter(table: &Arc<PerIp>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut map = table.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: Arc::clone(table),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Refused connections and accept errors, logged at most every 10 s.
#[derive(Default)]
struct Refusals {
    count: u64,
    last_log: Option<Instant>,
}

impl Refusals {
    fn due(&mut self) -> bool {
        self.count += 1;
        let due = self
            .last_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
        if due {
            self.last_log = Some(Instant::now());
        }
        due
    }

    fn over_cap(&mut self, tcp: TcpStream, what: &str) {
        // Best effort: a client that reads gets a reason; one that does not, a closed socket.
        let _ = tcp.try_write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 51\r\n\r\n{\"ok\":false,\"error\":\"too many connections; retry\"}",
        );
        if self.due() {
            tracing::warn!(
                refused = self.count,
                "connection refused: {what} is reached"
            );
        }
    }

    fn accept_error(&mut self, e: &std::io::Error) {
        if self.due() {
            tracing::warn!(errors = self.count, error = %e, "accept failed; pausing the listener briefly");
        }
    }
}

/// Raises the soft descriptor limit to the hard one and returns `wanted`, lowered if needed so
/// that [`FD_RESERVE`] descriptors stay free.
fn fit_to_fd_limit(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        if setrlimit(Resource::Nofile, lim).is_err() {
            lim = getrlimit(Resource::Nofile);
        }
    }
    let Some(soft) = lim.current else {
        return wanted;
    };
    let room = soft.saturating_sub(FD_RESERVE).max(16);
    let fit = usize::try_from(room).unwrap_or(usize::MAX).min(wanted);
    if fit < wanted {
        tracing::warn!(
            wanted,
            cap = fit,
            nofile = soft,
            "connection cap lowered to fit the file descriptor limit (raise LimitNOFILE)"
        );
    }
    fit
}
