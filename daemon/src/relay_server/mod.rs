//! The `relay-server` role: a self-hostable relay that the seed's relay client
//! (`relay-client.js`) works against unchanged, and that loses nothing it acknowledged.
//!
//! Why: the seed ships only a client; the relay it pointed at was a temporary tunnel. This one
//! keeps registrations and undelivered messages in the store ([`crate::store::relay_server`])
//! and answers `/send` only after the message is on disk (group commit), so a restart or a
//! `kill -9` loses nothing that was acknowledged. Offline recipients get their messages on
//! `/poll` or when they connect to `/ws`, oldest first (FIFO per recipient).
//!
//! ## Wire format (the seed's protocol)
//!
//! All bodies are JSON. Errors are `{"error":"..."}` with the status below. The bodies and
//! frames are the types of [`crate::relay::wire`], which the client uses too, so the two
//! sides cannot drift apart.
//!
//! | call | request | success |
//! |---|---|---|
//! | register | `POST /register` `{id, name, secret}` | **201** `{ok:true, id, name}` |
//! | send | `POST /send` `{from, to, message, secret}` (+ `key`, see below) | 200 `{ok:true, id, to, online, timestamp}` |
//! | poll | `GET /poll?id=ID&secret=SECRET` | 200 `{count, messages:[{id, from, fromName, message, timestamp}], more}` |
//! | users | `GET /users` | 200 `{count, users:[{id, name, online}]}` |
//! | listen | `GET /ws?id=ID&secret=SECRET` (WebSocket) | `{"type":"connected","id","name","ack":false}`, then per message `{"type":"message","id","data":{id, from, fromName, message, timestamp}}` |
//! | health | `GET /health` | 200 `{ok:true, status:"ok", users}` |
//!
//! - `timestamp` is RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
//! - `online` is true while the id holds an open `/ws`.
//! - Ids: 1-64 of `[A-Za-z0-9_.-]`, case-insensitive: `ALICE` and `alice` are one id,
//!   registered and answered lowercase. (An account registered with upper-case letters before
//!   this rule keeps its spelling and is reached by it; no case variant of it can be
//!   registered.) Names: 1-128 characters (default: the id), stored and shown without control
//!   or bidirectional formatting characters ([`crate::text::display_name`]).
//!   Secrets: 1-1024 bytes, stored only as argon2id hashes.
//! - Registering an existing id with its secret again succeeds (201, and renames it); with
//!   another secret it is **409** and changes nothing.
//! - The secret is read from `Authorization: Bearer SECRET` if present, else from the body or
//!   the query. Query values are read leniently because the seed client does not URL-encode
//!   them (see [`query`]).
//! - `/poll` drains: it returns (at most 1000 messages or about 8 MiB; `more` says whether
//!   to poll again) and deletes what it returned. A pushed message is deleted once its frame
//!   has been written to the socket. This is the seed's contract: a message in flight when a
//!   connection dies is lost to the recipient. The extension below closes that gap.
//! - Statuses: 400 malformed JSON or invalid field; 401 unknown id or wrong secret (send, poll,
//!   ack, ws); 404 unknown recipient; 409 id taken; 413 message longer than
//!   `--max-message-bytes`; 429 rate limited, recipient queue full (`--queue-cap`,
//!   `--max-recipient-bytes`), the sender's share of it used (`--sender-share`), too many new
//!   registrations from one client (`--registrations-per-hour`), or too many sockets for one
//!   id (`Retry-After` set); 500 store failure (nothing was acknowledged); 503 too many secret
//!   checks waiting (`Retry-After`), or too many connections; 507 the relay holds
//!   `--max-total-bytes`.
//!
//! ## Abuse bounds
//!
//! Connections: at most `--max-connections`, `--max-connections-per-ip` from one client (a
//! trusted proxy is exempt), 10 s to send a request head, 10 s idle ([`crate::http::serve`]).
//! Secrets: at most one argon2 run per request, on two threads with a short queue
//! ([`hasher`]). Rates: see [`limits`]. Storage: see [`crate::store::relay_server::quota`].
//!
//! ## Extension: acknowledged delivery (ignored by the seed client)
//!
//! Every message carries an `id`: a decimal string, unique for the life of the relay data,
//! increasing in queue order. Clients should treat it as opaque and may deduplicate by it.
//!
//! - **WebSocket**: connect with `/ws?id=ID&secret=SECRET&ack=1` (`ack=true` also works). The
//!   `connected` frame then says `"ack":true`. Pushed frames look the same, but a message stays
//!   queued until the client sends the text frame `{"type":"ack","id":"ID"}` (or
//!   `{"type":"ack","ids":["ID",...]}`; numbers are accepted too). Acking an unknown or
//!   already-acked id is a no-op. At most 1024 messages are pushed unacked per connection;
//!   then pushing pauses until acks arrive. Whatever is unacked when the socket closes is
//!   pushed again, same id, on the next connection (and to any other ack-mode socket of the
//!   same id, which therefore may see duplicates). Delivery is at-least-once.
//! - **Polling**: `GET /poll?id=ID&secret=SECRET&ack=1` returns the oldest messages without
//!   deleting them; `POST /ack` `{id, secret, ids:["ID",...]}` deletes them and answers
//!   `{ok:true, removed:N}`.
//!
//! A seed `/poll` or seed-mode `/ws` of the same id still drains (deletes) what it returns.
//!
//! ## Extension: idempotent sends (ignored by the seed client)
//!
//! `POST /send` may carry `"key": "K"` (1-128 visible ASCII characters), unique per message
//! of that sender. A send whose `(from, key)` the relay has seen in the last 24 hours queues
//! nothing and gets the first send's answer (same `id` and `timestamp`) plus
//! `"duplicate":true`. A sender that lost an answer to a crash or a cut connection retries
//! with the same key, so the recipient gets the message once. clawlinkd sends its outbox
//! record id as the key.
//!
//! Timing: a message is pushed or polled only once it is on disk (the group commit that also
//! acknowledges it to the sender). A relay that dies before that loses a message nobody was
//! told about; its sender retries, and with a key the retry is recognised. A recipient never
//! sees a message that the relay could forget, and an acknowledged message is never lost.

