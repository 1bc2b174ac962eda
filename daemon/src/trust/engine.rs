//! [`Trust`]: the identity, the pinned friends and the checks, over the store.
//!
//! Receiving ([`Trust::open`]), in this order, each failure counted by [`Refusal`]:
//! parse (size, version, kind, exact lengths) → hop limit → recipient is our id and one of
//! our key ids → timestamp window → sender: a friend's pinned key (or, for an invite accept,
//! the keys inside it) → signature → seen id (same bytes: duplicate; other bytes: replay) →
//! decryption → payload. Only then is anything shown as from the friend.
//!
//! Key changes: an envelope signed by a key we have not pinned for a known friend is either a
//! key update endorsed by the pinned key (accepted at once; envelopes held for it are
//! released), or it is held: the new key is recorded as pending, `friend list` shows it and
//! its safety number, and nothing under it is shown until `clawlink friend accept-key`.

use super::envelope::{Envelope, Header, Kind, MAX_HOPS};
use super::invite::Invite;
use super::keys::{Identity, KeyId, PeerId, PublicKeys};
use super::payload::{
    HelloBody, InviteAcceptBody, KeyUpdateBody, MessageBody, ReceiptBody, ReceiptStatus,
    FEATURE_RECEIPT_IDS,
};
use super::seal::{self, Draft};
use super::{b64, hex, unb64, unhex, Refusal};
use crate::store::trust::{Friend, InviteRecord, PendingKey, ReceiptRecord, Seen, TrustStore};
use crate::store::StoreError;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// An envelope to send to a friend.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Friend name.
    pub friend: String,
    /// Message id (hex).
    pub id: String,
    /// The `cle1:` text.
    pub text: String,
}

/// What an accepted envelope turned out to be.
#[derive(Debug)]
pub enum Opened {
    /// A message for the inbox (also returned for a duplicate: the inbox stores it once).
    Message {
        /// Friend name.
        friend: String,
        /// Sender's peer id, hex.
        sender: String,
        /// Message id, hex (with the sender, the inbox's de-duplication key).
        id: String,
        /// The text.
        text: String,
        /// Whether these bytes were seen before.
        duplicate: bool,
        /// Agent-written hops (0: a person wrote it), signed by the sender.
        hops: u8,
    },
    /// A receipt for something we sent (one message, or a batch of them).
    Receipt {
        /// Friend name.
        friend: String,
        /// The message ids it answers (hex), at least one.
        for_ids: Vec<String>,
        /// Its status.
        status: ReceiptStatus,
    },
    /// A friend's endorsed key update was applied.
    KeyUpdated {
        /// Friend name.
        friend: String,
        /// New epoch.
        epoch: u32,
        /// Envelopes that were held for this key, to be opened again now.
        released: Vec<String>,
    },
    /// Held: an unendorsed key change, or an envelope under a key not pinned (yet).
    Held {
        /// Friend name.
        friend: String,
    },
    /// A friend's hello: the features its build reads (now recorded).
    Hello {
        /// Friend name.
        friend: String,
        /// The features it named.
        features: Vec<String>,
        /// Whether it is the first hello from this friend: its build may have refused ours
        /// before (a build from before hellos, upgraded since), so ours is due again.
        first: bool,
    },
    /// An invite accept: the accepter is now a friend.
    FriendAdded {
        /// The name given to it.
        friend: String,
        /// The signed `stored` receipt to send back.
        receipt: Option<Outgoing>,
    },
}

/// A refusal, with the signed `rejected` receipt to send where a receipt path exists.
#[derive(Debug)]
pub struct Rejected {
    /// Why.
    pub refusal: Refusal,
    /// The receipt.
    pub receipt: Option<Outgoing>,
}

/// Errors of the engine: a refusal of the input, or the store failing.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The input was refused.
    #[error("{}", .0.refusal)]
    Refused(Rejected),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local request cannot be done (unknown friend, bad name, ...).
    #[error("{0}")]
    Local(String),
}

impl From<Refusal> for TrustError {
    fn from(refusal: Refusal) -> Self {
        TrustError::Refused(Rejected {
            refusal,
            receipt: None,
        })
    }
}

type R<T> = Result<T, TrustError>;

/// Identity, friends and counters. Cheap to share (`Arc`).
pub struct Trust {
    path: PathBuf,
    identity: RwLock<Arc<Identity>>,
    store: TrustStore,
    refused: [AtomicU64; Refusal::ALL.len()],
    accepted: AtomicU64,
}

