//! `clawlinkd relay-server migrate --from-sled DIR --to-nats URL`: copies a sled relay's
//! registrations and queued messages into JetStream.
//!
//! Idempotent: an account already in the users bucket is left as it is, and each queued
//! message is recorded in the `{P}_migrated` bucket (sled seq → JetStream seq) once published,
//! so a second run publishes nothing. A run killed between a publish and its record is covered
//! by `Nats-Msg-Id: migrate/{SEQ}` within JetStream's dedup window (10 minutes): run again
//! within it. The sled directory is only read; remove it once the relay runs on NATS.
//! Message ids change (they are JetStream sequence numbers now); the order of each queue is
//! kept, since each is copied oldest first.

use super::retry::settle;
use super::{unavailable, NatsConfig, NatsStore};
use crate::relay_server::storage::{Error, RelayBackend};
use crate::store::relay_server::RelayStore;
use anyhow::Context;
use async_nats::jetstream::{kv, stream};
use std::path::Path;

/// What one run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Accounts created.
    pub accounts: usize,
    /// Accounts that were there already.
    pub accounts_present: usize,
    /// Messages published.
    pub messages: usize,
    /// Messages copied by an earlier run.
    pub messages_present: usize,
}

/// Copies everything from the sled store in `dir` to the JetStream deployment of `cfg`.
pub async fn migrate(dir: &Path, cfg: &NatsConfig) -> anyhow::Result<Migrated> {
    let db = crate::store::Db::open(dir)
        .with_context(|| format!("opening the sled relay store in {}", dir.display()))?;
    let sled = RelayStore::open(&db, Default::default())?;
    let nats = NatsStore::open(cfg).await?;
    let done = settle("creating the migrated bucket", || {
        nats.js.create_or_update_key_value(kv::Config {
            bucket: nats.layout.bucket("migrated"),
            history: 1,
            storage: stream::StorageType::File,
            num_replicas: cfg.replicas,
            ..Default::default()
        })
    })
    .await
    .context("creating the migrated bucket")?;
    let mut out = Migrated::default();
    for (id, rec) in sled.accounts()? {
        match nats.create_async(&id, &rec).await? {
            None => out.accounts += 1,
            Some(_) => out.accounts_present += 1,
        }
    }
    for id in sled.queued_counts()?.into_keys() {
        let mut after = None;
        loop {
            let page = sled.pending(&id, after, 500)?;
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            for m in &page {
                let marker = m.seq.to_string();
                if settle("reading the migrated bucket", || done.get(marker.as_str()))
                    .await?
                    .is_some()
                {
                    out.messages_present += 1;
                    continue;
                }
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("migrate/{}", m.seq).as_str());
                let payload = axum::body::Bytes::from(serde_json::to_vec(m)?);
                let ack = nats
                    .publish(nats.layout.queue_subject(&id), headers, payload)
                    .await?;
                let seq = axum::body::Bytes::from(ack.sequence.to_string());
                settle("recording a migrated message", || {
                    done.put(marker.as_str(), seq.clone())
                })
                .await
                .map_err(|e| unavailable("recording a migrated message", e))?;
                match ack.duplicate {
                    true => out.messages_present += 1,
                    false => out.messages += 1,
                }
            }
        }
    }
    nats.flush_now().map_err(|e: Error| anyhow::anyhow!(e))?;
    Ok(out)
}
