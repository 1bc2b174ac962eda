//! Persistence of the `nexus-server` role: sessions, their messages, and pairing codes.
//!
//! ## Trees
//!
//! | tree | key | value |
//! |---|---|---|
//! | `nexus_sessions` | session id (24 raw bytes) | [`SessionRecord`] as JSON |
//! | `nexus_expiry` | session id | expiry, ms since the epoch, u64 big-endian |
//! | `nexus_messages` | session id ‖ cursor (u64 big-endian) | [`MessageRecord`] as JSON |
//! | `nexus_pairs` | pairing code (ASCII) | [`PairRecord`] as JSON |
//!
//! The expiry lives in its own tree because every send slides it: rewriting an 8-byte value
//! per message is cheap, rewriting the session record (with up to 50 members) is not. The
//! effective expiry is the later of the two (the record carries the value as of its last write).
//!
//! Message keys sort by session, then cursor, so "messages after cursor C" is one range scan,
//! the last cursor of a session is one reverse seek, and deleting a session is one range.
//!
//! Nothing here waits for the disk; callers acknowledge only after [`Db::durable`].

use super::{decode, decode_u64, encode, Db, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Raw session id: 192 random bits (48 hex characters on the wire).
pub type SessionId = [u8; 24];

/// A session's settings and members.
#[derive(Clone, Serialize, Deserialize, Debug)]
pub struct SessionRecord {
    /// Time to live in seconds; each send and each renew pushes the expiry this far ahead.
    pub ttl_secs: u64,
    /// Maximum number of members.
    pub max_agents: u32,
    /// The creator, if the session was created with one (cannot leave).
    pub creator: Option<String>,
    /// Creation time, ms.
    pub created_ms: u64,
    /// Expiry as of the last write of this record, ms.
    pub expires_ms: u64,
    /// Members in join order.
    pub agents: Vec<AgentRecord>,
}

/// One member of a session.
#[derive(Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    /// The agent id (`X-Agent-Id`).
    pub agent_id: String,
    /// SHA-256 (hex) of the member's session key; the key itself is never stored.
    pub key_hash: String,
    /// Join time, ms.
    pub joined_ms: u64,
    /// Last send or poll, ms (persisted when the record is next written).
    pub last_seen_ms: u64,
}

impl fmt::Debug for AgentRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentRecord")
            .field("agent_id", &self.agent_id)
            .field("joined_ms", &self.joined_ms)
            .finish_non_exhaustive()
    }
}

/// One stored message.
#[derive(Clone, Serialize, Deserialize)]
pub struct MessageRecord {
    /// `msg_...` id.
    pub id: String,
    /// Sender (`system` for the greeting).
    pub agent_id: String,
    /// Text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// Sent with the sender's valid session key.
    pub verified: bool,
    /// Send time, ms.
    pub sent_ms: u64,
}

impl fmt::Debug for MessageRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageRecord")
            .field("id", &self.id)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

/// A pairing code.
#[derive(Clone, Serialize, Deserialize, Debug)]
pub struct PairRecord {
    /// Session id (hex) the code leads to.
    pub session_id: String,
    /// Creation time, ms.
    pub created_ms: u64,
    /// Expiry, ms.
    pub expires_ms: u64,
    /// Who claimed it, once claimed.
    pub claimed_by: Option<String>,
}

/// A session as found at start-up.
#[derive(Debug)]
pub struct LoadedSession {
    /// Its id.
    pub id: SessionId,
    /// Its record.
    pub record: SessionRecord,
    /// Effective expiry, ms.
    pub expires_ms: u64,
    /// Highest stored cursor, if any message is stored.
    pub last_cursor: Option<u64>,
    /// Number of stored messages.
    pub message_count: u64,
}

/// The Nexus server's trees.
#[derive(Clone)]
pub struct NexusStore {
    db: Db,
    sessions: sled::Tree,
    expiry: sled::Tree,
    messages: sled::Tree,
    pairs: sled::Tree,
}

