//! One shutdown path for the whole process.
//!
//! SIGTERM, SIGINT and the control socket's `shutdown` request all cancel the same
//! [`CancellationToken`]. Every long-lived task selects on it, finishes what it is doing and
//! returns; `main` then flushes the store and exits 0. SIGHUP is forwarded separately as a
//! reload request. Signals are received with `signal-hook` on a dedicated thread, which keeps
//! the async code free of signal-handler restrictions.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
pub use tokio_util::sync::CancellationToken;

/// Spawns the signal thread: SIGTERM/SIGINT cancel `token`, SIGHUP sends on `reload`.
pub fn install(
    token: CancellationToken,
    reload: Option<tokio::sync::mpsc::UnboundedSender<()>>,
) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                match sig {
                    SIGHUP => {
                        if let Some(tx) = &reload {
                            let _ = tx.send(());
                        }
                    }
                    _ => {
                        tracing::info!(signal = sig, "shutdown requested");
                        token.cancel();
                    }
                }
            }
        })?;
    Ok(())
}
