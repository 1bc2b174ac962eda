//! Logging to stderr through `tracing-subscriber`, journald-friendly (no colours when stderr is
//! not a terminal, no timestamps under systemd, which adds its own).
//!
//! Level: `RUST_LOG` if set, else `info`, raised by each `-v` (debug, trace). Nothing logged
//! anywhere in the daemon carries a token, secret, session key or message body.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `verbose` is the number of `-v` flags.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // Libraries that would log raw frames, headers or bodies (and with them tokens and message
    // text) at debug/trace are capped at info whatever RUST_LOG asks for.
    const CAPS: &str = "sled=warn,hyper=info,hyper_util=info,h2=info,reqwest=info,tungstenite=info,tokio_tungstenite=info,rustls=info,axum=info,tower_http=info";
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() && verbose == 0 => EnvFilter::new(format!("{v},{CAPS}")),
        _ => EnvFilter::new(format!("{default},{CAPS}")),
    };
    let under_systemd =
        std::env::var_os("JOURNAL_STREAM").is_some() || std::env::var_os("INVOCATION_ID").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if under_systemd {
        builder.without_time().with_ansi(false).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}
