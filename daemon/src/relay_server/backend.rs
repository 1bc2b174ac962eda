//! Choosing the relay's storage at start: sled in `--data-dir` (the default), or the NATS
//! JetStream cluster named by `--nats`, shared with every other relay node pointed at it.

use super::storage::jetstream::layout::valid_prefix;
use super::storage::jetstream::{NatsConfig, NatsStore};
use super::storage::RelayBackend;
use std::path::PathBuf;
use std::sync::Arc;

/// Options of the JetStream backend (`clawlinkd relay-server --nats ...`).
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS servers of a JetStream cluster, comma-separated (nats://host:4222,...). When set,
    /// registrations and queues live there instead of --data-dir, and any number of relay
    /// nodes may serve the same ids.
    #[arg(long, value_delimiter = ',')]
    pub nats: Vec<String>,
    /// NATS credentials file (.creds: user JWT and nkey seed).
    #[arg(long)]
    pub nats_creds: Option<PathBuf>,
    /// Prefix of the stream, buckets and subjects, so several relays can share a cluster.
    #[arg(long, default_value = "clawlink", value_parser = prefix)]
    pub nats_prefix: String,
    /// Replicas of the stream and buckets (3: survives the loss of one NATS server).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=5))]
    pub nats_replicas: u16,
    /// Most bytes of queued messages in the stream (0 = unlimited); beyond, /send gets 507.
    #[arg(long, default_value_t = 0)]
    pub nats_max_bytes: u64,
}

fn prefix(p: &str) -> Result<String, String> {
    match valid_prefix(p) {
        true => Ok(p.to_string()),
        false => Err("1-32 characters of A-Z a-z 0-9 _ -".into()),
    }
}

impl NatsArgs {
    /// The client configuration, with the relay's caps.
    pub fn config(&self, queue_cap: u32, max_message_bytes: u32) -> NatsConfig {
        NatsConfig {
            urls: self.nats.clone(),
            creds: self.nats_creds.clone(),
            prefix: self.nats_prefix.clone(),
            replicas: usize::from(self.nats_replicas),
            queue_cap: i64::from(queue_cap),
            max_bytes: match self.nats_max_bytes {
                0 => -1,
                n => i64::try_from(n).unwrap_or(i64::MAX),
            },
            max_message_bytes: i32::try_from(max_message_bytes).unwrap_or(i32::MAX),
        }
    }

    /// Connects to JetStream; keeps this node's presence fresh until `shutdown`.
    pub async fn open(
        &self,
        queue_cap: u32,
        max_message_bytes: u32,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Arc<dyn RelayBackend>> {
        let store = NatsStore::open(&self.config(queue_cap, max_message_bytes)).await?;
        tokio::spawn(store.clone().keep_presence(shutdown));
        Ok(Arc::new(store))
    }
}

/// `clawlinkd relay-server migrate`: copies a sled relay store into JetStream.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The sled relay's data directory (only read).
    #[arg(long)]
    pub from_sled: PathBuf,
    /// NATS servers, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub to_nats: Vec<String>,
    /// NATS credentials file.
    #[arg(long)]
    pub nats_creds: Option<PathBuf>,
    /// Deployment prefix (as the relay nodes' --nats-prefix).
    #[arg(long, default_value = "clawlink", value_parser = prefix)]
    pub nats_prefix: String,
    /// Replicas (as the relay nodes').
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=5))]
    pub nats_replicas: u16,
    /// Per-recipient cap (as the relay nodes' --queue-cap).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue_cap: u32,
}

/// Runs the migration and prints what it did.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let nats = NatsArgs {
        nats: args.to_nats,
        nats_creds: args.nats_creds,
        nats_prefix: args.nats_prefix,
        nats_replicas: args.nats_replicas,
        nats_max_bytes: 0,
    };
    let cfg = nats.config(args.queue_cap, 64 * 1024);
    let m = super::storage::jetstream::migrate::migrate(&args.from_sled, &cfg).await?;
    println!(
        "migrated: {} accounts created ({} already there), {} messages queued ({} already there)",
        m.accounts, m.accounts_present, m.messages, m.messages_present
    );
    Ok(())
}
