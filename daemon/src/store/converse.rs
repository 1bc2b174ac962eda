//! Replies owed under `converse`: the agent turns whose answer still has to go back to the
//! peer (see `policy::converse`).
//!
//! Tree `policy_converse`: inbox id (u64 big-endian) → JSON [`Owed`]. A record is written in
//! the same batch as the delivery that started the turn (before the message leaves the
//! agent queue), so a crash between the two starts the turn again (the gateway drops the
//! repeat by its idempotency key) and still owes one reply. Once the reply is sealed, the
//! envelope is written into the record before it goes to the outbox, so a crash between the
//! two queues the same envelope (same id: the receiver stores it once), never a second one.

use super::{decode, encode, Db, Result};
use serde::{Deserialize, Serialize};

/// One reply owed to a peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Owed {
    /// The inbox id of the message the agent is answering.
    pub id: u64,
    /// The run id `/hooks/agent` answered with: the hook's run, not the agent's (that one is
    /// [`Owed::agent_run`]). Kept to tie the daemon's log lines to the gateway's.
    pub run_id: String,
    /// The peer's session (`hook:clawlink:…`).
    pub session: String,
    /// The policy sender key (`friend:bob`, `a2a:hermes`).
    pub sender: String,
    /// Hops of the message answered; the reply carries one more.
    pub hops: u32,
    /// When the turn started (ms since epoch).
    pub started_ms: u64,
    /// The gateway's id of the agent run that answers (not the hook's), once seen.
    #[serde(default)]
    pub agent_run: Option<String>,
    /// The sealed reply (envelope id, text), once made.
    #[serde(default)]
    pub sealed: Option<(String, String)>,
}

/// Handle to the tree. Cheap to clone.
#[derive(Clone)]
pub struct ConverseStore {
    owed: sled::Tree,
}

impl ConverseStore {
    /// Opens the tree.
    pub fn open(db: &Db) -> Result<ConverseStore> {
        Ok(ConverseStore {
            owed: db.tree("policy_converse")?,
        })
    }

    /// Records (or updates) a reply owed.
    pub fn put(&self, o: &Owed) -> Result<()> {
        self.owed.insert(o.id.to_be_bytes(), encode(o)?)?;
        Ok(())
    }

    /// Every reply owed, oldest message first.
    pub fn all(&self) -> Result<Vec<Owed>> {
        self.owed
            .iter()
            .map(|r| {
                let (_, v) = r?;
                decode("policy_converse", &v)
            })
            .collect()
    }

    /// The reply for message `id` is settled (sent, or nothing to send).
    pub fn done(&self, id: u64) -> Result<()> {
        self.owed.remove(id.to_be_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn owed_replies_survive_a_reopen_and_keep_their_envelope() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("data");
        let mut o = Owed {
            id: 9,
            run_id: "run-1".into(),
            session: "hook:clawlink:friend-bob-1".into(),
            sender: "friend:bob".into(),
            hops: 1,
            started_ms: 5,
            agent_run: None,
            sealed: None,
        };
        {
            let db = Db::open(&dir)?;
            let s = ConverseStore::open(&db)?;
            s.put(&o)?;
            o.sealed = Some(("e1".into(), "cle1:x".into()));
            s.put(&o)?;
            db.durable().await?;
        }
        // The flusher task lets go of the database once it runs again.
        tokio::task::yield_now().await;
        let db = Db::open(&dir)?;
        let s = ConverseStore::open(&db)?;
        assert_eq!(s.all()?, vec![o.clone()]);
        s.done(9)?;
        assert!(s.all()?.is_empty());
        Ok(())
    }
}
