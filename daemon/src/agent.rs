//! The agent daemon role: open the store, bind the control socket and the webhook, start
//! every transport through the registry, report readiness, and run until shutdown.
//!
//! The transports are started here, one line each ([`transports`]); everything else asks the
//! [`Registry`]. Shutdown: the token is cancelled (signal or `clawlink shutdown`), every task
//! of the tracker (control connections, webhook, lanes, transport connections and pollers,
//! the local-agent worker) returns, then the store's flusher is closed and the store flushed.

use crate::config::Config;
use crate::delivery::Hub;
use crate::inbound::Ingest;
use crate::live_config::LiveConfig;
use crate::state::State;
use crate::store::{contacts::Contacts, inbox::Inbox, kv::Kv, Db};
use crate::transport::{Context, Outbound, OutboxStore, Registry};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Command-line options of the agent daemon.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file; an error if it does not exist [default: $CLAWLINK_CONFIG, else
    /// $XDG_CONFIG_HOME/clawlink/config.toml; either may be missing, then every key has its default]
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory [default: $STATE_DIRECTORY or $XDG_STATE_HOME/clawlink]
    #[arg(long, env = "CLAWLINK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Control socket [default: $XDG_RUNTIME_DIR/clawlink/clawlink.sock, else /tmp/clawlink-$UID/clawlink.sock]
    #[arg(long, env = "CLAWLINK_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Webhook listen address HOST:PORT, or "off" (overrides listen.addr)
    #[arg(long)]
    pub listen: Option<String>,
    /// Once bound, write the webhook address (useful with `--listen HOST:0`) to this file.
    #[arg(long)]
    pub addr_file: Option<PathBuf>,
    /// Most messages the inbox holds; beyond, new ones are refused until some are deleted
    /// (overrides inbox.max_messages) [default: 100000]
    #[arg(long, value_name = "N")]
    pub inbox_max_messages: Option<u64>,
    /// Most bytes of messages the inbox holds (overrides inbox.max_bytes) [default: 268435456]
    #[arg(long, value_name = "BYTES")]
    pub inbox_max_bytes: Option<u64>,
}

impl Args {
    /// The inbox caps: the config's, with the command line's overrides (each at least 1).
    fn inbox_caps(&self, config: &Config) -> crate::store::inbox_counts::Caps {
        let c = &config.inbox;
        crate::store::inbox_counts::Caps {
            max_messages: self.inbox_max_messages.unwrap_or(c.max_messages).max(1),
            max_bytes: self.inbox_max_bytes.unwrap_or(c.max_bytes).max(1),
        }
    }
}

/// How long shutdown waits for the daemon's tasks (they stop within milliseconds of the
/// token; this bounds a stuck one).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// Starts every transport. Adding a transport: one line here (and its folder).
pub fn transports(ctx: &Context, policy: &crate::policy::Engine) -> anyhow::Result<Registry> {
    let mut r = Registry::new();
    // First: it opens the sealed envelopes the others receive, from their first message on.
    let friends = crate::friend::start(ctx)?;
    r.add(friends.clone());
    let gateway = crate::gateway::start(ctx)?;
    // The local-agent worker uses the gateway's pool; started at once, it queues every message
    // stored from here on.
    let pool = gateway.pool().clone();
    if let Some(worker) = crate::policy::local_agent::start(ctx, policy.clone(), pool) {
        gateway.attach_local(worker);
    }
    r.add(gateway);
    r.add(crate::relay::start(ctx)?);
    r.add(crate::nexus::start(ctx, friends.trust.clone())?);
    r.add(crate::a2a::start(ctx)?);
    // The friend transport carries envelopes over the others (weakly: no ownership cycle).
    friends.attach(r.downgrade());
    Ok(r)
}

