//! The `nexus-server` role: a NexusMessaging-compatible server that keeps messages durably.
//!
//! ```text
//! clawlinkd nexus-server [--listen 127.0.0.1:3000] [--data-dir DIR] [--public-url URL] ...
//! ```
//!
//! It speaks the protocol of the hosted NexusMessaging server (see the submodules for every
//! endpoint), so the protocol's own CLI (`nexus.sh`, plain curl) works against it unchanged:
//!
//! | module | endpoints |
//! |---|---|
//! | [`sessions`] | `PUT /v1/sessions`, `GET /v1/sessions/:id`, `POST .../join`, `DELETE .../agents/:agent`, `POST .../renew` |
//! | [`messages`] | `POST` and `GET /v1/sessions/:id/messages` (with the long-poll extension) |
//! | [`pairing`] | `PUT /v1/pair`, `POST /v1/pair/:code/claim`, `GET /v1/pair/:code/status` |
//! | [`instructions`] | `GET /v1/pair/:code/skill` and its alias `GET /p/:code` (markdown, or HTML for browsers) |
//! | [`router`] | `GET /health`, `GET /v1/stats` |
//!
//! Bodies are JSON; errors are `{"error":"code","message":"...","details":[]}` ([`error`]).
//!
//! ## Where it differs from the hosted server
//!
//! - **Durable.** Sessions, member keys (as SHA-256 hashes), pairing codes and messages live
//!   in the store (`store::nexus_server`); a send is acknowledged (201) only after an fsync,
//!   group-committed across concurrent sends. Everything survives a restart or `kill -9` until
//!   its session expires; a sweep ([`sweep`]) then deletes it.
//! - **Long-poll** (`GET .../messages?wait=SECONDS`), advertised in `/health` as
//!   `capabilities.longPoll: true` with `capabilities.longPollMaxWait` (25 s).
//! - Secrets in message text (and greetings) are redacted before storage ([`redact`]).
//! - Abuse bounds: `--max-sessions-per-client` live sessions per client address (429), counted
//!   atomically with `--max-sessions`; connection caps and a 10 s header/idle deadline
//!   ([`crate::http::serve`]); behind a proxy, `--trust-forwarded-for` / `--trusted-proxy`
//!   (the relay's setting) key every limit by the real client.
//! - Caps answer in the error shape: body over `--max-body-bytes` or message over
//!   `--max-message-bytes` → 413 `payload_too_large`; `--max-sessions` or
//!   `--max-messages-per-session` reached → 507 `storage_limit_reached`.
//!
//! ## Privacy of the log
//!
//! Request paths carry session ids and pairing codes, headers carry session keys, bodies carry
//! messages: none of them is ever logged. The log has start-up, sweeps and internal errors
//! (with the `X-Request-Id` the client saw).
//!
//! ## Data directory
//!
//! `--data-dir`, else the clawlink data dir (`$CLAWLINK_DATA_DIR`, `$STATE_DIRECTORY`,
//! `$XDG_STATE_HOME/clawlink`, `~/.local/state/clawlink`) joined with `nexus-server`.

pub mod error;
pub mod extract;
pub mod ids;
pub mod instructions;
pub mod limits;
pub mod messages;
pub mod pairing;
pub mod redact;
pub mod router;
pub mod sessions;
pub mod state;
pub mod sweep;
mod words;

use crate::store::nexus_server::NexusStore;
use crate::store::Db;
use anyhow::Context;
use state::{App, Limits, Registry};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest long-poll wait, seconds: below the server's 30 s request deadline.
pub const LONG_POLL_MAX_SECS: u64 = 25;

/// Most messages in one poll answer.
pub const MAX_PAGE: usize = 1000;