fn message_key(id: &SessionId, cursor: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..24].copy_from_slice(id);
    key[24..].copy_from_slice(&cursor.to_be_bytes());
    key
}

impl NexusStore {
    /// Opens the trees.
    pub fn open(db: Db) -> Result<Self> {
        Ok(NexusStore {
            sessions: db.tree("nexus_sessions")?,
            expiry: db.tree("nexus_expiry")?,
            messages: db.tree("nexus_messages")?,
            pairs: db.tree("nexus_pairs")?,
            db,
        })
    }

    /// The database (for [`Db::durable`]).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Writes a session record and its expiry.
    pub fn put_session(&self, id: &SessionId, record: &SessionRecord) -> Result<()> {
        self.sessions.insert(id, encode(record)?)?;
        self.expiry.insert(id, &record.expires_ms.to_be_bytes())?;
        Ok(())
    }

    /// Moves a session's expiry.
    pub fn set_expiry(&self, id: &SessionId, expires_ms: u64) -> Result<()> {
        self.expiry.insert(id, &expires_ms.to_be_bytes())?;
        Ok(())
    }

    /// Stores a message at `cursor`.
    pub fn put_message(&self, id: &SessionId, cursor: u64, record: &MessageRecord) -> Result<()> {
        self.messages
            .insert(message_key(id, cursor), encode(record)?)?;
        Ok(())
    }

    /// Messages with `after < cursor < end` (all from 0 when `after` is `None`), at most `limit`.
    pub fn messages_between(
        &self,
        id: &SessionId,
        after: Option<u64>,
        end: u64,
        limit: usize,
    ) -> Result<Vec<(u64, MessageRecord)>> {
        let start = match after {
            Some(c) => match c.checked_add(1) {
                Some(s) => s,
                None => return Ok(Vec::new()),
            },
            None => 0,
        };
        if start >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for item in self
            .messages
            .range(message_key(id, start)..message_key(id, end))
            .take(limit)
        {
            let (k, v) = item?;
            let cursor = decode_u64(&k[24..]).ok_or(super::StoreError::Corrupt {
                tree: "nexus_messages",
                detail: "key".into(),
            })?;
            out.push((cursor, decode("nexus_messages", &v)?));
        }
        Ok(out)
    }

    /// Every stored session (expired ones included; the caller sweeps them).
    pub fn load_sessions(&self) -> Result<Vec<LoadedSession>> {
        let mut out = Vec::new();
        for item in self.sessions.iter() {
            let (k, v) = item?;
            let Ok(id) = <SessionId>::try_from(&k[..]) else {
                tracing::warn!("skipping a session record with a malformed key");
                continue;
            };
            let record: SessionRecord = decode("nexus_sessions", &v)?;
            let slid = self
                .expiry
                .get(id)?
                .and_then(|v| decode_u64(&v))
                .unwrap_or(0);
            let expires_ms = record.expires_ms.max(slid);
            let range = message_key(&id, 0)..=message_key(&id, u64::MAX);
            let last_cursor = match self.messages.range(range.clone()).next_back() {
                Some(item) => decode_u64(&item?.0[24..]),
                None => None,
            };
            let message_count = self.messages.range(range).keys().count() as u64;
            out.push(LoadedSession {
                id,
                record,
                expires_ms,
                last_cursor,
                message_count,
            });
        }
        Ok(out)
    }

    /// Deletes a session, its expiry and all its messages; returns how many messages went.
    pub fn delete_session(&self, id: &SessionId) -> Result<u64> {
        let mut n = 0;
        let mut batch = sled::Batch::default();
        for key in self
            .messages
            .range(message_key(id, 0)..=message_key(id, u64::MAX))
            .keys()
        {
            batch.remove(key?);
            n += 1;
        }
        self.messages.apply_batch(batch)?;
        self.expiry.remove(id)?;
        self.sessions.remove(id)?;
        Ok(n)
    }

