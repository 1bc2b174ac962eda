//! Member keys pinned per Nexus session (client side), the nonces of the signed messages
//! seen, the key changes held, and whether this daemon has announced its own key.
//!
//! Why: a Nexus member is named only by an agent id, which any member of the session can
//! post under. The first key announced for a member in a session (by a send the server
//! marked `verified`, so by a holder of that member's session key) is pinned; from then on a
//! message claiming that member must carry a signature by that key (see
//! [`crate::trust::member_sig`] and `docs/envelope.md`). Pins are per session: the same
//! agent id in another session is another member.
//!
//! Trees (keys are `lp(sid) lp(member) [rest]`, `lp` = 2-byte big-endian length + bytes, so
//! no id can run into the next):
//!
//! - `nexus_members`: `sid, member` → JSON [`MemberKey`], written once (first announce wins;
//!   compare-and-swap, so two pages ingested at once cannot both pin);
//! - `nexus_member_nonces`: `sid, member, nonce` → the message key (`cursor` or server id) of
//!   the first message that used the nonce: the same message fetched again is not a replay,
//!   another message with the same nonce is;
//! - `nexus_member_held`: `sid, member, key id` → JSON [`MemberKey`]: announces of a different
//!   key for a pinned member, kept for the owner to see, never used;
//! - `nexus_announced`: `sid` → the key id we announced there.
//!
//! Everything of a session is dropped when the session is left or has ended
//! ([`NexusMembers::forget_session`]).

use super::{decode, encode, Db, Result};
use serde::{Deserialize, Serialize};

const MEMBERS: &str = "nexus_members";
const NONCES: &str = "nexus_member_nonces";
const HELD: &str = "nexus_member_held";
const ANNOUNCED: &str = "nexus_announced";

/// Most key changes held per session (later ones are only counted).
pub const MAX_HELD_PER_SESSION: usize = 64;

/// A member's announced identity and keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberKey {
    /// The clawlink peer id (hex) the announce named.
    pub id: String,
    /// Ed25519 public key (base64url).
    pub sign: String,
    /// X25519 public key (base64url).
    pub seal: String,
    /// Key id (hex) of `sign` and `seal`.
    pub key_id: String,
    /// When it was first seen (ms since the epoch).
    pub seen_ms: u64,
    /// The cursor (or message id) of the announce; `None` for our own key, pinned on join.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// What pinning a key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// No key was pinned for the member: this one is now.
    New,
    /// The same key was already pinned.
    Same,
    /// Another key is pinned; the offered one was not taken.
    Conflict(MemberKey),
}

/// Handle to the member-key trees. Cheap to clone.
#[derive(Clone)]
pub struct NexusMembers {
    members: sled::Tree,
    nonces: sled::Tree,
    held: sled::Tree,
    announced: sled::Tree,
}

fn lp(out: &mut Vec<u8>, part: &str) {
    let b = part.as_bytes();
    let n = u16::try_from(b.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&b[..usize::from(n)]);
}

fn session_prefix(sid: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(sid.len() + 2);
    lp(&mut k, sid);
    k
}

fn member_key(sid: &str, member: &str) -> Vec<u8> {
    let mut k = session_prefix(sid);
    lp(&mut k, member);
    k
}

impl NexusMembers {
    /// Opens the trees.
    pub fn open(db: &Db) -> Result<NexusMembers> {
        Ok(NexusMembers {
            members: db.tree(MEMBERS)?,
            nonces: db.tree(NONCES)?,
            held: db.tree(HELD)?,
            announced: db.tree(ANNOUNCED)?,
        })
    }

    /// The key pinned for `member` in `sid`.
    pub fn get(&self, sid: &str, member: &str) -> Result<Option<MemberKey>> {
        self.members
            .get(member_key(sid, member))?
            .map(|v| decode(MEMBERS, &v))
            .transpose()
    }

    /// Pins `key` for `member` in `sid` unless a key is pinned already.
    pub fn pin_first(&self, sid: &str, member: &str, key: &MemberKey) -> Result<Pin> {
        let k = member_key(sid, member);
        let value = encode(key)?;
        match self
            .members
            .compare_and_swap(&k, None::<&[u8]>, Some(value))?
        {
            Ok(()) => Ok(Pin::New),
            Err(e) => {
                let current = match e.current {
                    Some(v) => decode::<MemberKey>(MEMBERS, &v)?,
                    // Removed in between (a leave): treat as pinned now by a retry.
                    None => return self.pin_first(sid, member, key),
                };
                if current.key_id == key.key_id && current.sign == key.sign {
                    Ok(Pin::Same)
                } else {
                    Ok(Pin::Conflict(current))
                }
            }
        }
    }

    /// Every pinned member of `sid`, by member id.
    pub fn members(&self, sid: &str) -> Result<Vec<(String, MemberKey)>> {
        let prefix = session_prefix(sid);
        self.members
            .scan_prefix(&prefix)
            .map(|r| {
                let (k, v) = r?;
                let rest = k.get(prefix.len() + 2..).unwrap_or_default();
                Ok((
                    String::from_utf8_lossy(rest).into_owned(),
                    decode(MEMBERS, &v)?,
                ))
            })
            .collect()
    }

