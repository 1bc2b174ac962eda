//! The outbox: every outbound message until it is delivered, refused, or expired.
//!
//! Tree `outbox`: `seq` (u64 big-endian, sled's monotonic ids, so iteration is send order)
//! → JSON [`OutboxRecord`]. The record's `payload` belongs to its transport (URL, token,
//! method, ...), may hold secrets, and is never logged: the record's `Debug` omits it.
//! Finished records are kept for a day so `clawlink outbox` can show what happened.

use super::{decode, encode, Db, Result};
use clawlink::proto::{DeliveryState, OutboxEntry};
use serde::{Deserialize, Serialize};

/// How long finished records are kept.
pub const KEEP_DONE_MS: u64 = 24 * 3600 * 1000;

/// One outbound message.
#[derive(Clone, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// Position in the tree (send order).
    pub seq: u64,
    /// Public id, also the idempotency key the peer sees.
    pub id: String,
    /// Contact name or URL as the user gave it.
    pub to: String,
    /// Transport kind: `gateway`, `relay`, `nexus`.
    pub transport: String,
    /// Delivery lane within the transport (URL, relay identity, session); order is kept per lane.
    pub target: String,
    /// Transport-owned details (may hold secrets).
    pub payload: serde_json::Value,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: u32,
    /// Queued at (ms).
    pub created_ms: u64,
    /// Give up after (ms).
    pub deadline_ms: u64,
    /// Finished at (ms).
    #[serde(default)]
    pub done_ms: Option<u64>,
    /// Last error, for a human.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl std::fmt::Debug for OutboxRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRecord")
            .field("id", &self.id)
            .field("transport", &self.transport)
            .field("target", &self.target)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl OutboxRecord {
    /// The listing form.
    pub fn entry(&self) -> OutboxEntry {
        OutboxEntry {
            id: self.id.clone(),
            to: self.to.clone(),
            transport: self.transport.clone(),
            target: self.target.clone(),
            state: self.state,
            attempts: self.attempts,
            created_at: crate::time::rfc3339(self.created_ms),
            deadline: crate::time::rfc3339(self.deadline_ms),
            last_error: self.last_error.clone(),
        }
    }
}

/// Handle to the outbox tree.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
    tree: sled::Tree,
}

impl Outbox {
    /// Opens the tree and drops finished records older than [`KEEP_DONE_MS`].
    pub fn open(db: &Db) -> Result<Outbox> {
        let ob = Outbox {
            db: db.clone(),
            tree: db.tree("outbox")?,
        };
        let now = crate::time::now_ms();
        for r in ob.all()? {
            if r.done_ms.is_some_and(|d| d + KEEP_DONE_MS < now) {
                ob.tree.remove(r.seq.to_be_bytes())?;
            }
        }
        Ok(ob)
    }

    /// Allocates the next sequence number.
    pub fn next_seq(&self) -> Result<u64> {
        Ok(self.db.sled().generate_id()?)
    }

    /// Writes a record and waits until it is on disk.
    pub async fn put_durable(&self, r: &OutboxRecord) -> Result<()> {
        self.put(r)?;
        self.db.durable().await
    }

    /// Waits until every earlier write is on disk.
    pub async fn durable(&self) -> Result<()> {
        self.db.durable().await
    }

    /// Writes a record (durable at the next flush).
    pub fn put(&self, r: &OutboxRecord) -> Result<()> {
        self.tree.insert(r.seq.to_be_bytes(), encode(r)?)?;
        Ok(())
    }

    /// Every record, in send order.
    pub fn all(&self) -> Result<Vec<OutboxRecord>> {
        self.tree
            .iter()
            .map(|r| {
                r.map_err(Into::into)
                    .and_then(|(_, v)| decode("outbox", &v))
            })
            .collect()
    }

    /// Records still to deliver, in send order.
    pub fn pending(&self) -> Result<Vec<OutboxRecord>> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|r| r.state == DeliveryState::Queued)
            .collect())
    }

    /// Number of records still to deliver.
    pub fn pending_count(&self) -> u64 {
        self.pending().map(|p| p.len() as u64).unwrap_or(0)
    }
}