mod acks;
mod api;
mod auth;
pub mod backend;
pub mod body;
mod error;
mod hasher;
mod limits;
pub mod query;
mod state;
pub mod storage;
mod ws;

/// The idempotency key check, public (with [`body`] and [`query`]) so that the fuzz targets
/// reach the request parsers; the request bodies themselves are the shared
/// [`crate::relay::wire`] types. The rest of the role stays private.
pub use api::valid_key;

use anyhow::Context;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const HELP: &str = "\
The relay speaks the seed relay client's protocol (POST /register, POST /send, GET /poll,
GET /users, WebSocket /ws, plus GET /health) and keeps registrations and undelivered messages
on disk: /send is answered only once the message is durable, so a crash loses nothing it
acknowledged. Secrets are stored as argon2 hashes only.

Extension (acknowledged delivery): connect to /ws?id=ID&secret=SECRET&ack=1 and answer each
pushed message with {\"type\":\"ack\",\"id\":\"ID\"}; messages stay queued until acked and
unacked ones are pushed again on reconnect. Seed clients (no ack=1) are unaffected.
The full wire format is in the rustdoc of clawlinkd::relay_server.

Put a TLS-terminating reverse proxy in front when exposing it beyond localhost, and pass
--trust-forwarded-for (proxy on this machine) or --trusted-proxy IP so that rate limits
apply per real client. Load tests from a single sender id need --id-rate 0.";

/// Command-line options of `clawlinkd relay-server`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP, args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Relay maintenance commands (without one: run the relay).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Shared storage on NATS JetStream (without --nats: sled in --data-dir).
    #[command(flatten)]
    pub nats: backend::NatsArgs,
    /// Address to listen on (HTTP and WebSocket).
    #[arg(long, default_value = "127.0.0.1:3900")]
    pub listen: std::net::SocketAddr,
    /// Once bound, write the address (useful with `--listen HOST:0`) to this file.
    #[arg(long)]
    pub addr_file: Option<std::path::PathBuf>,
    /// Data directory (registrations and queued messages) [default: the clawlink data
    /// directory ($CLAWLINK_DATA_DIR, $STATE_DIRECTORY, $XDG_STATE_HOME/clawlink or
    /// ~/.local/state/clawlink) + /relay-server].
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Largest message text accepted, in bytes; larger gets 413.
    #[arg(long, default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1..=16 * 1024 * 1024))]
    pub max_message_bytes: u32,
    /// Most undelivered messages kept per recipient; beyond, /send gets 429.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue_cap: u32,
    /// Most bytes of undelivered messages kept per recipient (0 = no cap); beyond, 429.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_recipient_bytes: u64,
    /// Most bytes of undelivered messages on the whole relay (0 = no cap); beyond, 507.
    #[arg(long, default_value_t = 1 << 30)]
    pub max_total_bytes: u64,
    /// Percentage of a recipient's queue caps one sender may fill, so that a flood from one
    /// sender leaves room for the others.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub sender_share: u8,
    /// Sends per second allowed per sender id (burst twice that); 0 = unlimited.
    #[arg(long, default_value_t = 1000)]
    pub id_rate: u32,
    /// Requests per second per client address (burst twice that); loopback clients are
    /// exempt; 0 = unlimited.
    #[arg(long, default_value_t = 200)]
    pub ip_rate: u32,
    /// Registrations and uncached secret checks (argon2) per second per client address,
    /// loopback included; 0 = unlimited.
    #[arg(long, default_value_t = 5)]
    pub auth_rate: u32,
    /// New registrations per hour per client address; 0 = unlimited.
    #[arg(long, default_value_t = 30)]
    pub registrations_per_hour: u32,
    /// Believe X-Forwarded-For from a reverse proxy on this machine (loopback peers): limits
    /// then apply per real client. Only with such a proxy in front.
    #[arg(long)]
    pub trust_forwarded_for: bool,
    /// Believe X-Forwarded-For from this proxy address too (repeatable).
    #[arg(long, value_name = "IP")]
    pub trusted_proxy: Vec<std::net::IpAddr>,
    /// Simultaneous WebSocket connections allowed per id.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_ws_per_id: u32,
    /// Open HTTP connections at once (kept below the file descriptor limit).
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Open HTTP connections from one client address (trusted proxies are exempt).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: u32,
}

