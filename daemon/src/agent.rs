//! The agent daemon role: open the store, bind the control socket and the webhook, start the
//! outbound lanes, report readiness, and run until shutdown.
//!
//! [`State`] is what every control handler and inbound path shares. It is built once here; the
//! only lock in it (the config, swapped on SIGHUP) is never held across an `.await`.

use crate::config::Config;
use crate::delivery::Hub;
use crate::inbound::Ingest;
use crate::outbound::{Outbound, Transport};
use crate::store::{contacts::Contacts, inbox::Inbox, kv::Kv, outbox::Outbox, Db};
use clawlink::proto::ConnectionRow;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Command-line options of the agent daemon.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file [default: $XDG_CONFIG_HOME/clawlink/config.toml]
    #[arg(long, env = "CLAWLINK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: $STATE_DIRECTORY or $XDG_STATE_HOME/clawlink]
    #[arg(long, env = "CLAWLINK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Control socket [default: $XDG_RUNTIME_DIR/clawlink/clawlink.sock]
    #[arg(long, env = "CLAWLINK_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Webhook listen address HOST:PORT, or "off" (overrides listen.addr)
    #[arg(long)]
    pub listen: Option<String>,
}

/// Something that holds connections and can describe them for `status`.
pub trait StatusSource: Send + Sync {
    /// One row per connection.
    fn rows(&self) -> Vec<ConnectionRow>;
}

/// Everything the control handlers and inbound paths share.
pub struct State {
    /// The database.
    pub db: Db,
    /// The inbox.
    pub inbox: Inbox,
    /// Contacts.
    pub contacts: Contacts,
    /// Settings.
    pub kv: Kv,
    /// The outbox and its lanes.
    pub outbound: Outbound,
    /// Fan-out to listeners.
    pub hub: Hub,
    /// The way into the inbox.
    pub ingest: Ingest,
    /// Start time.
    pub started: Instant,
    /// Control socket path.
    pub socket: PathBuf,
    /// Bound webhook address.
    pub listen: Option<SocketAddr>,
    /// The process-wide shutdown token.
    pub shutdown: CancellationToken,
    /// Background tasks (joined at shutdown).
    pub tracker: TaskTracker,
    config: RwLock<Arc<Config>>,
    config_path: PathBuf,
    // Each transport adds its handles below, between its own markers.
    // --- gateway (fields) ---
    /// The OpenClaw gateway client (warm connections to peers and to the local gateway).
    pub gateway: crate::gateway::Pool,
    // --- end gateway ---

    // --- relay (fields) ---
    /// Relay identities and their connections.
    pub relay: Arc<crate::inbound::relay::RelayClients>,
    // --- end relay ---

    // --- nexus (fields) ---
    /// Joined Nexus sessions and their pollers.
    pub nexus: crate::inbound::nexus::NexusClient,
    // --- end nexus ---
    status_sources: RwLock<Vec<Arc<dyn StatusSource>>>,
}

impl State {
    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Registers a source of `status` connection rows.
    pub fn add_status_source(&self, s: Arc<dyn StatusSource>) {
        if let Ok(mut v) = self.status_sources.write() {
            v.push(s);
        }
    }

    /// Rows from every status source.
    pub fn connection_rows(&self) -> Vec<ConnectionRow> {
        let sources = match self.status_sources.read() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        };
        sources.iter().flat_map(|s| s.rows()).collect()
    }

    fn reload(&self) {
        match Config::load(&self.config_path) {
            Ok(new) => {
                if new.listen.addr != self.config().listen.addr {
                    tracing::warn!("listen.addr changed; the new address is used after a restart");
                }
                if let Ok(mut c) = self.config.write() {
                    *c = Arc::new(new);
                }
                tracing::info!(config = %self.config_path.display(), "configuration reloaded");
            }
            Err(e) => tracing::error!("configuration NOT reloaded: {e:#}"),
        }
    }
}

