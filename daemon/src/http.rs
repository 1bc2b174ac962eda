//! Shared HTTP plumbing for the three HTTP faces of clawlinkd (the webhook, the relay server,
//! the Nexus server): binding with a clear error, reporting the bound address, serving with
//! graceful shutdown, bounded connections and deadlines ([`serve`]), the client address behind
//! a trusted proxy ([`client_ip`]), and the loopback test that decides whether a token is
//! required.
//!
//! Port 0: every role accepts `--listen 127.0.0.1:0`, lets the kernel pick a free port, and
//! reports the address it got: on stderr (`listening on 127.0.0.1:PORT`) and, with
//! `--addr-file PATH`, in that file (the address and a newline, written to a temporary file
//! and renamed, so a reader never sees half of it). Tests start every process this way and
//! never race another process for a port.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

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

pub mod serve;

pub use serve::{serve, serve_limited, ServeLimits};

/// Whether binding `addr` exposes the service beyond this machine.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Constant-time equality for secrets of any length.
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The client's address: the peer, or, when the peer is one of `trusted` proxies, the last
/// address of its `X-Forwarded-For` (the one that proxy appended; earlier entries come from
/// the client and are never believed). IPv4-mapped IPv6 addresses are returned as IPv4.
pub fn client_ip(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.trusts(peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|s| s.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .unwrap_or(peer)
}

/// Which peers are reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    list: Vec<IpAddr>,
}

impl TrustedProxies {
    /// `--trust-forwarded-for` trusts loopback peers (the shipped units put the proxy on the
    /// same machine); `--trusted-proxy IP` (repeatable) adds addresses.
    pub fn new(trust_loopback: bool, list: &[IpAddr]) -> TrustedProxies {
        TrustedProxies {
            list: list
                .iter()
                .map(|ip| ip.to_canonical())
                .chain(
                    trust_loopback
                        .then(|| [IpAddr::from([127, 0, 0, 1]), IpAddr::from([0u16; 8])])
                        .into_iter()
                        .flatten(),
                )
                .collect(),
        }
    }

    /// Whether `peer` is a trusted proxy.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.list
            .iter()
            .any(|p| *p == peer || (p.is_loopback() && peer.is_loopback()))
    }

    /// Whether any proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