/// Command-line options of `clawlinkd nexus-server`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: std::net::SocketAddr,
    /// Once bound, write the address (useful with `--listen HOST:0`) to this file.
    #[arg(long)]
    pub addr_file: Option<PathBuf>,
    /// Data directory (default: the clawlink data dir joined with `nexus-server`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Base URL clients reach this server at, used in pairing links (default: from the request's Host).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Lifetime of a pairing code, seconds.
    #[arg(long, default_value_t = 600)]
    pub pair_code_expiry_secs: u64,
    /// Requests allowed per client IP per window (0: no limit).
    #[arg(long, default_value_t = 100)]
    pub rate_limit_requests: u32,
    /// Rate-limit window, seconds.
    #[arg(long, default_value_t = 60)]
    pub rate_limit_window_secs: u64,
    /// Believe X-Forwarded-For from a reverse proxy on this machine (loopback peers): limits
    /// then apply per real client. Only with such a proxy in front.
    #[arg(long)]
    pub trust_forwarded_for: bool,
    /// Believe X-Forwarded-For from this proxy address too (repeatable).
    #[arg(long, value_name = "IP")]
    pub trusted_proxy: Vec<std::net::IpAddr>,
    /// Most live sessions one client address may have created (429 above), so that one client
    /// cannot use up --max-sessions.
    #[arg(long, default_value_t = 1000)]
    pub max_sessions_per_client: usize,
    /// Open HTTP connections at once (kept below the file descriptor limit).
    #[arg(long, default_value_t = 8192)]
    pub max_connections: usize,
    /// Open HTTP connections from one client address (trusted proxies are exempt).
    #[arg(long, default_value_t = 64)]
    pub max_connections_per_ip: usize,
    /// Largest request body, bytes (413 above).
    #[arg(long, default_value_t = 65536)]
    pub max_body_bytes: usize,
    /// Largest message (text plus JSON), bytes (413 above).
    #[arg(long, default_value_t = 32768)]
    pub max_message_bytes: usize,
    /// Session TTL when the client asks for none, seconds.
    #[arg(long, default_value_t = 3660)]
    pub default_ttl_secs: u64,
    /// Smallest TTL a client may ask for, seconds.
    #[arg(long, default_value_t = 60)]
    pub min_ttl_secs: u64,
    /// Largest TTL a client may ask for, seconds.
    #[arg(long, default_value_t = 86400)]
    pub max_ttl_secs: u64,
    /// maxAgents when the client asks for none.
    #[arg(long, default_value_t = 2)]
    pub default_max_agents: u32,
    /// Largest maxAgents a client may ask for.
    #[arg(long, default_value_t = 50)]
    pub max_agents: u32,
    /// Most live sessions (507 above).
    #[arg(long, default_value_t = 100_000)]
    pub max_sessions: usize,
    /// Most messages one session may hold (507 above).
    #[arg(long, default_value_t = 100_000)]
    pub max_messages_per_session: u64,
    /// How often expired sessions are deleted, seconds.
    #[arg(long, default_value_t = 30)]
    pub sweep_interval_secs: u64,
}

fn limits(a: &Args) -> anyhow::Result<Limits> {
    anyhow::ensure!(a.min_ttl_secs >= 1, "--min-ttl-secs must be at least 1");
    anyhow::ensure!(
        a.min_ttl_secs <= a.default_ttl_secs && a.default_ttl_secs <= a.max_ttl_secs,
        "TTLs must satisfy --min-ttl-secs <= --default-ttl-secs <= --max-ttl-secs"
    );
    anyhow::ensure!(
        a.max_agents >= 2 && (2..=a.max_agents).contains(&a.default_max_agents),
        "need 2 <= --default-max-agents <= --max-agents"
    );
    anyhow::ensure!(
        a.pair_code_expiry_secs >= 1,
        "--pair-code-expiry-secs must be at least 1"
    );
    anyhow::ensure!(
        a.max_message_bytes >= 1 && a.max_body_bytes >= 1,
        "size limits must be at least 1 byte"
    );
    anyhow::ensure!(
        a.sweep_interval_secs >= 1,
        "--sweep-interval-secs must be at least 1"
    );
    Ok(Limits {
        default_ttl: a.default_ttl_secs,
        min_ttl: a.min_ttl_secs,
        max_ttl: a.max_ttl_secs,
        default_max_agents: a.default_max_agents,
        max_agents_cap: a.max_agents,
        pair_ttl: a.pair_code_expiry_secs,
        max_message_bytes: a.max_message_bytes,
        max_messages_per_session: a.max_messages_per_session,
        max_sessions: a.max_sessions,
        max_sessions_per_client: a.max_sessions_per_client.max(1),
        max_wait: LONG_POLL_MAX_SECS,
        max_page: MAX_PAGE,
    })
}

