//! The control socket: how `clawlink` drives the daemon.
//!
//! The wire protocol (handshake, one request → one response, `listen` subscriptions, frame
//! cap and deadlines) is specified in the `clawlink` crate docs and [`clawlink::proto`]; this
//! module is the daemon's side of it.
//!
//! Who may connect: the socket's directory is private (0700, ours, not a symlink, see
//! [`clawlink::paths::ensure_private_dir`]), the socket is created 0600, and every accepted
//! connection's peer uid (SO_PEERCRED / getpeereid) must equal ours or it is closed at once.
//!
//! Start-up: an existing socket file is replaced only if nothing answers on it (a leftover of
//! a crash); if a daemon answers, we refuse to start. The data-dir lock in [`crate::store`]
//! catches a second daemon that uses another socket path.

mod conn;
pub mod handlers;

use crate::state::State;
use interprocess::local_socket::traits::tokio::Listener as _;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::traits::StreamCommon as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The bound control listener.
pub struct ControlListener {
    listener: interprocess::local_socket::tokio::Listener,
}

/// Prepares the socket directory, clears a stale socket, and binds with mode 0600.
pub async fn bind(path: &Path) -> anyhow::Result<ControlListener> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("socket path {} has no directory", path.display()))?;
    clawlink::paths::ensure_private_dir(dir)
        .map_err(|e| anyhow::anyhow!("control socket directory: {e}"))?;
    if std::fs::symlink_metadata(path).is_ok() {
        let name = path.to_fs_name::<GenericFilePath>()?;
        match interprocess::local_socket::tokio::Stream::connect(name).await {
            Ok(_) => anyhow::bail!(
                "another clawlinkd is already answering on {}; stop it first (clawlink shutdown) or use another --socket",
                path.display()
            ),
            Err(_) => {
                tracing::info!(socket = %path.display(), "removing a stale socket file (nothing answers on it)");
                std::fs::remove_file(path).map_err(|e| anyhow::anyhow!("cannot remove stale socket {}: {e}", path.display()))?;
            }
        }
    }
    let name = path.to_fs_name::<GenericFilePath>()?;
    let listener = ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .reclaim_name(true)
        .create_tokio()
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    Ok(ControlListener { listener })
}

/// Accepts connections until `shutdown`; each runs on its own task tracked by `tracker`.
pub async fn serve(
    listener: ControlListener,
    state: Arc<State>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let my_uid = clawlink::paths::euid();
    loop {
        let stream = tokio::select! {
            s = listener.listener.accept() => s,
            _ = shutdown.cancelled() => break,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        match stream.peer_creds().map(|c| c.euid()) {
            Ok(Some(uid)) if uid == my_uid => {}
            Ok(uid) => {
                tracing::warn!(peer_uid = ?uid, "control connection from another user refused");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the control peer's credentials; connection refused");
                continue;
            }
        }
        let state = state.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move { conn::handle(stream, state, shutdown).await });
    }
}
