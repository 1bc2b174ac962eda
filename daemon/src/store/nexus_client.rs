//! Nexus sessions the agent daemon has joined (client side).
//!
//! Tree `nexus_joined`: session id → JSON [`JoinedSession`]. One record per session holds
//! everything needed to keep polling it after a restart: the server it is bound to, our agent
//! id, our session key (a [`Secret`]: written to disk, never to a log or a listing), the
//! ingest cursor of the background poller, the read cursor of `clawlink nexus poll`, and the
//! last expiry the server told us.
//!
//! Cursor rule: the background poller advances `cursor` only after the messages up to it are
//! durably in the inbox, so a crash re-fetches at most one page, which the inbox's dedup key
//! (`sid/cursor`) stores once. Cursors only move forward ([`NexusSessions::advance`]).

use super::{decode, encode, Db, Result};
use clawlink::Secret;
use serde::{Deserialize, Serialize};

const TREE: &str = "nexus_joined";

/// One joined session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinedSession {
    /// Session id.
    pub sid: String,
    /// Base URL of the server it lives on, without a trailing slash.
    pub server: String,
    /// Our agent id in it.
    pub agent_id: String,
    /// Whether we created it (its greeting, from `system` at cursor 0, is then our own text).
    #[serde(default)]
    pub creator: bool,
    /// Our session key.
    pub key: Secret,
    /// Last cursor stored in the inbox by the background poller (`None`: nothing yet).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Last cursor returned by `clawlink nexus poll` without `--after`.
    #[serde(default)]
    pub read_cursor: Option<String>,
    /// Expiry as last reported by the server (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Session TTL, seconds, if known.
    #[serde(default)]
    pub ttl: Option<u64>,
    /// `active` or `expired`.
    #[serde(default = "active")]
    pub state: String,
}

fn active() -> String {
    "active".into()
}

/// Orders two decimal cursors (longer is larger; non-numeric compare as strings).
pub fn cursor_gt(a: &str, b: &str) -> bool {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => (a.len(), a) > (b.len(), b),
    }
}

/// Handle to the joined-sessions tree. Cheap to clone.
#[derive(Clone)]
pub struct NexusSessions {
    db: Db,
    tree: sled::Tree,
}

impl NexusSessions {
    /// Opens the tree.
    pub fn open(db: &Db) -> Result<NexusSessions> {
        Ok(NexusSessions {
            db: db.clone(),
            tree: db.tree(TREE)?,
        })
    }

    /// The database (for [`Db::durable`]).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// One session.
    pub fn get(&self, sid: &str) -> Result<Option<JoinedSession>> {
        self.tree
            .get(sid.as_bytes())?
            .map(|v| decode(TREE, &v))
            .transpose()
    }

    /// Every session, by id.
    pub fn list(&self) -> Result<Vec<JoinedSession>> {
        self.tree
            .iter()
            .map(|r| {
                let (_, v) = r?;
                decode(TREE, &v)
            })
            .collect()
    }

    /// Writes a session (durable after the next [`Db::durable`]).
    pub fn put(&self, s: &JoinedSession) -> Result<()> {
        self.tree.insert(s.sid.as_bytes(), encode(s)?)?;
        Ok(())
    }

    /// Forgets a session; true if it was there.
    pub fn remove(&self, sid: &str) -> Result<bool> {
        Ok(self.tree.remove(sid.as_bytes())?.is_some())
    }

    /// Applies `f` to the stored record, if any, and writes it back atomically.
    pub fn update(
        &self,
        sid: &str,
        f: impl Fn(&mut JoinedSession),
    ) -> Result<Option<JoinedSession>> {
        let mut out = None;
        let mut err = None;
        self.tree.fetch_and_update(sid.as_bytes(), |old| {
            let old = old?;
            match decode::<JoinedSession>(TREE, old) {
                Ok(mut s) => {
                    f(&mut s);
                    match encode(&s) {
                        Ok(v) => {
                            out = Some(s);
                            Some(v)
                        }
                        Err(e) => {
                            err = Some(e);
                            Some(old.to_vec())
                        }
                    }
                }
                Err(e) => {
                    err = Some(e);
                    Some(old.to_vec())
                }
            }
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Moves the ingest cursor (or with `read`, the read cursor) forward to `cursor`.
    pub fn advance(&self, sid: &str, cursor: &str, read: bool) -> Result<()> {
        self.update(sid, |s| {
            let slot = if read {
                &mut s.read_cursor
            } else {
                &mut s.cursor
            };
            if slot.as_deref().is_none_or(|c| cursor_gt(cursor, c)) {
                *slot = Some(cursor.to_string());
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cursors_only_move_forward() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let db = Db::open(&tmp.path().join("data"))?;
        let s = NexusSessions::open(&db)?;
        s.put(&JoinedSession {
            creator: false,
            sid: "abc".into(),
            server: "http://x".into(),
            agent_id: "a".into(),
            key: Secret::new("k"),
            cursor: None,
            read_cursor: None,
            expires_at: None,
            ttl: None,
            state: active(),
        })?;
        s.advance("abc", "9", false)?;
        s.advance("abc", "10", false)?;
        s.advance("abc", "2", false)?;
        assert_eq!(s.get("abc")?.and_then(|x| x.cursor).as_deref(), Some("10"));
        assert!(s.remove("abc")? && s.list()?.is_empty());
        Ok(())
    }
}