fn public_url(raw: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let url = raw.trim().trim_end_matches('/');
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '<');
    anyhow::ensure!(
        ok,
        "--public-url must be an http:// or https:// URL, e.g. https://nexus.example.com"
    );
    Ok(Some(url.to_string()))
}

/// Runs the Nexus server until `shutdown`.
pub async fn run(args: Args, shutdown: CancellationToken) -> anyhow::Result<()> {
    let limits = limits(&args)?;
    let public_url = public_url(args.public_url.as_deref())?;
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| clawlink::paths::data_dir(None).join("nexus-server"));
    let db = Db::open(&dir)?;
    let store = NexusStore::open(db.clone())?;
    let sessions = Registry::default();
    let expired = sessions.load(
        store.load_sessions().context("loading sessions")?,
        crate::time::now_ms(),
    );
    for id in &expired {
        store.delete_session(id)?;
    }
    let listener = crate::http::bind(args.listen, "nexus-server").await?;
    let proxies = crate::http::TrustedProxies::new(args.trust_forwarded_for, &args.trusted_proxy);
    let rl = Arc::new(limits::RateLimit::new(
        args.rate_limit_requests,
        Duration::from_secs(args.rate_limit_window_secs),
        proxies.clone(),
    )?);
    let app = Arc::new(App {
        store,
        sessions,
        limits,
        public_url,
        claim_lock: Mutex::new(()),
        started: std::time::Instant::now(),
        shutdown: shutdown.clone(),
    });
    let router = router::build(app.clone(), rl.clone(), args.max_body_bytes);
    let sweeper = tokio::spawn(sweep::run(
        app.clone(),
        rl,
        Duration::from_secs(args.sweep_interval_secs),
        shutdown.clone(),
    ));
    crate::http::report_bound(
        "nexus-server",
        listener.local_addr()?,
        args.addr_file.as_deref(),
    )?;
    tracing::info!(addr = %listener.local_addr()?, dir = %dir.display(), sessions = app.sessions.len(), swept = expired.len(), "nexus-server listening");
    if !crate::http::is_loopback(&args.listen) && app.public_url.is_none() {
        tracing::info!("no --public-url: pairing links use the Host header of each request");
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    db.stop_on_failure(shutdown.clone());
    let serve_limits = crate::http::ServeLimits {
        max_connections: args.max_connections.max(1),
        max_per_ip: Some(args.max_connections_per_ip.max(1)),
        proxies,
        ..Default::default()
    };
    let served = crate::http::serve_limited(listener, router, shutdown.clone(), serve_limits).await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    shutdown.cancel();
    let _ = sweeper.await;
    // Members' last-seen times live in memory between record writes; keep them.
    for s in app.sessions.all() {
        let mut st = s.lock();
        if !st.gone {
            let rec = st.rec.clone();
            if let Err(e) = st.commit(&app.store, &s.id, rec) {
                tracing::warn!(
                    code = e.code(),
                    "could not save a session's last-seen times"
                );
            }
        }
    }
    if db.broken().is_cancelled() {
        anyhow::bail!("nexus-server stopped: the store in {} could not write (disk full or read-only); nothing unacknowledged was accepted", dir.display());
    }
    db.close().await;
    db.flush_now()?;
    tracing::info!("nexus-server stopped");
    served
}
