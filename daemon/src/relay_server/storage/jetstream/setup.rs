//! Connecting to NATS and creating (or updating) the stream and KV buckets of a deployment.
//!
//! Every relay node runs this at start; creation is idempotent, and a changed cap
//! (`--queue-cap`, `--nats-max-bytes`) is applied by updating the stream in place. Right after
//! a cluster boots, JetStream has no meta leader for a few seconds, so creation is retried
//! for up to [`SETUP_DEADLINE`], and a node starts serving only once every bucket's leader
//! answers.

use super::layout::Layout;
use anyhow::Context;
use async_nats::jetstream::{self, kv, stream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long start-up waits for JetStream to accept the stream and buckets.
const SETUP_DEADLINE: Duration = Duration::from_secs(60);
/// How long JetStream remembers a `Nats-Msg-Id` (the `{P}_sent` bucket covers the day after).
const DEDUP_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long an idempotency key is remembered (as sled's `SEND_KEY_TTL_MS`).
const SENT_TTL: Duration = Duration::from_millis(crate::store::relay_server::SEND_KEY_TTL_MS);
/// How long a presence entry lives unless its node refreshes it.
pub(super) const PRESENCE_TTL: Duration = Duration::from_secs(90);

/// Where and how to reach the shared store.
#[derive(Clone)]
pub struct NatsConfig {
    /// Server URLs (`nats://host:4222`), any of the cluster.
    pub urls: Vec<String>,
    /// A `.creds` file (JWT + nkey seed), read by the client, never logged.
    pub creds: Option<PathBuf>,
    /// Deployment prefix (see [`super::layout`]).
    pub prefix: String,
    /// Replicas of the stream and buckets (3 for a quorum that survives one node).
    pub replicas: usize,
    /// Most messages per recipient (`max_msgs_per_subject`, new ones refused beyond).
    pub queue_cap: i64,
    /// Most bytes in the queue stream (-1: unlimited), new ones refused beyond.
    pub max_bytes: i64,
    /// Largest message payload, bytes.
    pub max_message_bytes: i32,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("urls", &self.urls)
            .field("creds", &self.creds.as_ref().map(|_| "<file>"))
            .field("prefix", &self.prefix)
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

/// Connects to the cluster (failing fast when no server answers).
pub async fn connect(cfg: &NatsConfig) -> anyhow::Result<async_nats::Client> {
    let mut opts = async_nats::ConnectOptions::new()
        .name("clawlinkd relay-server")
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(5)));
    if let Some(creds) = &cfg.creds {
        opts = opts
            .credentials_file(creds)
            .await
            .with_context(|| format!("reading the NATS credentials {}", creds.display()))?;
    }
    let addrs = cfg
        .urls
        .iter()
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .context("--nats: a URL is malformed (expected nats://host:port)")?;
    async_nats::connect_with_options(addrs, opts)
        .await
        .with_context(|| format!("cannot reach NATS at {}", cfg.urls.join(",")))
}

/// The queue stream's configuration.
fn stream_config(layout: &Layout, cfg: &NatsConfig) -> stream::Config {
    stream::Config {
        name: layout.stream(),
        description: Some("clawlink relay: undelivered messages, one subject per recipient".into()),
        subjects: vec![layout.queue_filter()],
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        max_messages_per_subject: cfg.queue_cap,
        max_bytes: cfg.max_bytes,
        discard: stream::DiscardPolicy::New,
        discard_new_per_subject: true,
        duplicate_window: DEDUP_WINDOW,
        max_message_size: cfg
            .max_message_bytes
            .saturating_mul(6)
            .saturating_add(16 * 1024),
        allow_direct: true,
        ..Default::default()
    }
}

fn bucket(layout: &Layout, cfg: &NatsConfig, what: &str, max_age: Duration) -> kv::Config {
    kv::Config {
        bucket: layout.bucket(what),
        history: 1,
        max_age,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        ..Default::default()
    }
}

/// The handles a node uses.
pub(super) struct Handles {
    pub stream: stream::Stream,
    pub users: kv::Store,
    pub sent: kv::Store,
    pub presence: kv::Store,
}

/// Creates or updates the stream and buckets, retrying while JetStream is not ready.
pub(super) async fn ensure(
    js: &jetstream::Context,
    layout: &Layout,
    cfg: &NatsConfig,
) -> anyhow::Result<Handles> {
    let start = Instant::now();
    loop {
        match try_ensure(js, layout, cfg).await {
            Ok(h) => return Ok(h),
            Err(e) if start.elapsed() < SETUP_DEADLINE => {
                tracing::info!(error = %e, "JetStream not ready yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(e.context("JetStream did not accept the relay's stream and buckets"))
            }
        }
    }
}

async fn try_ensure(
    js: &jetstream::Context,
    layout: &Layout,
    cfg: &NatsConfig,
) -> anyhow::Result<Handles> {
    js.create_or_update_stream(stream_config(layout, cfg))
        .await
        .context("creating the queue stream")?;
    let stream = js.get_stream(layout.stream()).await?;
    let users = js
        .create_or_update_key_value(bucket(layout, cfg, "users", Duration::ZERO))
        .await
        .context("creating the users bucket")?;
    let sent = js
        .create_or_update_key_value(bucket(layout, cfg, "sent", SENT_TTL))
        .await
        .context("creating the sent bucket")?;
    let presence = js
        .create_or_update_key_value(bucket(layout, cfg, "presence", PRESENCE_TTL))
        .await
        .context("creating the presence bucket")?;
    // Created is not yet writable: on a cluster that has just booted, a bucket's own RAFT group
    // may still be electing its leader, and the first register would then be answered 503.
    // Its status is answered by that leader, and a read by a server subscribed to direct gets,
    // so once all three answer both, the node can serve. (Requests that still meet nobody later,
    // after a node dies, are sent again: see `retry`.)
    for (name, kv) in [("users", &users), ("sent", &sent), ("presence", &presence)] {
        kv.status()
            .await
            .with_context(|| format!("the {name} bucket has no leader yet"))?;
        kv.get("ready-probe")
            .await
            .with_context(|| format!("the {name} bucket does not serve reads yet"))?;
    }
    Ok(Handles {
        stream,
        users,
        sent,
        presence,
    })
}