/// Runs the agent daemon until `shutdown`.
pub async fn run(
    args: Args,
    shutdown: CancellationToken,
    mut reload: tokio::sync::mpsc::UnboundedReceiver<()>,
) -> anyhow::Result<()> {
    let config_path = crate::config::resolve_path(args.config.as_deref());
    let mut config = Config::load(&config_path)?;
    if let Some(listen) = args.listen {
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

    let tracker = TaskTracker::new();
    let hub = Hub::new();
    let inbox = Inbox::open(&db)?;
    let ingest = Ingest::new(inbox.clone(), hub.clone());
    // Transports available to the outbox: each one builds its handles and registers here.
    let mut transports: Vec<Arc<dyn Transport>> = Vec::new();
    // --- gateway (build) ---
    let gateway = {
        let mut opts = crate::gateway::PoolOptions::new(&data_dir);
        opts.idle_timeout = Duration::from_secs(config.gateway.idle_timeout_secs.max(1));
        opts.request_timeout = Duration::from_secs(config.gateway.request_timeout_secs.max(1));
        crate::gateway::Pool::new(opts)
            .map_err(|e| anyhow::anyhow!("cannot set up the gateway client: {e}"))?
    };
    transports.push(Arc::new(crate::outbound::gateway::GatewayTransport::new(
        gateway.clone(),
    )));
    // --- end gateway ---

    // --- relay (build) ---
    let relay = crate::inbound::relay::RelayClients::new(
        crate::store::relay_client::RelayClientStore::open(&db)?,
        ingest.clone(),
        shutdown.clone(),
        tracker.clone(),
        &config.relay,
    )?;
    transports.push(Arc::new(crate::outbound::relay::RelayTransport::new(
        relay.store.clone(),
        relay.http.clone(),
    )));
    // --- end relay ---

    // --- nexus (build) ---
    let nexus = crate::inbound::nexus::NexusClient::new(
        crate::store::nexus_client::NexusSessions::open(&db)?,
        crate::outbound::nexus::NexusHttp::new()?,
        ingest.clone(),
        shutdown.clone(),
        tracker.clone(),
        &config.nexus,
    );
    // --- end nexus ---

    let outbound = Outbound::new(
        Outbox::open(&db)?,
        transports,
        shutdown.clone(),
        tracker.clone(),
    );
    let state = Arc::new(State {
        contacts: Contacts::open(&db)?,
        kv: Kv::open(&db)?,
        db: db.clone(),
        inbox: inbox.clone(),
        outbound: outbound.clone(),
        hub,
        ingest: ingest.clone(),
        started: Instant::now(),
        socket: socket.clone(),
        listen,
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
        config: RwLock::new(Arc::new(config.clone())),
        config_path,
        status_sources: RwLock::new(Vec::new()),
        // --- gateway (init) ---
        gateway: gateway.clone(),
        // --- end gateway ---

        // --- relay (init) ---
        relay: relay.clone(),
        // --- end relay ---

        // --- nexus (init) ---
        nexus: nexus.clone(),
        // --- end nexus ---
    });

    // Background workers that need the shared state.
    // --- gateway (start) ---
    state.add_status_source(Arc::new(gateway.clone()));
    if let Some(local) = crate::delivery::local_agent::start(&state) {
        state.add_status_source(local);
    }
    // --- end gateway ---

    // --- relay (start) ---
    state.add_status_source(relay.clone());
    let relays = relay.start_all()?;
    tracing::info!(identities = relays, "relay connections started");
    // --- end relay ---

    // --- nexus (start) ---
    state.add_status_source(Arc::new(nexus.clone()));
    let polled = nexus.resume()?;
    tracing::info!(sessions = polled, "nexus sessions resumed");
    // --- end nexus ---

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
        let router = crate::inbound::webhook::router(
            ingest,
            inbox,
            config.listen.token.clone(),
            config.listen.max_body,
        );
        let token = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = crate::http::serve(listener, router, token.clone()).await {
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
                state.reload();
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            }
        }
    }

    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("shutting down: finishing in-flight requests");
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not finish within 10 s");
    }
    if store_failed {
        anyhow::bail!("stopped: the store in {} could not write (nothing unacknowledged was accepted); free disk space or fix permissions, then start clawlinkd again", data_dir.display());
    }
    db.flush_now()?;
    drop(state);
    tracing::info!("store flushed; bye");
    Ok(())
}