    /// A pairing code's record.
    pub fn get_pair(&self, code: &str) -> Result<Option<PairRecord>> {
        self.pairs
            .get(code.as_bytes())?
            .map(|v| decode("nexus_pairs", &v))
            .transpose()
    }

    /// Stores a new pairing code; false if the code already exists (nothing written).
    pub fn insert_pair(&self, code: &str, record: &PairRecord) -> Result<bool> {
        let swapped = self.pairs.compare_and_swap(
            code.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(record)?),
        )?;
        Ok(swapped.is_ok())
    }

    /// Overwrites a pairing code's record.
    pub fn put_pair(&self, code: &str, record: &PairRecord) -> Result<()> {
        self.pairs.insert(code.as_bytes(), encode(record)?)?;
        Ok(())
    }

    /// Deletes the pairing codes for which `remove` says so; returns how many.
    pub fn sweep_pairs(&self, mut remove: impl FnMut(&PairRecord) -> bool) -> Result<usize> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in self.pairs.iter() {
            let (k, v) = item?;
            // An undecodable record can never be claimed: drop it too.
            if decode::<PairRecord>("nexus_pairs", &v)
                .map(|r| remove(&r))
                .unwrap_or(true)
            {
                batch.remove(k);
                n += 1;
            }
        }
        self.pairs.apply_batch(batch)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u64) -> MessageRecord {
        MessageRecord {
            id: format!("msg_{n}"),
            agent_id: "a".into(),
            text: Some(format!("m{n}")),
            json: None,
            verified: true,
            sent_ms: n,
        }
    }

    #[tokio::test]
    async fn messages_range_reload_and_delete() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = NexusStore::open(Db::open(&dir.path().join("data"))?)?;
        let (a, b) = ([1u8; 24], [2u8; 24]);
        let rec = SessionRecord {
            ttl_secs: 60,
            max_agents: 2,
            creator: None,
            created_ms: 1,
            expires_ms: 10,
            agents: vec![],
        };
        store.put_session(&a, &rec)?;
        store.put_session(&b, &rec)?;
        store.set_expiry(&a, 99)?;
        for n in 0..5 {
            store.put_message(&a, n, &msg(n))?;
            store.put_message(&b, n + 256, &msg(n))?;
        }
        let got: Vec<u64> = store
            .messages_between(&a, Some(1), 4, 100)?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(got, vec![2, 3]);
        assert_eq!(store.messages_between(&a, None, 100, 2)?.len(), 2);
        assert!(store
            .messages_between(&a, Some(u64::MAX), u64::MAX, 10)?
            .is_empty());
        let loaded = store.load_sessions()?;
        let la = loaded
            .iter()
            .find(|s| s.id == a)
            .ok_or_else(|| anyhow::anyhow!("a missing"))?;
        assert_eq!(
            (la.expires_ms, la.last_cursor, la.message_count),
            (99, Some(4), 5)
        );
        assert_eq!(store.delete_session(&a)?, 5);
        let loaded = store.load_sessions()?;
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].last_cursor, Some(260));
        assert!(store.messages_between(&a, None, u64::MAX, 100)?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn pair_codes_are_inserted_once_and_swept() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = NexusStore::open(Db::open(&dir.path().join("data"))?)?;
        let rec = PairRecord {
            session_id: "s".into(),
            created_ms: 0,
            expires_ms: 5,
            claimed_by: None,
        };
        assert!(store.insert_pair("A-B-C", &rec)?);
        assert!(!store.insert_pair("A-B-C", &rec)?);
        assert_eq!(store.sweep_pairs(|r| r.expires_ms < 3)?, 0);
        assert_eq!(store.sweep_pairs(|r| r.expires_ms < 10)?, 1);
        assert!(store.get_pair("A-B-C")?.is_none());
        Ok(())
    }
}