/// Runs the agent daemon until `shutdown`.
pub async fn run(
    args: Args,
    shutdown: CancellationToken,
    mut reload: tokio::sync::mpsc::UnboundedReceiver<()>,
) -> anyhow::Result<()> {
    let config_path = crate::config::resolve_path(args.config.as_deref());
    let mut config = Config::load(&config_path, args.config.is_some())?;
    if let Some(listen) = args.listen.clone() {
        config.listen.addr = listen;
        config.validate()?;
    }
    let data_dir = clawlink::paths::data_dir(args.data_dir.as_deref());
    let socket = clawlink::paths::socket_path(args.socket.as_deref());

    let db = Db::open(&data_dir)?;
    let control = crate::control::bind(&socket).await?;
    let listen_addr = config.listen.socket_addr()?;
    let webhook = match listen_addr {
        Some(addr) => Some(crate::http::bind(addr, "webhook listener").await?),
        None => None,
    };
    let listen = match &webhook {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    if let Some(addr) = listen {
        crate::http::report_bound("webhook", addr, args.addr_file.as_deref())?;
    }

    let tracker = TaskTracker::new();
    let hub = Hub::new();
    let inbox = Inbox::open(&db)?;
    inbox.set_caps(args.inbox_caps(&config));
    let ingest = Ingest::new(inbox.clone(), hub.clone());
    let live = LiveConfig::new(config.clone(), &config_path);
    let policy = crate::policy::Engine::open(&db)?;
    let ctx = Context {
        db: db.clone(),
        data_dir: data_dir.clone(),
        config: live.clone(),
        ingest: ingest.clone(),
        http: crate::util::http_client::build(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    };
    let registry = transports(&ctx, &policy)?;
    let outbound = Outbound::new(
        OutboxStore::open(&db)?,
        registry.clone(),
        shutdown.clone(),
        tracker.clone(),
    );
    let state = Arc::new(State {
        contacts: Contacts::open(&db)?,
        kv: Kv::open(&db)?,
        db: db.clone(),
        inbox: inbox.clone(),
        outbound: outbound.clone(),
        transports: registry,
        hub,
        started: Instant::now(),
        socket: socket.clone(),
        listen,
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
        config: live,
        policy,
    });

    // Receipts of envelopes that came in go out through the outbox.
    if let Some(friends) = state.transports.get::<crate::friend::Friends>() {
        if let Some(replies) = friends.take_replies() {
            tracker.spawn(crate::friend::send_replies(
                friends.clone(),
                replies,
                outbound.clone(),
                config.outbox.ttl_secs,
                shutdown.clone(),
            ));
        }
    }
    // The agent's replies under `converse` go back to the peers that can be answered.
    if let Some(gw) = state.transports.get::<crate::gateway::GatewayTransport>() {
        let replier = crate::policy::converse::Replier {
            engine: state.policy.clone(),
            pool: gw.pool().clone(),
            config: state.config.clone(),
            outbound: outbound.clone(),
            friends: state.transports.get::<crate::friend::Friends>(),
            a2a: state.transports.get::<crate::a2a::A2a>(),
        };
        tracker.spawn(crate::policy::converse::run(
            replier,
            tracker.clone(),
            shutdown.clone(),
        ));
    }
    // Records from before a restart go on their lanes before any new send can: a send accepted
    // first would overtake them (order is per lane) and be handed to its lane twice.
    let resumed = outbound.resume()?;
    tracker.spawn(crate::control::serve(
        control,
        state.clone(),
        shutdown.clone(),
        tracker.clone(),
    ));
    if let Some(listener) = webhook {
        // The A2A endpoint shares the listener (it authenticates its peers by bearer token,
        // so the webhook's Host and Origin guard does not apply to it).
        let mut extra = match state.transports.get::<crate::a2a::A2a>() {
            Some(a2a) if config.a2a.enabled => Some(a2a.router(config.a2a.clone())),
            _ => None,
        };
        // Friends' direct path: the envelope's signature authenticates, so no token or guard.
        if let Some(friends) = state.transports.get::<crate::friend::Friends>() {
            let direct = crate::friend::direct::router(friends);
            extra = Some(match extra {
                Some(r) => r.merge(direct),
                None => direct,
            });
        }
        let token = shutdown.clone();
        let listen_cfg = config.listen.clone();
        tracker.spawn(async move {
            let served = crate::inbound::webhook::serve(
                listener,
                ingest,
                inbox,
                &listen_cfg,
                extra,
                token.clone(),
            );
            if let Err(e) = served.await {
                tracing::error!("webhook listener failed: {e:#}");
                token.cancel();
            }
        });
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %data_dir.display(),
        socket = %socket.display(),
        listen = ?listen,
        resumed_outbox = resumed,
        "clawlinkd ready"
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let broken = db.broken();
    let mut store_failed = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = broken.cancelled() => {
                tracing::error!("the store cannot write (disk full, read-only or failing); stopping so that the service manager restarts clawlinkd once it can");
                store_failed = true;
                shutdown.cancel();
                break;
            }
            Some(()) = reload.recv() => {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
                state.config.reload();
                state.inbox.set_caps(args.inbox_caps(&state.config()));
                // Pollers read their interval from atomics, not from the config.
                if let Ok(nexus) = state.transport::<crate::nexus::Nexus>() {
                    nexus.configure(&state.config().nexus);
                }
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            }
        }
    }

    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("shutting down: finishing in-flight requests");
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = tracker.len(),
            "some tasks did not finish within {SHUTDOWN_GRACE:?}"
        );
    }
    if store_failed {
        anyhow::bail!("stopped: the store in {} could not write (nothing unacknowledged was accepted); free disk space or fix permissions, then start clawlinkd again", data_dir.display());
    }
    drop(state);
    db.close().await;
    db.flush_now()?;
    tracing::info!("store flushed; bye");
    Ok(())
}
