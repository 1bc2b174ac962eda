//! Trust records: friends and their pinned keys, issued invites, seen envelope ids, held
//! envelopes and receipts. The identity's secret keys are not here: they live in
//! `DATA_DIR/identity.key` (see [`crate::trust::keys`]).
//!
//! Trees:
//! - `trust_friends`: name → JSON [`Friend`] (pinned keys, epoch, a pending key change);
//! - `trust_friend_ids`: peer id (16 bytes) → name;
//! - `trust_invites`: invite id (16 bytes) → JSON [`InviteRecord`] (the one-time secret until
//!   used; used invites are kept as tombstones so a second use gets a clear refusal);
//! - `trust_accepted`: invite id → ms, the invites this daemon accepted (refused a second time);
//! - `trust_seen`: sender id ‖ message id (32 bytes) → SHA-256 of the envelope ‖ timestamp
//!   (u64 BE): the durable replay window (see [`crate::trust::replay`]);
//! - `trust_held`: sender id ‖ sequence (u64 BE) → envelope text, held while the sender's key
//!   change waits for `clawlink friend accept-key`, or for the key update that explains it;
//! - `trust_receipts`: message id (16 bytes) → JSON [`ReceiptRecord`], the latest signed
//!   receipt for each envelope this daemon sent;
//! - `trust_features`: `T` ‖ peer id → JSON list of the features the friend's hello named
//!   (absent: no hello yet, so nothing newer than version 1 is sent to it); `O` ‖ peer id →
//!   JSON list of the features our last hello to it named. Kept apart from the friend's record,
//!   which other paths rewrite, so that neither write can undo the other.

use super::{decode, encode, Db, Result};
use clawlink::Secret;
use serde::{Deserialize, Serialize};

/// A friend and the keys pinned for it.
#[derive(Clone, Serialize, Deserialize, Debug)]
pub struct Friend {
    /// Local name.
    pub name: String,
    /// Peer id, hex.
    pub id: String,
    /// Pinned Ed25519 key, base64url.
    pub sign: String,
    /// Pinned X25519 key, base64url.
    pub seal: String,
    /// Pinned epoch.
    pub epoch: u32,
    /// Whether the owner recorded that the safety numbers were compared.
    pub verified: bool,
    /// Where the friend can be reached, in preference order.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// For an invite this daemon accepted: whether the inviter confirmed (signed receipt).
    #[serde(default)]
    pub confirmed: bool,
    /// A key seen without its old key's endorsement, waiting for `accept-key`.
    #[serde(default)]
    pub pending: Option<PendingKey>,
    /// When pinned (ms).
    pub added_ms: u64,
    /// When the pinned key last changed (ms), if it ever did.
    #[serde(default)]
    pub key_changed_ms: Option<u64>,
}

/// An unendorsed new key.
#[derive(Clone, Serialize, Deserialize, Debug)]
pub struct PendingKey {
    /// Ed25519, base64url.
    pub sign: String,
    /// X25519, base64url.
    pub seal: String,
    /// Epoch it claims.
    pub epoch: u32,
    /// When first seen (ms).
    pub seen_ms: u64,
}

/// An invite this daemon issued.
#[derive(Clone, Serialize, Deserialize)]
pub struct InviteRecord {
    /// The one-time secret, base64url (removed once used).
    pub secret: Secret,
    /// Expiry (ms).
    pub expires_ms: u64,
    /// When it was used (ms).
    #[serde(default)]
    pub used_ms: Option<u64>,
    /// Name to give whoever accepts it.
    #[serde(default)]
    pub name: Option<String>,
}

/// The latest receipt for an envelope this daemon sent.
#[derive(Clone, Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct ReceiptRecord {
    /// Friend name.
    pub friend: String,
    /// `stored`, `delivered` or `rejected`.
    pub status: String,
    /// Refusal code for `rejected`.
    #[serde(default)]
    pub reason: Option<String>,
    /// When received (ms).
    pub at_ms: u64,
}

/// Outcome of [`TrustStore::see`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time.
    New,
    /// The same bytes were seen before.
    Duplicate,
    /// The id was seen with other bytes.
    Conflict,
}

/// Handle to the trust trees.
#[derive(Clone)]
pub struct TrustStore {
    db: Db,
    friends: sled::Tree,
    ids: sled::Tree,
    invites: sled::Tree,
    accepted: sled::Tree,
    seen: sled::Tree,
    held: sled::Tree,
    receipts: sled::Tree,
    features: sled::Tree,
}

/// Most envelopes held per sender.
pub const MAX_HELD: usize = 256;