/// A friend's pinned public keys.
pub fn friend_keys(f: &Friend) -> Option<PublicKeys> {
    Some(PublicKeys {
        sign: unb64(&f.sign)?,
        seal: unb64(&f.seal)?,
    })
}

/// A friend's peer id, as bytes.
fn friend_id(f: &Friend) -> R<[u8; 16]> {
    unhex::<16>(&f.id).ok_or_else(|| TrustError::Local("corrupt friend id".into()))
}

fn pending_keys(p: &PendingKey) -> Option<PublicKeys> {
    Some(PublicKeys {
        sign: unb64(&p.sign)?,
        seal: unb64(&p.seal)?,
    })
}

fn random16() -> [u8; 16] {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// Checks a friend name: 1-64 printable characters.
pub fn valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= 64 && !name.chars().any(char::is_control)
}

impl Trust {
    /// Loads (or creates) the identity at `path` over `store`.
    pub fn load(path: PathBuf, store: TrustStore) -> Result<Trust, super::keys::KeyFileError> {
        let identity = Identity::load_or_create(&path)?;
        Ok(Trust {
            path,
            identity: RwLock::new(Arc::new(identity)),
            store,
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
            accepted: AtomicU64::new(0),
        })
    }

    /// The current identity.
    pub fn identity(&self) -> Arc<Identity> {
        match self.identity.read() {
            Ok(i) => i.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The store.
    pub fn store(&self) -> &TrustStore {
        &self.store
    }

    /// Refusal counts (non-zero ones), and the number of envelopes accepted.
    pub fn counts(&self) -> (Vec<(&'static str, u64)>, u64) {
        let refused = Refusal::ALL
            .iter()
            .zip(&self.refused)
            .map(|(r, n)| (r.code(), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        (refused, self.accepted.load(Ordering::Relaxed))
    }

    fn count(&self, r: Refusal) {
        if let Some(i) = Refusal::ALL.iter().position(|x| *x == r) {
            if let Some(c) = self.refused.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The safety number with `f` (its pinned keys, or its pending ones).
    pub fn safety_number(&self, keys: &PublicKeys) -> String {
        super::safety::safety_number(&self.identity().current.public(), keys)
    }

    fn draft_to(&self, me: &Identity, f: &Friend, kind: Kind, body: &[u8]) -> R<Outgoing> {
        self.draft_hops(me, f, kind, 0, body)
    }

    fn draft_hops(
        &self,
        me: &Identity,
        f: &Friend,
        kind: Kind,
        hops: u8,
        body: &[u8],
    ) -> R<Outgoing> {
        let keys = friend_keys(f).ok_or_else(|| TrustError::Local("corrupt pinned key".into()))?;
        let id = random16();
        let to = friend_id(f)?;
        let env = seal::seal(
            Draft {
                header: Header {
                    kind,
                    hops,
                    sender: me.id,
                    sender_key: me.current.public().key_id(),
                    recipient: PeerId(to),
                    recipient_key: keys.key_id(),
                    id,
                    ts_ms: crate::time::now_ms(),
                    epk: [0; 32],
                },
                plaintext: body,
            },
            &me.current,
            &keys,
        )?;
        Ok(Outgoing {
            friend: f.name.clone(),
            id: hex(&id),
            text: env.to_text(),
        })
    }

    /// Seals `text` (written by a person: 0 hops) to friend `name`.
    pub fn seal_message(&self, name: &str, text: &str) -> R<Outgoing> {
        self.seal_message_hops(name, text, 0)
    }

    /// Seals `text` to friend `name` with `hops` agent-written hops (a reply our agent wrote to
    /// a message of `h` hops carries `h + 1`); more than [`MAX_HOPS`] is refused here, as the
    /// receiver would refuse it.
    pub fn seal_message_hops(&self, name: &str, text: &str, hops: u8) -> R<Outgoing> {
        if hops > MAX_HOPS {
            return Err(TrustError::Local(format!(
                "{hops} hops is over the limit of {MAX_HOPS}"
            )));
        }
        if text.len() > super::payload::MAX_TEXT {
            return Err(TrustError::Local(format!(
                "the message is longer than {} bytes",
                super::payload::MAX_TEXT
            )));
        }
        let f = self.named(name)?;
        if f.pending.is_some() {
            return Err(TrustError::Local(format!("{name:?} has an unaccepted key change; compare the new safety number, then `clawlink friend accept-key {name}`")));
        }
        let body = MessageBody {
            text: text.to_string(),
        }
        .to_bytes();
        self.draft_hops(&self.identity(), &f, Kind::Message, hops, &body)
    }

    /// A signed receipt from us to friend `name` about its message `for_id` (hex): `stored`
    /// once it is durable in our inbox, `delivered` once our agent had it, `rejected` with
    /// `reason` when our policy refused it.
    pub fn answer(
        &self,
        name: &str,
        for_id: &str,
        status: ReceiptStatus,
        reason: Option<&str>,
    ) -> R<Outgoing> {
        self.answer_many(name, &[for_id.to_string()], status, reason)
    }

    /// One signed receipt from us to friend `name` answering all of `ids` (hex, distinct, 1 to
    /// [`MAX_RECEIPT_IDS`](super::payload::MAX_RECEIPT_IDS)) with one status: a batched
    /// receipt (see [`super::payload`]); a single id gives the one-message form.
    pub fn answer_many(
        &self,
        name: &str,
        ids: &[String],
        status: ReceiptStatus,
        reason: Option<&str>,
    ) -> R<Outgoing> {
        self.answer_to(&self.named(name)?, ids, status, reason)
    }

    /// [`Trust::answer_many`] to the friend already looked up.
    fn answer_to(
        &self,
        f: &Friend,
        ids: &[String],
        status: ReceiptStatus,
        reason: Option<&str>,
    ) -> R<Outgoing> {
        if ids.len() > super::payload::MAX_RECEIPT_IDS {
            return Err(TrustError::Local(format!(
                "a receipt answers at most {} messages",
                super::payload::MAX_RECEIPT_IDS
            )));
        }
        let mut distinct = std::collections::HashSet::with_capacity(ids.len());
        for id in ids {
            let bytes = unhex::<16>(id)
                .ok_or_else(|| TrustError::Local("a message id is 32 hex digits".into()))?;
            if !distinct.insert(bytes) {
                return Err(TrustError::Local("a message id is named twice".into()));
            }
        }
        let body = ReceiptBody::for_ids(ids, status, reason.map(str::to_string))
            .ok_or_else(|| TrustError::Local("a receipt answers at least one message".into()))?
            .to_bytes();
        self.draft_to(&self.identity(), f, Kind::Receipt, &body)
    }

    /// The receipts from us to friend `name` answering `ids` (hex, distinct) with one status,
    /// each with how many ids it answers: batched receipts of up to
    /// [`MAX_RECEIPT_IDS`](super::payload::MAX_RECEIPT_IDS) ids when the friend's hello said it
    /// reads them, else one receipt per id (the form every build reads).
    pub fn answer_batch(
        &self,
        name: &str,
        ids: &[String],
        status: ReceiptStatus,
        reason: Option<&str>,
    ) -> R<Vec<(Outgoing, usize)>> {
        let f = self.named(name)?;
        let per = if self.friend_reads_batches(&f)? {
            super::payload::MAX_RECEIPT_IDS
        } else {
            1
        };
        ids.chunks(per)
            .map(|chunk| Ok((self.answer_to(&f, chunk, status, reason)?, chunk.len())))
            .collect()
    }

    /// Whether friend `name`'s hello said it reads batched receipts.
    pub fn reads_batches(&self, name: &str) -> R<bool> {
        self.friend_reads_batches(&self.named(name)?)
    }

    fn friend_reads_batches(&self, f: &Friend) -> R<bool> {
        let features = self.store.features(&friend_id(f)?)?.unwrap_or_default();
        Ok(features.iter().any(|x| x == FEATURE_RECEIPT_IDS))
    }

    /// Our hello to friend `name`, unless one naming the same features was queued for it
    /// before (`again`: whether or not); recorded as queued.
    pub fn hello(&self, name: &str, again: bool) -> R<Option<Outgoing>> {
        let f = self.named(name)?;
        let id = friend_id(&f)?;
        let ours = HelloBody::ours();
        if !again && self.store.told(&id)? == ours.features {
            return Ok(None);
        }
        let out = self.draft_to(&self.identity(), &f, Kind::Hello, &ours.to_bytes())?;
        self.store.set_told(&id, &ours.features)?;
        Ok(Some(out))
    }

    /// Friend `name`, or a local error naming it.
    fn named(&self, name: &str) -> R<Friend> {
        self.store
            .friend(name)?
            .ok_or_else(|| TrustError::Local(format!("no friend named {name:?}")))
    }

    fn receipt(
        &self,
        f: &Friend,
        for_id: &[u8; 16],
        status: ReceiptStatus,
        reason: Option<Refusal>,
    ) -> Option<Outgoing> {
        let body = ReceiptBody {
            for_id: hex(for_id),
            ids: None,
            status,
            reason: reason.map(|r| r.code().to_string()),
        }
        .to_bytes();
        self.draft_to(&self.identity(), f, Kind::Receipt, &body)
            .ok()
    }

    /// Makes an invite valid for `ttl_ms`, reachable at `addresses`.
    pub fn invite(
        &self,
        addresses: Vec<String>,
        ttl_ms: u64,
        name: Option<String>,
    ) -> R<(String, u64)> {
        let me = self.identity();
        let expires_ms = crate::time::now_ms().saturating_add(ttl_ms);
        let inv = Invite {
            id: random16(),
            inviter: me.id,
            keys: me.current.public(),
            epoch: me.current.epoch,
            expires_ms,
            secret: zeroize::Zeroizing::new(random16()),
            addresses,
        };
        let text = inv.to_text(&me.current.sign).map_err(|_| {
            TrustError::Local(format!(
                "at most {} addresses of at most {} bytes each",
                super::payload::MAX_ADDRESSES,
                super::payload::MAX_ADDRESS
            ))
        })?;
        self.store.put_invite(
            &inv.id,
            &InviteRecord {
                secret: clawlink::Secret::new(b64(inv.secret.as_slice())),
                expires_ms,
                used_ms: None,
                name,
            },
        )?;
        Ok((text, expires_ms))
    }

    /// Accepts an invite as friend `name`: pins the inviter and returns the invite-accept
    /// envelope to deliver to it, with the addresses to try.
    pub fn accept(
        &self,
        invite: &str,
        name: &str,
        my_name: &str,
        my_addresses: Vec<String>,
    ) -> R<(Outgoing, Vec<String>)> {
        if !valid_name(name) {
            return Err(TrustError::Local(
                "friend name must be 1-64 printable characters".into(),
            ));
        }
        let inv =
            Invite::from_text(invite, crate::time::now_ms()).inspect_err(|r| self.count(*r))?;
        let me = self.identity();
        if inv.inviter == me.id {
            return Err(TrustError::Local("this invite is our own".into()));
        }
        if let Some(existing) = self.store.friend(name)? {
            if existing.id != hex(&inv.inviter.0) {
                return Err(TrustError::Local(format!("a different friend is already named {name:?}; choose another --name or `clawlink friend remove {name}`")));
            }
        }
        if self.store.note_accepted(&inv.id)? {
            self.count(Refusal::InviteUsed);
            return Err(Refusal::InviteUsed.into());
        }
        let mine = me.current.public();
        let body = InviteAcceptBody {
            invite: hex(&inv.id),
            sign: b64(&mine.sign),
            seal: b64(&mine.seal),
            epoch: me.current.epoch,
            proof: b64(&super::invite::proof(&inv.secret, &inv.id, &me.id, &mine)),
            name: my_name.chars().take(super::payload::MAX_NAME).collect(),
            addresses: my_addresses,
        };
        let friend = Friend {
            name: name.to_string(),
            id: hex(&inv.inviter.0),
            sign: b64(&inv.keys.sign),
            seal: b64(&inv.keys.seal),
            epoch: inv.epoch,
            verified: false,
            addresses: inv.addresses.clone(),
            confirmed: false,
            pending: None,
            added_ms: crate::time::now_ms(),
            key_changed_ms: None,
        };
        let out = match self.draft_to(&me, &friend, Kind::InviteAccept, &body.to_bytes()) {
            Ok(o) => o,
            Err(e) => {
                self.store.unnote_accepted(&inv.id)?;
                return Err(e);
            }
        };
        self.store.put_friend(&friend)?;
        Ok((out, inv.addresses))
    }

    /// Rotates the keys; returns the endorsed key updates to send to every friend.
    pub fn rotate(&self) -> R<Vec<Outgoing>> {
        let mut guard = self
            .identity
            .write()
            .map_err(|_| TrustError::Local("identity lock poisoned".into()))?;
        let old = guard.clone();
        // A fresh identity value with the same id: the old secret keys are read back from disk,
        // since Identity is not Clone (secrets are never copied around in memory).
        let current =
            Identity::load_or_create(&self.path).map_err(|e| TrustError::Local(e.to_string()))?;
        let next = current.rotated();
        next.save(&self.path)
            .map_err(|e| TrustError::Local(e.to_string()))?;
        let body = KeyUpdateBody::new(
            &next.id,
            &next.current.public(),
            next.current.epoch,
            Some(&old.current.sign),
        )
        .to_bytes();
        let next = Arc::new(next);
        *guard = next.clone();
        drop(guard);
        let mut out = Vec::new();
        for f in self.store.friends()? {
            out.push(self.draft_to(&next, &f, Kind::KeyUpdate, &body)?);
        }
        tracing::info!(
            epoch = next.current.epoch,
            friends = out.len(),
            "identity keys rotated"
        );
        Ok(out)
    }

    /// Accepts a friend's pending key; returns the envelopes held for it, to open again.
    pub fn accept_key(&self, name: &str) -> R<Vec<String>> {
        let mut f = self.named(name)?;
        let p = f
            .pending
            .take()
            .ok_or_else(|| TrustError::Local(format!("{name:?} has no pending key change")))?;
        f.sign = p.sign;
        f.seal = p.seal;
        f.epoch = p.epoch;
        f.verified = false;
        f.key_changed_ms = Some(crate::time::now_ms());
        self.store.put_friend(&f)?;
        let id = unhex::<16>(&f.id).unwrap_or_default();
        Ok(self.store.take_held(&id)?)
    }

    /// Opens an envelope received by any transport.
    pub fn open(&self, text: &str) -> R<Opened> {
        let r = self.open_inner(text);
        match &r {
            Ok(Opened::Held { .. }) => self.count(Refusal::KeyChangeHeld),
            Ok(_) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrustError::Refused(rej)) => {
                self.count(rej.refusal);
                tracing::info!(refusal = rej.refusal.code(), "envelope refused");
            }
            Err(_) => {}
        }
        r
    }

    fn open_inner(&self, text: &str) -> R<Opened> {
        let env = Envelope::from_text(text)?;
        let h = &env.header;
        if h.hops > MAX_HOPS {
            return Err(Refusal::Hops.into());
        }
        let me = self.identity();
        if h.recipient != me.id {
            return Err(Refusal::WrongRecipient.into());
        }
        let pair = me
            .pair_for(&h.recipient_key)
            .ok_or(Refusal::WrongRecipient)?;
        super::replay::check_time(h.ts_ms, crate::time::now_ms())?;
        let hash: [u8; 32] = Sha256::digest(env.to_bytes()).into();
        if h.kind == Kind::InviteAccept {
            return self.open_invite_accept(&env, pair, &hash);
        }
        let friend = self
            .store
            .friend_by_id(&h.sender.0)?
            .ok_or(Refusal::UnknownSender)?;
        let pinned = friend_keys(&friend).ok_or(Refusal::UnknownSender)?;
        if h.sender_key != pinned.key_id() {
            return self.open_other_key(text, &env, pair, friend, &pinned);
        }
        seal::verify(&env, &pinned)?;
        let seen = self.store.see(&h.sender.0, &h.id, &hash, h.ts_ms)?;
        if seen == Seen::Conflict {
            return Err(Refusal::Replay.into());
        }
        let plain = match seal::open(&env, pair) {
            Ok(p) => p,
            Err(r) => {
                return Err(TrustError::Refused(Rejected {
                    refusal: r,
                    receipt: self.receipt(&friend, &h.id, ReceiptStatus::Rejected, Some(r)),
                }))
            }
        };
        match h.kind {
            Kind::Message => {
                let m = MessageBody::parse(&plain).map_err(|r| {
                    TrustError::Refused(Rejected {
                        refusal: r,
                        receipt: self.receipt(&friend, &h.id, ReceiptStatus::Rejected, Some(r)),
                    })
                })?;
                // No receipt is sealed here: the caller answers once the message is durable,
                // at once (a direct answer) or batched with others (see `crate::friend::acks`).
                Ok(Opened::Message {
                    friend: friend.name,
                    sender: hex(&h.sender.0),
                    id: hex(&h.id),
                    text: m.text,
                    duplicate: seen == Seen::Duplicate,
                    hops: h.hops,
                })
            }
            Kind::Receipt => {
                let r = ReceiptBody::parse(&plain)?;
                let status = r.status.as_str();
                // Receipts may cross (a resend's `stored` after `delivered`): keep the furthest.
                let rank = super::payload::receipt_rank;
                let now_ms = crate::time::now_ms();
                for id in r.all_ids() {
                    let for_id = unhex::<16>(id).ok_or(Refusal::BadPayload)?;
                    let before = self.store.receipt(&for_id)?;
                    if before.is_none_or(|b| rank(&b.status) <= rank(status)) {
                        self.store.put_receipt(
                            &for_id,
                            &ReceiptRecord {
                                friend: friend.name.clone(),
                                status: status.to_string(),
                                reason: r.reason.clone(),
                                at_ms: now_ms,
                            },
                        )?;
                    }
                }
                // The inviter's answer to our invite accept: confirmed, or refused (used,
                // expired, unknown or tampered invite), in which case nothing stays pinned.
                if !friend.confirmed {
                    let invite_refused = r.reason.as_deref().is_some_and(|c| {
                        c.starts_with("invite_") || c == Refusal::UnknownInvite.code()
                    });
                    if r.status == ReceiptStatus::Rejected && invite_refused {
                        self.store.remove_friend(&friend.name)?;
                        tracing::info!(friend = %friend.name, "the inviter refused our accept; pin removed");
                    } else if r.status != ReceiptStatus::Rejected {
                        let mut f = friend.clone();
                        f.confirmed = true;
                        self.store.put_friend(&f)?;
                    }
                }
                Ok(Opened::Receipt {
                    friend: friend.name,
                    for_ids: r.all_ids().map(str::to_string).collect(),
                    status: r.status,
                })
            }
            // A key update signed by the key already pinned: it was applied before.
            Kind::KeyUpdate => Ok(Opened::KeyUpdated {
                friend: friend.name,
                epoch: friend.epoch,
                released: Vec::new(),
            }),
            Kind::Hello => {
                let hello = HelloBody::parse(&plain)?;
                let first = self.store.features(&h.sender.0)?.is_none();
                self.store.put_features(&h.sender.0, &hello.features)?;
                Ok(Opened::Hello {
                    friend: friend.name,
                    features: hello.features,
                    first,
                })
            }
            Kind::InviteAccept => Err(Refusal::BadPayload.into()),
        }
    }

    /// An envelope from a friend under a key that is not the pinned one.
    fn open_other_key(
        &self,
        text: &str,
        env: &Envelope,
        pair: &super::keys::KeyPair,
        mut friend: Friend,
        pinned: &PublicKeys,
    ) -> R<Opened> {
        let h = &env.header;
        let pending = friend.pending.as_ref().and_then(pending_keys);
        if h.kind != Kind::KeyUpdate {
            // Under the pending key: verified, then held. Under a key we have never seen: held
            // unverified until a key update explains it (bounded per sender).
            if let Some(p) = pending.filter(|p| p.key_id() == h.sender_key) {
                seal::verify(env, &p)?;
            }
            if !self.store.hold(&h.sender.0, text)? {
                return Err(Refusal::KeyChangeHeld.into());
            }
            return Ok(Opened::Held {
                friend: friend.name,
            });
        }
        let plain = seal::open(env, pair)?;
        let (body, keys) = KeyUpdateBody::parse(&plain)?;
        if keys.key_id() != h.sender_key {
            return Err(Refusal::BadPayload.into());
        }
        seal::verify(env, &keys)?;
        let hash: [u8; 32] = Sha256::digest(env.to_bytes()).into();
        if self.store.see(&h.sender.0, &h.id, &hash, h.ts_ms)? == Seen::Conflict {
            return Err(Refusal::Replay.into());
        }
        if body.endorsed_by(&h.sender, &keys, pinned) && body.epoch > friend.epoch {
            friend.sign = b64(&keys.sign);
            friend.seal = b64(&keys.seal);
            friend.epoch = body.epoch;
            friend.pending = None;
            friend.key_changed_ms = Some(crate::time::now_ms());
            self.store.put_friend(&friend)?;
            tracing::info!(friend = %friend.name, epoch = body.epoch, "friend's key update accepted (endorsed by its previous key)");
            return Ok(Opened::KeyUpdated {
                released: self.store.take_held(&h.sender.0)?,
                friend: friend.name,
                epoch: body.epoch,
            });
        }
        tracing::warn!(friend = %friend.name, "friend's key changed without its previous key's signature; held until `clawlink friend accept-key`");
        friend.pending = Some(PendingKey {
            sign: b64(&keys.sign),
            seal: b64(&keys.seal),
            epoch: body.epoch,
            seen_ms: crate::time::now_ms(),
        });
        self.store.put_friend(&friend)?;
        Ok(Opened::Held {
            friend: friend.name,
        })
    }

    fn open_invite_accept(
        &self,
        env: &Envelope,
        pair: &super::keys::KeyPair,
        hash: &[u8; 32],
    ) -> R<Opened> {
        let h = &env.header;
        let plain = seal::open(env, pair)?;
        let (body, keys) = InviteAcceptBody::parse(&plain)?;
        if keys.key_id() != h.sender_key {
            return Err(Refusal::BadPayload.into());
        }
        seal::verify(env, &keys)?;
        if self.store.see(&h.sender.0, &h.id, hash, h.ts_ms)? == Seen::Conflict {
            return Err(Refusal::Replay.into());
        }
        let invite_id = unhex::<16>(&body.invite).ok_or(Refusal::BadPayload)?;
        let proof = unb64::<32>(&body.proof).ok_or(Refusal::BadPayload)?;
        let mut friend = Friend {
            name: String::new(),
            id: hex(&h.sender.0),
            sign: b64(&keys.sign),
            seal: b64(&keys.seal),
            epoch: body.epoch,
            verified: false,
            addresses: body.addresses.clone(),
            confirmed: true,
            pending: None,
            added_ms: crate::time::now_ms(),
            key_changed_ms: None,
        };
        let reject = |r: Refusal| {
            TrustError::Refused(Rejected {
                refusal: r,
                receipt: self.receipt(&friend, &h.id, ReceiptStatus::Rejected, Some(r)),
            })
        };
        let Some(rec) = self.store.invite(&invite_id)? else {
            return Err(reject(Refusal::UnknownInvite));
        };
        // The same accept again (a retry over another path) is answered, not refused.
        if let (Some(_), Some(existing)) = (rec.used_ms, self.store.friend_by_id(&h.sender.0)?) {
            if friend_keys(&existing) == Some(keys) {
                return Ok(Opened::FriendAdded {
                    receipt: self.receipt(&existing, &h.id, ReceiptStatus::Stored, None),
                    friend: existing.name,
                });
            }
        }
        if rec.used_ms.is_some() {
            return Err(reject(Refusal::InviteUsed));
        }
        if rec.expires_ms <= crate::time::now_ms() {
            return Err(reject(Refusal::InviteExpired));
        }
        let secret = unb64::<16>(rec.secret.expose()).ok_or(Refusal::UnknownInvite)?;
        if !super::invite::proof_ok(&secret, &invite_id, &h.sender, &keys, &proof) {
            return Err(reject(Refusal::InviteTampered));
        }
        friend.name = self.free_name(rec.name.clone(), &body.name, &h.sender)?;
        self.store.use_invite(&invite_id, rec)?;
        if let Some(old) = self.store.friend_by_id(&h.sender.0)? {
            self.store.remove_friend(&old.name)?;
        }
        self.store.put_friend(&friend)?;
        tracing::info!(friend = %friend.name, "invite accepted; friend pinned");
        Ok(Opened::FriendAdded {
            receipt: self.receipt(&friend, &h.id, ReceiptStatus::Stored, None),
            friend: friend.name,
        })
    }

    /// A name for a new friend: the invite's, else the suggested one, else `peer-<id>`,
    /// with `-2`, `-3`... when taken by another friend.
    fn free_name(&self, given: Option<String>, suggested: &str, id: &PeerId) -> R<String> {
        let base = given
            .filter(|n| valid_name(n))
            .or_else(|| Some(suggested.to_string()).filter(|n| valid_name(n)))
            .unwrap_or_else(|| format!("peer-{}", &hex(&id.0)[..8]));
        let mut name = base.clone();
        let mut n = 2;
        while let Some(f) = self.store.friend(&name)? {
            if f.id == hex(&id.0) {
                break;
            }
            name = format!("{base}-{n}");
            n += 1;
        }
        Ok(name)
    }

    /// The key id a friend's envelopes are expected under (for tests and listings).
    pub fn pinned_key_id(f: &Friend) -> Option<KeyId> {
        friend_keys(f).map(|k| k.key_id())
    }
}
