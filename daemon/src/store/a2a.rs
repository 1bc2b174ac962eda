//! A2A records: inbound tasks, the peers allowed to call, the conversation of each contact,
//! and the outbound tasks being followed.
//!
//! Trees:
//! - `a2a_tasks`: task id → JSON [`TaskRecord`] (the task as served, its owner, its inbox id);
//! - `a2a_task_keys`: `m \0 peer \0 messageId` → task id (a resent message is the same task) and
//!   `i \0 inbox id` (u64 big-endian) → task id (a reply to an inbox message finds its task);
//! - `a2a_peers`: name → JSON [`Peer`]: only the SHA-256 of the token is kept. Tokens are 256
//!   random bits, so a plain hash is enough (no password stretching needed) and the token
//!   itself exists only in the one answer of `clawlink a2a peer add`;
//! - `a2a_contexts`: contact name → the `contextId` used for every message to it;
//! - `a2a_follow`: outbox id → JSON [`Follow`], a task at a peer that the follower polls until
//!   it is final.
//!
//! The task itself is kept in its A2A JSON shape ([`task`]).
//!
//! Writes here become durable with the next [`Db::durable`]; callers that acknowledge
//! something wait for it.

pub mod task;

use super::{decode, encode, Db, Result};
use clawlink::Secret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use task::{PushConfig, Task, TaskState};

/// An inbound task and what clawlink knows about it.
#[derive(Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task as served to its peer.
    pub task: Task,
    /// The peer that created it (only it may read it).
    pub peer: String,
    /// The inbox message holding its text.
    pub inbox_id: u64,
    /// Whether the message was queued for the local agent when stored.
    pub agent_tracked: bool,
    /// Where to deliver its final state.
    #[serde(default)]
    pub push: Option<PushConfig>,
}

/// A peer allowed to call the endpoint.
#[derive(Clone, Serialize, Deserialize)]
pub struct Peer {
    /// Its name (the `from` of its messages).
    pub name: String,
    /// Hex SHA-256 of its token.
    pub token_sha256: String,
    /// When added (ms).
    pub added_ms: u64,
}

/// An outbound task being followed.
#[derive(Clone, Serialize, Deserialize)]
pub struct Follow {
    /// The outbox record (and A2A `messageId`) that created it.
    pub outbox_id: String,
    /// The contact it went to.
    pub contact: String,
    /// The peer's JSON-RPC endpoint.
    pub endpoint: String,
    /// The bearer token for it (may be empty).
    pub token: Secret,
    /// Whether the peer only speaks the 0.3 method names.
    pub legacy: bool,
    /// The peer's task id.
    pub task_id: String,
    /// The conversation.
    pub context_id: String,
    /// Last known state.
    pub state: TaskState,
    /// The answer (artifacts) or the reason, once final.
    #[serde(default)]
    pub text: Option<String>,
    /// The inbox message the answer landed in.
    #[serde(default)]
    pub inbox_id: Option<u64>,
}

impl std::fmt::Debug for Follow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follow")
            .field("outbox_id", &self.outbox_id)
            .field("task_id", &self.task_id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Handle to the A2A trees. Cheap to clone.
#[derive(Clone)]
pub struct A2aStore {
    db: Db,
    tasks: sled::Tree,
    keys: sled::Tree,
    peers: sled::Tree,
    contexts: sled::Tree,
    follow: sled::Tree,
}

/// SHA-256 of a token, hex.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn msg_key(peer: &str, message_id: &str) -> Vec<u8> {
    format!("m\0{peer}\0{message_id}").into_bytes()
}

fn inbox_key(inbox_id: u64) -> Vec<u8> {
    let mut k = b"i\0".to_vec();
    k.extend_from_slice(&inbox_id.to_be_bytes());
    k
}

impl A2aStore {
    /// Opens the trees.
    pub fn open(db: &Db) -> Result<A2aStore> {
        Ok(A2aStore {
            db: db.clone(),
            tasks: db.tree("a2a_tasks")?,
            keys: db.tree("a2a_task_keys")?,
            peers: db.tree("a2a_peers")?,
            contexts: db.tree("a2a_contexts")?,
            follow: db.tree("a2a_follow")?,
        })
    }

    /// Waits until every earlier write is on disk.
    pub async fn durable(&self) -> Result<()> {
        self.db.durable().await
    }

    /// A task by id.
    pub fn task(&self, id: &str) -> Result<Option<TaskRecord>> {
        self.tasks
            .get(id.as_bytes())?
            .map(|v| decode("a2a_tasks", &v))
            .transpose()
    }