impl TrustStore {
    /// Opens the trees.
    pub fn open(db: &Db) -> Result<TrustStore> {
        Ok(TrustStore {
            db: db.clone(),
            friends: db.tree("trust_friends")?,
            ids: db.tree("trust_friend_ids")?,
            invites: db.tree("trust_invites")?,
            accepted: db.tree("trust_accepted")?,
            seen: db.tree("trust_seen")?,
            held: db.tree("trust_held")?,
            receipts: db.tree("trust_receipts")?,
            features: db.tree("trust_features")?,
        })
    }

    /// Waits until every write so far is on disk.
    pub async fn durable(&self) -> Result<()> {
        self.db.durable().await
    }

    /// Adds or replaces a friend (and its id index).
    pub fn put_friend(&self, f: &Friend) -> Result<()> {
        let id = crate::util::hex::unhex::<16>(&f.id).unwrap_or_default();
        self.friends.insert(f.name.as_bytes(), encode(f)?)?;
        self.ids.insert(id, f.name.as_bytes())?;
        Ok(())
    }

    /// A friend by name.
    pub fn friend(&self, name: &str) -> Result<Option<Friend>> {
        self.friends
            .get(name.as_bytes())?
            .map(|v| decode("trust_friends", &v))
            .transpose()
    }

    /// A friend by peer id.
    pub fn friend_by_id(&self, id: &[u8; 16]) -> Result<Option<Friend>> {
        match self.ids.get(id)? {
            Some(name) => self.friend(&String::from_utf8_lossy(&name)),
            None => Ok(None),
        }
    }

    /// Every friend, by name.
    pub fn friends(&self) -> Result<Vec<Friend>> {
        self.friends
            .iter()
            .map(|r| {
                r.map_err(Into::into)
                    .and_then(|(_, v)| decode("trust_friends", &v))
            })
            .collect()
    }

    /// Removes a friend and whatever is held for it; whether it existed.
    pub fn remove_friend(&self, name: &str) -> Result<bool> {
        let Some(f) = self.friend(name)? else {
            return Ok(false);
        };
        if let Some(id) = crate::util::hex::unhex::<16>(&f.id) {
            self.ids.remove(id)?;
            for k in self.held.scan_prefix(id).keys() {
                self.held.remove(k?)?;
            }
            self.features.remove(feature_key(b'T', &id))?;
            self.features.remove(feature_key(b'O', &id))?;
        }
        self.friends.remove(name.as_bytes())?;
        Ok(true)
    }

    /// Records an issued invite.
    pub fn put_invite(&self, id: &[u8; 16], r: &InviteRecord) -> Result<()> {
        self.invites.insert(id, encode(r)?)?;
        Ok(())
    }

    /// An issued invite.
    pub fn invite(&self, id: &[u8; 16]) -> Result<Option<InviteRecord>> {
        self.invites
            .get(id)?
            .map(|v| decode("trust_invites", &v))
            .transpose()
    }

    /// Marks an invite used and forgets its secret.
    pub fn use_invite(&self, id: &[u8; 16], mut r: InviteRecord) -> Result<()> {
        r.secret = Secret::default();
        r.used_ms = Some(crate::time::now_ms());
        self.put_invite(id, &r)
    }

    /// Whether this daemon already accepted invite `id`; records it if not.
    pub fn note_accepted(&self, id: &[u8; 16]) -> Result<bool> {
        Ok(self
            .accepted
            .compare_and_swap(
                id,
                None as Option<&[u8]>,
                Some(&crate::time::now_ms().to_be_bytes()),
            )?
            .is_err())
    }

    /// Forgets that invite `id` was accepted here (the accept failed before it was sent).
    pub fn unnote_accepted(&self, id: &[u8; 16]) -> Result<()> {
        self.accepted.remove(id)?;
        Ok(())
    }

    /// Records `(sender, msg)` with the envelope's hash; says whether it was new.
    pub fn see(
        &self,
        sender: &[u8; 16],
        msg: &[u8; 16],
        hash: &[u8; 32],
        ts_ms: u64,
    ) -> Result<Seen> {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(sender);
        key[16..].copy_from_slice(msg);
        let mut val = [0u8; 40];
        val[..32].copy_from_slice(hash);
        val[32..].copy_from_slice(&ts_ms.to_be_bytes());
        match self
            .seen
            .compare_and_swap(key, None as Option<&[u8]>, Some(&val[..]))?
        {
            Ok(()) => Ok(Seen::New),
            Err(e) => match e.current {
                Some(cur) if cur.get(..32) == Some(&hash[..]) => Ok(Seen::Duplicate),
                _ => Ok(Seen::Conflict),
            },
        }
    }

    /// Forgets a seen id (processing failed before anything was stored).
    pub fn unsee(&self, sender: &[u8; 16], msg: &[u8; 16]) -> Result<()> {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(sender);
        key[16..].copy_from_slice(msg);
        self.seen.remove(key)?;
        Ok(())
    }