impl Args {
    fn proxies(&self) -> crate::http::TrustedProxies {
        crate::http::TrustedProxies::new(self.trust_forwarded_for, &self.trusted_proxy)
    }

    fn serve_limits(&self) -> crate::http::ServeLimits {
        crate::http::ServeLimits {
            max_connections: self.max_connections as usize,
            max_per_ip: Some(self.max_connections_per_ip as usize),
            proxies: self.proxies(),
            ..Default::default()
        }
    }
}

/// `clawlinkd relay-server` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Copies registrations and queued messages from a sled relay store into JetStream;
    /// running it twice changes nothing.
    Migrate(backend::MigrateArgs),
}

/// Runs the relay server until `shutdown` (or a maintenance command).
pub async fn run(args: Args, shutdown: CancellationToken) -> anyhow::Result<()> {
    if let Some(Command::Migrate(m)) = args.command {
        return backend::migrate(m).await;
    }
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| clawlink::paths::data_dir(None).join("relay-server"));
    let caps = crate::store::relay_server::quota::QueueCaps {
        recipient_count: args.queue_cap as usize,
        recipient_bytes: args.max_recipient_bytes,
        total_bytes: args.max_total_bytes,
        sender_share: args.sender_share,
    };
    let (store, db): (Arc<dyn storage::RelayBackend>, _) = if args.nats.nats.is_empty() {
        let db = crate::store::Db::open(&dir)
            .with_context(|| format!("relay-server: opening the store in {}", dir.display()))?;
        let store = crate::store::relay_server::RelayStore::open(&db, caps)?;
        (Arc::new(store), Some(db))
    } else {
        let store = args
            .nats
            .open(args.queue_cap, args.max_message_bytes, shutdown.clone())
            .await
            .context("relay-server: opening the JetStream store")?;
        (store, None)
    };
    let cfg = state::Config {
        max_message_bytes: args.max_message_bytes as usize,
        max_ws_per_id: args.max_ws_per_id as usize,
    };
    let rates = limits::Rates {
        ip: args.ip_rate,
        auth: args.auth_rate,
        register_per_hour: args.registrations_per_hour,
        id: args.id_rate,
    };
    let limits = Arc::new(limits::Limits::new(rates, args.proxies()));
    let relay =
        Arc::new(state::Relay::load(store, cfg, Arc::clone(&limits), shutdown.clone()).await?);
    let listener = crate::http::bind(args.listen, "relay-server").await?;
    let addr = listener.local_addr().unwrap_or(args.listen);
    crate::http::report_bound("relay-server", addr, args.addr_file.as_deref())?;
    let housekeeping = tokio_util::task::TaskTracker::new();
    housekeeping.spawn(limits::housekeeping(limits, shutdown.clone()));
    housekeeping.spawn(forget_old_keys(relay.store.clone(), shutdown.clone()));
    housekeeping.close();
    match &db {
        Some(_) => {
            tracing::info!(listen = %addr, data_dir = %dir.display(), accounts = relay.account_count(), "relay server ready")
        }
        None => {
            tracing::info!(listen = %addr, backend = relay.store.kind(), nats = %args.nats.nats.join(","), prefix = %args.nats.nats_prefix, "relay server ready")
        }
    }
    if !crate::http::is_loopback(&addr) {
        tracing::warn!(listen = %addr, "listening beyond loopback: put a TLS-terminating proxy in front, secrets travel in the clear otherwise");
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    if let Some(db) = &db {
        db.stop_on_failure(shutdown.clone());
    }
    let served = crate::http::serve_limited(
        listener,
        router(Arc::clone(&relay)),
        shutdown.clone(),
        args.serve_limits(),
    )
    .await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    shutdown.cancel();
    relay.sessions.close();
    if tokio::time::timeout(Duration::from_secs(5), relay.sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!("some WebSocket sessions did not close in time");
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), housekeeping.wait()).await;
    relay
        .store
        .flush_now()
        .context("relay-server: final flush of the store")?;
    if let Some(db) = &db {
        db.close().await;
    }
    if db.as_ref().is_some_and(|db| db.broken().is_cancelled()) {
        anyhow::bail!("relay-server stopped: the store in {} could not write (disk full or read-only); nothing unacknowledged was accepted", dir.display());
    }
    tracing::info!("relay server stopped; store flushed");
    served
}

/// Forgets expired idempotency keys at start and then hourly.
async fn forget_old_keys(store: Arc<dyn storage::RelayBackend>, shutdown: CancellationToken) {
    use crate::store::relay_server::SEND_KEY_TTL_MS;
    loop {
        let before = crate::time::now_ms().saturating_sub(SEND_KEY_TTL_MS);
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.prune_sent(before)).await {
            Ok(Ok(n)) if n > 0 => tracing::debug!(forgotten = n, "expired idempotency keys"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not forget expired idempotency keys"),
            Err(e) => tracing::warn!(error = %e, "key expiry task failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

fn router(relay: Arc<state::Relay>) -> Router {
    Router::new()
        .route("/register", post(api::register))
        .route("/send", post(api::send))
        .route("/poll", get(api::poll))
        .route("/ack", post(api::ack))
        .route("/users", get(api::users))
        .route("/health", get(api::health))
        .route("/ws", get(ws::upgrade))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&relay),
            api::limit_ip,
        ))
        .with_state(relay)
}