    /// Records that `member` used `nonce` in the message `msg` of `sid`. True when the nonce is
    /// new or was used by that same message (fetched again); false for a replay.
    pub fn note_nonce(&self, sid: &str, member: &str, nonce: &[u8; 16], msg: &str) -> Result<bool> {
        let mut k = member_key(sid, member);
        k.extend_from_slice(nonce);
        match self
            .nonces
            .compare_and_swap(&k, None::<&[u8]>, Some(msg.as_bytes()))?
        {
            Ok(()) => Ok(true),
            Err(e) => Ok(e.current.as_deref() == Some(msg.as_bytes())),
        }
    }

    /// Keeps an announce of another key for a pinned member (at most
    /// [`MAX_HELD_PER_SESSION`] per session). True if it was newly kept.
    pub fn hold(&self, sid: &str, member: &str, key: &MemberKey) -> Result<bool> {
        let mut k = member_key(sid, member);
        lp(&mut k, &key.key_id);
        if self.held.contains_key(&k)? {
            return Ok(false);
        }
        if self.held.scan_prefix(session_prefix(sid)).count() >= MAX_HELD_PER_SESSION {
            return Ok(false);
        }
        self.held.insert(k, encode(key)?)?;
        Ok(true)
    }

    /// How many key changes are held for `sid`.
    pub fn held_count(&self, sid: &str) -> usize {
        self.held.scan_prefix(session_prefix(sid)).count()
    }

    /// The key id we announced in `sid`, if the announce was taken by the server.
    pub fn announced(&self, sid: &str) -> Result<Option<String>> {
        Ok(self
            .announced
            .get(sid.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Notes that we announced `key_id` in `sid`.
    pub fn set_announced(&self, sid: &str, key_id: &str) -> Result<()> {
        self.announced.insert(sid.as_bytes(), key_id.as_bytes())?;
        Ok(())
    }

    /// Drops every pin, nonce, held key and announce mark of `sid`.
    pub fn forget_session(&self, sid: &str) -> Result<()> {
        let prefix = session_prefix(sid);
        for tree in [&self.members, &self.nonces, &self.held] {
            for k in tree.scan_prefix(&prefix).keys() {
                tree.remove(k?)?;
            }
        }
        self.announced.remove(sid.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> MemberKey {
        MemberKey {
            id: "00".repeat(16),
            sign: format!("sign-{id}"),
            seal: format!("seal-{id}"),
            key_id: id.into(),
            seen_ms: 1,
            cursor: Some("3".into()),
        }
    }

    #[tokio::test]
    async fn first_key_wins_nonces_catch_replays_and_sessions_are_separate() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let db = Db::open(&tmp.path().join("data"))?;
        let m = NexusMembers::open(&db)?;
        assert_eq!(m.pin_first("S1", "alice", &key("k1"))?, Pin::New);
        assert_eq!(m.pin_first("S1", "alice", &key("k1"))?, Pin::Same);
        assert_eq!(
            m.pin_first("S1", "alice", &key("k2"))?,
            Pin::Conflict(key("k1"))
        );
        // Per session: the same agent id elsewhere is another member.
        assert_eq!(m.pin_first("S2", "alice", &key("k2"))?, Pin::New);
        // Ids cannot run into each other.
        assert_eq!(m.pin_first("S1a", "lice", &key("k3"))?, Pin::New);
        assert_eq!(m.get("S1", "alice")?.map(|k| k.key_id), Some("k1".into()));
        assert_eq!(m.members("S1")?.len(), 1);
        assert_eq!(m.members("S1")?[0].0, "alice");

        assert!(m.note_nonce("S1", "alice", &[1; 16], "5")?);
        assert!(m.note_nonce("S1", "alice", &[1; 16], "5")?, "a refetch");
        assert!(!m.note_nonce("S1", "alice", &[1; 16], "9")?, "a replay");
        assert!(m.note_nonce("S2", "alice", &[1; 16], "9")?);

        assert!(m.hold("S1", "alice", &key("k2"))?);
        assert!(!m.hold("S1", "alice", &key("k2"))?);
        assert_eq!(m.held_count("S1"), 1);

        m.set_announced("S1", "k1")?;
        assert_eq!(m.announced("S1")?.as_deref(), Some("k1"));
        m.forget_session("S1")?;
        assert_eq!(m.get("S1", "alice")?, None);
        assert_eq!(m.announced("S1")?, None);
        assert_eq!(m.held_count("S1"), 0);
        assert!(m.note_nonce("S1", "alice", &[1; 16], "9")?);
        assert!(m.get("S2", "alice")?.is_some());
        assert!(m.get("S1a", "lice")?.is_some());
        Ok(())
    }
}