    fn task_by_key(&self, key: &[u8]) -> Result<Option<TaskRecord>> {
        match self.keys.get(key)? {
            Some(id) => self.task(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// The task a peer's message created, if it was seen before.
    pub fn task_for_message(&self, peer: &str, message_id: &str) -> Result<Option<TaskRecord>> {
        self.task_by_key(&msg_key(peer, message_id))
    }

    /// The task of an inbox message, if it came by A2A.
    pub fn task_for_inbox(&self, inbox_id: u64) -> Result<Option<TaskRecord>> {
        self.task_by_key(&inbox_key(inbox_id))
    }

    /// Writes a task and its lookup keys (`message_id` is the peer's id for the message).
    pub fn put_task(&self, r: &TaskRecord, message_id: &str) -> Result<()> {
        self.tasks.insert(r.task.id.as_bytes(), encode(r)?)?;
        self.keys
            .insert(msg_key(&r.peer, message_id), r.task.id.as_bytes())?;
        self.keys
            .insert(inbox_key(r.inbox_id), r.task.id.as_bytes())?;
        Ok(())
    }

    /// Rewrites a task (its keys are unchanged).
    pub fn update_task(&self, r: &TaskRecord) -> Result<()> {
        self.tasks.insert(r.task.id.as_bytes(), encode(r)?)?;
        Ok(())
    }

    /// Tasks not final yet.
    pub fn open_tasks(&self) -> Result<Vec<TaskRecord>> {
        let mut out = Vec::new();
        for item in self.tasks.iter() {
            let (_, v) = item?;
            let r: TaskRecord = decode("a2a_tasks", &v)?;
            if !r.task.status.state.is_terminal() {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Every task.
    pub fn all_tasks(&self) -> Result<Vec<TaskRecord>> {
        self.tasks
            .iter()
            .map(|r| {
                r.map_err(Into::into)
                    .and_then(|(_, v)| decode("a2a_tasks", &v))
            })
            .collect()
    }

    /// Number of stored tasks.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// Adds (or re-keys) a peer; returns its new token, which is not kept.
    pub fn add_peer(&self, name: &str) -> Result<String> {
        let bytes: [u8; 32] = rand::random();
        use base64::Engine;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let peer = Peer {
            name: name.to_string(),
            token_sha256: token_hash(&token),
            added_ms: crate::time::now_ms(),
        };
        self.peers.insert(name.as_bytes(), encode(&peer)?)?;
        Ok(token)
    }

    /// Every peer, by name.
    pub fn peers(&self) -> Result<Vec<Peer>> {
        self.peers
            .iter()
            .map(|r| {
                r.map_err(Into::into)
                    .and_then(|(_, v)| decode("a2a_peers", &v))
            })
            .collect()
    }

    /// Removes a peer; whether it existed.
    pub fn remove_peer(&self, name: &str) -> Result<bool> {
        Ok(self.peers.remove(name.as_bytes())?.is_some())
    }

    /// The peer whose token this is (compared in constant time against every stored hash).
    pub fn peer_for_token(&self, token: &str) -> Result<Option<String>> {
        let presented = token_hash(token);
        let mut found = None;
        for p in self.peers()? {
            if crate::http::secret_eq(presented.as_bytes(), p.token_sha256.as_bytes()) {
                found = Some(p.name);
            }
        }
        Ok(found)
    }

    /// The conversation id of a contact, created on first use.
    pub fn context_for(&self, contact: &str) -> Result<String> {
        if let Some(v) = self.contexts.get(contact.as_bytes())? {
            return Ok(String::from_utf8_lossy(&v).into_owned());
        }
        let ctx = format!("ctx-clawlink-{}", crate::util::hex::new_id());
        let prev = self.contexts.compare_and_swap(
            contact.as_bytes(),
            None as Option<&[u8]>,
            Some(ctx.as_bytes()),
        )?;
        match prev {
            Ok(()) => Ok(ctx),
            Err(e) => Ok(e
                .current
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or(ctx)),
        }
    }

    /// Writes a followed task.
    pub fn put_follow(&self, f: &Follow) -> Result<()> {
        self.follow.insert(f.outbox_id.as_bytes(), encode(f)?)?;
        Ok(())
    }

    /// A followed task by outbox id.
    pub fn follow(&self, outbox_id: &str) -> Result<Option<Follow>> {
        self.follow
            .get(outbox_id.as_bytes())?
            .map(|v| decode("a2a_follow", &v))
            .transpose()
    }

    /// Followed tasks not final yet (resumed after a restart).
    pub fn open_follows(&self) -> Result<Vec<Follow>> {
        let mut out = Vec::new();
        for item in self.follow.iter() {
            let (_, v) = item?;
            let f: Follow = decode("a2a_follow", &v)?;
            if !f.state.is_terminal() && !f.state.is_interrupted() {
                out.push(f);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn peers_are_found_by_token_and_only_the_hash_is_kept() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let db = Db::open(&tmp.path().join("data"))?;
        let s = A2aStore::open(&db)?;
        let t1 = s.add_peer("hermes")?;
        let t2 = s.add_peer("iris")?;
        assert_eq!(s.peer_for_token(&t1)?.as_deref(), Some("hermes"));
        assert_eq!(s.peer_for_token(&t2)?.as_deref(), Some("iris"));
        assert_eq!(s.peer_for_token("wrong")?, None);
        for p in s.peers()? {
            assert!(!p.token_sha256.contains(&t1) && !p.token_sha256.contains(&t2));
        }
        assert_eq!(s.context_for("hermes")?, s.context_for("hermes")?);
        assert_ne!(s.context_for("hermes")?, s.context_for("iris")?);
        Ok(())
    }
}
