//! The outbox: every outbound message until it is delivered, refused, or expired.
//!
//! Tree `outbox`: `seq` (u64 big-endian, sled's monotonic ids, so iteration is send order)
//! → JSON [`OutboxRecord`]. The record's payload belongs to its transport (URL, token,
//! method, ...), may hold secrets, and is never logged: the record's `Debug` omits it.
//! Finished records are kept for a day so `clawlink outbox` can show what happened.
//!
//! The store does not know the payload's type: it is the `P` of [`Outbox<P>`], one typed
//! enum of the transports (`crate::transport::Payload`), written as part of the record in
//! one serialization under the key `send`, externally tagged by transport kind:
//!
//! ```json
//! {"seq":7,"id":"…","to":"bob","transport":"relay","target":"http://r:3900",
//!  "send":{"relay":{"relay":"http://r:3900","to":"bob","message":"hi","from":null}},
//!  "state":"queued","attempts":0,"created_ms":…,"deadline_ms":…}
//! ```
//!
//! Records written before the payload was typed have an untagged `payload` object instead of
//! `send`; they are read as `{transport: payload}`, so a queue that survives an upgrade is
//! still delivered.

use super::{decode, encode, Db, Result};
use clawlink::proto::{DeliveryState, OutboxEntry};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// How long finished records are kept.
pub const KEEP_DONE_MS: u64 = 24 * 3600 * 1000;

/// One outbound message with its transport payload `P`.
#[derive(Clone, Serialize)]
pub struct OutboxRecord<P> {
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
    #[serde(rename = "send")]
    pub payload: P,
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

/// A record as stored, in the current (`send`) or the first (`payload`) format.
#[derive(Deserialize)]
struct Stored<P> {
    seq: u64,
    id: String,
    to: String,
    transport: String,
    target: String,
    #[serde(default = "Option::default")]
    send: Option<P>,
    #[serde(default)]
    payload: Option<serde_json::Value>,
    state: DeliveryState,
    attempts: u32,
    created_ms: u64,
    deadline_ms: u64,
    #[serde(default)]
    done_ms: Option<u64>,
    #[serde(default)]
    last_error: Option<String>,
}

impl<'de, P: DeserializeOwned> Deserialize<'de> for OutboxRecord<P> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let s = Stored::<P>::deserialize(d)?;
        let payload = match (s.send, s.payload) {
            (Some(p), _) => p,
            (None, Some(old)) => {
                let mut tagged = serde_json::Map::new();
                tagged.insert(s.transport.clone(), old);
                serde_json::from_value(serde_json::Value::Object(tagged))
                    .map_err(D::Error::custom)?
            }
            (None, None) => return Err(D::Error::missing_field("send")),
        };
        Ok(OutboxRecord {
            seq: s.seq,
            id: s.id,
            to: s.to,
            transport: s.transport,
            target: s.target,
            payload,
            state: s.state,
            attempts: s.attempts,
            created_ms: s.created_ms,
            deadline_ms: s.deadline_ms,
            done_ms: s.done_ms,
            last_error: s.last_error,
        })
    }
}

impl<P> std::fmt::Debug for OutboxRecord<P> {
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

impl<P> OutboxRecord<P> {
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
            peer: None,
        }
    }
}

/// Handle to the outbox tree, whose records carry payloads of type `P`.
pub struct Outbox<P> {
    db: Db,
    tree: sled::Tree,
    _payload: PhantomData<fn() -> P>,
}

impl<P> Clone for Outbox<P> {
    fn clone(&self) -> Self {
        Outbox {
            db: self.db.clone(),
            tree: self.tree.clone(),
            _payload: PhantomData,
        }
    }
}

impl<P: Serialize + DeserializeOwned> Outbox<P> {
    /// Opens the tree and drops finished records older than [`KEEP_DONE_MS`].
    pub fn open(db: &Db) -> Result<Outbox<P>> {
        let ob = Outbox {
            db: db.clone(),
            tree: db.tree("outbox")?,
            _payload: PhantomData,
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
    pub async fn put_durable(&self, r: &OutboxRecord<P>) -> Result<()> {
        self.put(r)?;
        self.db.durable().await
    }

    /// Waits until every earlier write is on disk.
    pub async fn durable(&self) -> Result<()> {
        self.db.durable().await
    }

    /// Asks for a flush of every earlier write without waiting for it (see
    /// [`Db::flush_soon`]).
    pub fn flush_soon(&self) -> Result<()> {
        self.db.flush_soon()
    }

    /// Writes a record (durable at the next flush).
    pub fn put(&self, r: &OutboxRecord<P>) -> Result<()> {
        self.tree.insert(r.seq.to_be_bytes(), encode(r)?)?;
        Ok(())
    }

    /// Every record, in send order.
    pub fn all(&self) -> Result<Vec<OutboxRecord<P>>> {
        self.tree
            .iter()
            .map(|r| {
                r.map_err(Into::into)
                    .and_then(|(_, v)| decode("outbox", &v))
            })
            .collect()
    }

    /// Records still to deliver, in send order.
    pub fn pending(&self) -> Result<Vec<OutboxRecord<P>>> {
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
