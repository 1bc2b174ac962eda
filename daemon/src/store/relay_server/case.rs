//! Lowercasing the ids registered before ids were case-insensitive.
//!
//! Ids are now registered lowercase, and a lookup folds case ([`crate::relay_server`]). A store
//! written before that can hold `Alice`. At open, each such id is renamed to its lowercase
//! form when that form is free: its queue (`relay_queue`, `ID 0x00 SEQ` → `id 0x00 SEQ`), the
//! idempotency keys it sent under (`relay_sent`, `ID 0x00 KEY`), and last its registration
//! (`relay_users`). Sequence numbers are global, so moved keys cannot collide.
//!
//! Each step is a transaction over at most [`CHUNK`] records (a queue can be large), and the
//! registration moves last: after a crash half-way, the old registration is still there and
//! the next start finishes the move. An id whose lowercase form is registered too (`Alice`
//! next to `alice`) is a clash: it is left as it is, reachable only by its exact spelling,
//! and logged at every start.

use super::RelayStore;
use crate::store::{Result, StoreError};
use sled::transaction::{ConflictableTransactionError, TransactionError};

/// Records moved per transaction.
const CHUNK: usize = 256;

/// The key `old_prefix ++ rest` under `new_prefix` instead.
fn rekey(key: &[u8], old_prefix: &[u8], new_prefix: &[u8]) -> Vec<u8> {
    let mut k = new_prefix.to_vec();
    k.extend_from_slice(&key[old_prefix.len()..]);
    k
}

fn storage(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    }
}

/// Moves every record of `tree` under `old ++ 0x00` to `new ++ 0x00`, [`CHUNK`] at a time.
fn move_prefix(tree: &sled::Tree, old: &str, new: &str) -> Result<usize> {
    let (old_prefix, new_prefix) = (super::queue_prefix(old), super::queue_prefix(new));
    let mut moved = 0;
    loop {
        let chunk: Vec<(sled::IVec, sled::IVec)> = tree
            .scan_prefix(&old_prefix)
            .take(CHUNK)
            .collect::<std::result::Result<_, _>>()?;
        if chunk.is_empty() {
            return Ok(moved);
        }
        tree.transaction(|t| {
            for (k, v) in &chunk {
                t.insert(rekey(k, &old_prefix, &new_prefix), v)?;
                t.remove(k)?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })
        .map_err(storage)?;
        moved += chunk.len();
    }
}

impl RelayStore {
    /// Renames every id with upper-case letters whose lowercase form is free; returns how
    /// many were renamed. Runs at open, before anything else reads the trees.
    pub(super) fn lowercase_ids(&self) -> Result<usize> {
        let mut renamed = 0;
        let upper: Vec<String> = self
            .accounts()?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| id.bytes().any(|b| b.is_ascii_uppercase()))
            .collect();
        for id in upper {
            let lower = id.to_ascii_lowercase();
            if self.users.contains_key(lower.as_bytes())? {
                tracing::warn!(
                    id = %id,
                    twin = %lower,
                    "relay id registered before ids were case-insensitive clashes with a lowercase one; left as it is (reachable only as {id})"
                );
                continue;
            }
            let queued = move_prefix(&self.queue, &id, &lower)?;
            move_prefix(&self.sent, &id, &lower)?;
            self.users
                .transaction(|users| {
                    if let Some(rec) = users.remove(id.as_bytes())? {
                        users.insert(lower.as_bytes(), rec)?;
                    }
                    Ok::<_, ConflictableTransactionError<StoreError>>(())
                })
                .map_err(storage)?;
            tracing::info!(from = %id, to = %lower, queued, "relay id renamed to lowercase");
            renamed += 1;
        }
        if renamed > 0 {
            self.db.flush_now()?;
        }
        Ok(renamed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AccountRecord, QueueCaps, QueuedMessage, RelayStore};
    use crate::store::{encode, Db};

    fn record(name: &str) -> AccountRecord {
        AccountRecord {
            name: name.into(),
            secret_hash: format!("hash-of-{name}"),
            created_ms: 1,
        }
    }

    fn message(text: &str) -> QueuedMessage {
        QueuedMessage {
            seq: 0,
            from: "Carol".into(),
            from_name: "C".into(),
            message: text.into(),
            ts: 1,
        }
    }

    #[tokio::test]
    async fn upper_case_ids_are_renamed_once_and_clashes_are_left() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let db = Db::open(&tmp.path().join("data"))?;
        // The old layout, written directly: `Alice` with two queued messages and a sent key,
        // `Bob` next to a lowercase `bob` (a clash), and a plain `carol`.
        {
            let users = db.tree("relay_users")?;
            let queue = db.tree("relay_queue")?;
            let sent = db.tree("relay_sent")?;
            for id in ["Alice", "Bob", "bob", "carol"] {
                users.insert(id.as_bytes(), encode(&record(id))?)?;
            }
            for (id, seq, text) in [("Alice", 7u64, "one"), ("Alice", 9, "two"), ("Bob", 8, "b")] {
                queue.insert(super::super::queue_key(id, seq), encode(&message(text))?)?;
            }
            sent.insert(super::super::sent_key("Alice", "k1"), &[0u8; 16][..])?;
        }
        let s = RelayStore::open(&db, QueueCaps::default())?;
        let ids: Vec<String> = s.accounts()?.into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["Bob", "alice", "bob", "carol"]);
        let alice = s.account("alice")?.map(|r| r.secret_hash);
        assert_eq!(alice.as_deref(), Some("hash-of-Alice"));
        let texts: Vec<String> = s
            .pending("alice", None, 10)?
            .into_iter()
            .map(|m| format!("{}:{}", m.seq, m.message))
            .collect();
        assert_eq!(texts, ["7:one", "9:two"]);
        assert!(s.pending("Alice", None, 10)?.is_empty());
        assert_eq!(s.sent("alice", "k1")?, Some((0, 0)));
        assert_eq!(s.quota().queued("alice"), 2);
        // The clash keeps its spelling and its queue.
        assert_eq!(s.pending("Bob", None, 10)?.len(), 1);
        assert_eq!(s.quota().queued("Bob"), 1);
        // Once: a second open renames nothing.
        assert_eq!(s.lowercase_ids()?, 0);
        Ok(())
    }
}
