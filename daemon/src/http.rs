//! Shared HTTP plumbing for the three HTTP faces of clawlinkd (the webhook, the relay server,
//! the Nexus server): binding with a clear error, reporting the bound address, serving with
//! graceful shutdown and a per-request deadline, and the loopback test that decides whether a
//! token is required.
//!
//! Port 0: every role accepts `--listen 127.0.0.1:0`, lets the kernel pick a free port, and
//! reports the address it got: on stderr (`listening on 127.0.0.1:PORT`) and, with
//! `--addr-file PATH`, in that file (the address and a newline, written to a temporary file
//! and renamed, so a reader never sees half of it). Tests start every process this way and
//! never race another process for a port.

use axum::Router;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Deadline for reading a request and producing its response (WebSocket sessions excepted).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Binds `addr`, turning the usual failures into sentences.
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "{what}: {addr} is already in use by another process; choose another address"
        ),
        std::io::ErrorKind::PermissionDenied => {
            anyhow::anyhow!("{what}: not allowed to bind {addr} (ports below 1024 need privileges)")
        }
        _ => anyhow::anyhow!("{what}: cannot bind {addr}: {e}"),
    })
}

/// Reports the address `what` is bound to (see the module docs).
pub fn report_bound(what: &str, addr: SocketAddr, file: Option<&Path>) -> anyhow::Result<()> {
    tracing::info!(%addr, "{what} listening on {addr}");
    let Some(file) = file else { return Ok(()) };
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("{addr}\n"))
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| anyhow::anyhow!("{what}: cannot write --addr-file {}: {e}", file.display()))
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets in-flight requests finish.
/// Handlers can extract `ConnectInfo<SocketAddr>` for the peer address. Every connection gets
/// `TCP_NODELAY`: replies and pushes are small writes, and Nagle's algorithm meeting a delayed
/// ACK would hold some back for ~40 ms.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        REQUEST_DEADLINE,
    ));
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await?;
    Ok(())
}

/// Whether binding `addr` exposes the service beyond this machine.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Constant-time equality for secrets of any length.
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
