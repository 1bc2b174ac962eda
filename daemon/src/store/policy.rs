//! Inbound policy state: owner rules, the review queue and the exchange counts.
//!
//! Trees:
//! - `policy_rules`: sender key (`relay:alice`, `relay:*`) → JSON level (`"deliver"`);
//! - `policy_held`: inbox id (u64 big-endian) → JSON [`Held`], messages waiting for review;
//! - `policy_exchanges`: sender key → u32 big-endian, consecutive agent-written exchanges;
//! - `policy_ready`: inbox id → JSON level, messages released from review (approved, or their
//!   sender's policy changed) waiting to be routed at that level.
//!
//! Releasing moves an id from `policy_held` to `policy_ready` in one transaction, so a crash
//! never loses a held message nor routes it twice.
//!
//! A held message's content stays in the inbox (the review queue only points at it), so
//! approving reads it from there and nothing is copied twice.

use super::{decode, decode_u64, encode, Db, Result};
use crate::level::Level;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A message held for review.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Held {
    /// The inbox id.
    pub id: u64,
    /// The sender key.
    pub sender: String,
    /// The inbox source.
    pub source: String,
    /// Whether the sender was verified.
    pub verified: bool,
    /// When it was held (ms since epoch).
    pub held_ms: u64,
}

/// Handle to the policy trees. Cheap to clone.
#[derive(Clone)]
pub struct PolicyStore {
    rules: sled::Tree,
    held: sled::Tree,
    exchanges: sled::Tree,
    ready: sled::Tree,
}

impl PolicyStore {
    /// Opens the trees.
    pub fn open(db: &Db) -> Result<PolicyStore> {
        Ok(PolicyStore {
            rules: db.tree("policy_rules")?,
            held: db.tree("policy_held")?,
            exchanges: db.tree("policy_exchanges")?,
            ready: db.tree("policy_ready")?,
        })
    }

    /// Every owner rule.
    pub fn rules(&self) -> Result<BTreeMap<String, Level>> {
        self.rules
            .iter()
            .map(|r| {
                let (k, v) = r?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    decode("policy_rules", &v)?,
                ))
            })
            .collect()
    }

    /// Sets the rule of a sender key (validated by the caller).
    pub fn set_rule(&self, key: &str, level: Level) -> Result<()> {
        self.rules.insert(key.as_bytes(), encode(&level)?)?;
        Ok(())
    }

    /// Removes the rule of a sender key; whether there was one.
    pub fn remove_rule(&self, key: &str) -> Result<bool> {
        Ok(self.rules.remove(key.as_bytes())?.is_some())
    }

    /// Holds a message for review.
    pub fn hold(&self, h: &Held) -> Result<()> {
        self.held.insert(h.id.to_be_bytes(), encode(h)?)?;
        Ok(())
    }

    /// Held messages, oldest first.
    pub fn held(&self) -> Result<Vec<Held>> {
        self.held
            .iter()
            .map(|r| decode("policy_held", &r?.1))
            .collect()
    }

    /// One held message.
    pub fn held_one(&self, id: u64) -> Result<Option<Held>> {
        self.held
            .get(id.to_be_bytes())?
            .map(|v| decode("policy_held", &v))
            .transpose()
    }

    /// Releases a held message (approved or rejected); what it was.
    pub fn release(&self, id: u64) -> Result<Option<Held>> {
        self.held
            .remove(id.to_be_bytes())?
            .map(|v| decode("policy_held", &v))
            .transpose()
    }

    /// Moves a held message to the ready queue at `level`; what was held, if it was.
    pub fn release_to(&self, id: u64, level: Level) -> Result<Option<Held>> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let key = id.to_be_bytes();
        let value = encode(&level)?;
        let r = (&self.held, &self.ready).transaction(|(held, ready)| {
            let Some(h) = held.remove(&key)? else {
                return Ok::<_, ConflictableTransactionError<()>>(None);
            };
            ready.insert(&key, value.clone())?;
            Ok(Some(h))
        });
        let raw = match r {
            Ok(v) => v,
            Err(TransactionError::Storage(e)) => return Err(e.into()),
            Err(TransactionError::Abort(())) => None,
        };
        raw.map(|v| decode("policy_held", &v)).transpose()
    }

    /// Messages released from review, oldest first, with the level to route them at.
    pub fn ready(&self, limit: usize) -> Result<Vec<(u64, Level)>> {
        self.ready
            .iter()
            .take(limit)
            .map(|r| {
                let (k, v) = r?;
                Ok((decode_u64(&k).unwrap_or(0), decode("policy_ready", &v)?))
            })
            .collect()
    }

    /// A released message was routed.
    pub fn ready_done(&self, id: u64) -> Result<()> {
        self.ready.remove(id.to_be_bytes())?;
        Ok(())
    }

    /// Consecutive agent-written exchanges with a peer.
    pub fn exchanges(&self, key: &str) -> Result<u32> {
        Ok(self
            .exchanges
            .get(key.as_bytes())?
            .and_then(|v| decode_u64(&v))
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Sets the exchange count of a peer (0 removes it).
    pub fn set_exchanges(&self, key: &str, n: u32) -> Result<()> {
        if n == 0 {
            self.exchanges.remove(key.as_bytes())?;
        } else {
            self.exchanges
                .insert(key.as_bytes(), &u64::from(n).to_be_bytes())?;
        }
        Ok(())
    }

    /// Every peer with a nonzero exchange count.
    pub fn all_exchanges(&self) -> Result<BTreeMap<String, u32>> {
        self.exchanges
            .iter()
            .map(|r| {
                let (k, v) = r?;
                let n = decode_u64(&v).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
                Ok((String::from_utf8_lossy(&k).into_owned(), n))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rules_held_and_counts_survive_a_reopen() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("data");
        {
            let db = Db::open(&dir)?;
            let p = PolicyStore::open(&db)?;
            p.set_rule("relay:alice", Level::Deliver)?;
            let h = Held {
                id: 7,
                sender: "relay:bob".into(),
                source: "relay".into(),
                verified: false,
                held_ms: 1,
            };
            p.hold(&h)?;
            p.set_exchanges("relay:alice", 3)?;
            db.durable().await?;
        }
        tokio::task::yield_now().await;
        let db = Db::open(&dir)?;
        let p = PolicyStore::open(&db)?;
        assert_eq!(p.rules()?.get("relay:alice"), Some(&Level::Deliver));
        assert_eq!(p.held()?.len(), 1);
        assert_eq!(p.exchanges("relay:alice")?, 3);
        assert_eq!(p.release(7)?.map(|h| h.sender), Some("relay:bob".into()));
        assert!(p.held()?.is_empty());
        Ok(())
    }
}