    /// Removes seen ids whose timestamp is before `oldest_ms`; returns how many.
    pub fn prune_seen(&self, oldest_ms: u64) -> Result<u64> {
        let mut n = 0;
        for r in self.seen.iter() {
            let (k, v) = r?;
            let ts = v.get(32..40).and_then(super::decode_u64).unwrap_or(0);
            if ts < oldest_ms {
                self.seen.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Holds an envelope from `sender`; false when the sender already has [`MAX_HELD`].
    pub fn hold(&self, sender: &[u8; 16], text: &str) -> Result<bool> {
        if self.held.scan_prefix(sender).count() >= MAX_HELD {
            return Ok(false);
        }
        let seq = self.db.sled().generate_id()?;
        let mut key = [0u8; 24];
        key[..16].copy_from_slice(sender);
        key[16..].copy_from_slice(&seq.to_be_bytes());
        self.held.insert(key, text.as_bytes())?;
        Ok(true)
    }

    /// Takes every envelope held for `sender`, oldest first.
    pub fn take_held(&self, sender: &[u8; 16]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for r in self.held.scan_prefix(sender) {
            let (k, v) = r?;
            self.held.remove(k)?;
            out.push(String::from_utf8_lossy(&v).into_owned());
        }
        Ok(out)
    }

    /// How many envelopes are held for `sender`.
    pub fn held_count(&self, sender: &[u8; 16]) -> usize {
        self.held.scan_prefix(sender).count()
    }

    /// Records a receipt for message `id`. A later `stored` never replaces `delivered`.
    pub fn put_receipt(&self, id: &[u8; 16], r: &ReceiptRecord) -> Result<()> {
        if r.status == "stored" {
            if let Some(prev) = self.receipt(id)? {
                if prev.status == "delivered" {
                    return Ok(());
                }
            }
        }
        self.receipts.insert(id, encode(r)?)?;
        Ok(())
    }

    /// Records the features friend `id`'s hello named.
    pub fn put_features(&self, id: &[u8; 16], features: &[String]) -> Result<()> {
        self.features
            .insert(feature_key(b'T', id), encode(&features)?)?;
        Ok(())
    }

    /// The features friend `id`'s hello named; `None` before its first hello.
    pub fn features(&self, id: &[u8; 16]) -> Result<Option<Vec<String>>> {
        self.features
            .get(feature_key(b'T', id))?
            .map(|v| decode("trust_features", &v))
            .transpose()
    }

    /// Records that our hello naming `features` was queued for friend `id`.
    pub fn set_told(&self, id: &[u8; 16], features: &[String]) -> Result<()> {
        self.features
            .insert(feature_key(b'O', id), encode(&features)?)?;
        Ok(())
    }

    /// The features our last hello to friend `id` named (empty before the first).
    pub fn told(&self, id: &[u8; 16]) -> Result<Vec<String>> {
        Ok(self
            .features
            .get(feature_key(b'O', id))?
            .map(|v| decode("trust_features", &v))
            .transpose()?
            .unwrap_or_default())
    }

    /// The latest receipt for message `id`.
    pub fn receipt(&self, id: &[u8; 16]) -> Result<Option<ReceiptRecord>> {
        self.receipts
            .get(id)?
            .map(|v| decode("trust_receipts", &v))
            .transpose()
    }
}

fn feature_key(which: u8, id: &[u8; 16]) -> [u8; 17] {
    let mut k = [which; 17];
    k[1..].copy_from_slice(id);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn seen_ids_hold_and_invites_survive_a_restart() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("data");
        {
            let db = Db::open(&dir)?;
            let s = TrustStore::open(&db)?;
            assert_eq!(s.see(&[1; 16], &[2; 16], &[3; 32], 10)?, Seen::New);
            assert!(s.hold(&[1; 16], "cle1:x")?);
            assert!(!s.note_accepted(&[9; 16])?);
            s.durable().await?;
            db.flush_now()?;
        }
        tokio::task::yield_now().await;
        let db = Db::open(&dir)?;
        let s = TrustStore::open(&db)?;
        assert_eq!(s.see(&[1; 16], &[2; 16], &[3; 32], 10)?, Seen::Duplicate);
        assert_eq!(s.see(&[1; 16], &[2; 16], &[4; 32], 10)?, Seen::Conflict);
        assert!(s.note_accepted(&[9; 16])?);
        assert_eq!(s.take_held(&[1; 16])?, vec!["cle1:x".to_string()]);
        assert_eq!(s.prune_seen(11)?, 1);
        assert_eq!(s.see(&[1; 16], &[2; 16], &[4; 32], 10)?, Seen::New);
        Ok(())
    }
}
