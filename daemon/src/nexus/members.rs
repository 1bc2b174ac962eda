//! Member signatures in Nexus sessions: signing what we send, announcing our key, and
//! checking what others send against the keys pinned for them in that session.
//!
//! Why: the server's `verified` flag only means "the sender knew a session key"; any member
//! can post under another member's agent id without one. So every plain message this daemon
//! sends carries a detached signature by its identity key ([`crate::trust::member_sig`] has
//! the format and the canonical bytes), and on joining (or before the first send, if that
//! failed) it posts a signed announce of its keys. Receivers pin the first announce of each
//! member, per session ([`crate::store::nexus_members`]).
//!
//! On ingest, a message from member `M` of session `S` (not `system`, not a sealed `cle1:`
//! envelope, which carries its own signature) is one of:
//!
//! | message | result (`meta`) |
//! |---|---|
//! | signed, verifies against `M`'s pinned key, nonce unused | `signed: true`, `member_key: KEY ID` |
//! | signed, `M` has no pinned key | `signed: false`, `signature: "unknown_key"` |
//! | plain, `M` has no pinned key | `signed: false` (as before this existed) |
//! | plain, or an unreadable signature, while `M` has a pinned key | forged (`unsigned`, `malformed`, `unknown_version`) |
//! | signed, does not verify | forged (`bad_signature`) |
//! | signed, nonce already used by another message of `M` | forged (`replay`) |
//! | announce, verifies, server `verified: true`, nothing pinned | pins the key; `announce: true`, `signed: true` |
//! | announce of the pinned key again | `announce: true`, `signed: true` |
//! | announce of another key for a pinned member | held, never used; forged (`key_conflict`) |
//! | announce the server did not mark `verified` / that does not verify | forged (`unverified_announce` / `bad_signature`) |
//!
//! A forged message is stored with `verified: false`, `forged: true`, `forged_reason`,
//! `claimed_from: M` and `from: "unverified:M"`, so it is never shown (nor decided by the
//! policy) as `M`; it counts in the session's `status` row (`forged`) and is logged with its
//! reason and member, never its text. Announces are stored read and never go to the agent.

use super::wire::{Message, SendAnswer};
use super::{lock, Nexus};
use crate::store::nexus_client::JoinedSession;
use crate::store::nexus_members::{MemberKey, Pin};
use crate::trust::keys::{KeyId, KeyPair};
use crate::trust::member_sig::{self, SigError, SigType};
use crate::trust::{b64, unhex};
use serde_json::{json, Map, Value};

/// The prefix of `from` for a message not attributed to the member it claims.
pub const UNVERIFIED_PREFIX: &str = "unverified:";

/// What the member check made of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not subject to member signatures (`system`, a sealed envelope), or plain from a member
    /// without a pinned key.
    Plain,
    /// Signed by a member without a pinned key.
    UnknownKey,
    /// Signed by the member's pinned key.
    Signed,
    /// A valid announce (pinned now, or the pinned key again).
    Announce,
    /// Not from the member it claims; the reason code.
    Forged(&'static str),
}

/// Per-session counters shown in `status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SigCounts {
    /// Messages whose signature verified against a pinned key.
    pub signed: u64,
    /// Messages stored as not from the member they claim.
    pub forged: u64,
}

fn member_key_of(
    id: &crate::trust::PeerId,
    keys: &crate::trust::PublicKeys,
    cursor: Option<&str>,
) -> MemberKey {
    MemberKey {
        id: id.to_string(),
        sign: b64(&keys.sign),
        seal: b64(&keys.seal),
        key_id: keys.key_id().to_string(),
        seen_ms: crate::time::now_ms(),
        cursor: cursor.map(str::to_string),
    }
}

fn pinned_keys(k: &MemberKey) -> Option<crate::trust::PublicKeys> {
    Some(crate::trust::PublicKeys {
        sign: crate::trust::unb64_pub(&k.sign)?,
        seal: crate::trust::unb64_pub(&k.seal)?,
    })
}

/// A member id for a log line: escaped by `Debug`, at most 64 characters.
fn shown(member: &str) -> String {
    member.chars().take(64).collect()
}

impl Nexus {
    /// Checks one server message `m`, posted as `from`, against the member keys of `s` (see
    /// the module docs); `msg_key` names the message (its inbox `source_id`), so the same
    /// message fetched twice is not taken for a replay. Pins a valid first announce.
    pub(super) fn check_member(
        &self,
        s: &JoinedSession,
        m: &Message,
        from: &str,
        msg_key: &str,
    ) -> crate::store::Result<Outcome> {
        let text = m.text.as_deref();
        let envelope = text.is_some_and(|t| t.starts_with(crate::inbound::ENVELOPE_PREFIX));
        if from == "system" || envelope || from.is_empty() {
            return Ok(Outcome::Plain);
        }
        let text = text.unwrap_or("");
        let pinned = self.members.get(&s.sid, from)?;
        let parsed = match member_sig::parse(m.json.as_ref()) {
            None if pinned.is_some() => return Ok(Outcome::Forged("unsigned")),
            None => return Ok(Outcome::Plain),
            Some(Err(e)) if pinned.is_some() => return Ok(Outcome::Forged(e.code())),
            Some(Err(_)) => return Ok(Outcome::Plain),
            Some(Ok(p)) => p,
        };
        let signed = parsed.signed(&s.sid, from, text);
        match (parsed.kind, parsed.announce) {
            (SigType::Announce, Some((id, keys))) => {
                if member_sig::verify(&signed, &parsed.sig, &keys).is_err() {
                    return Ok(Outcome::Forged(SigError::BadSignature.code()));
                }
                if !m.verified {
                    return Ok(Outcome::Forged("unverified_announce"));
                }
                let offered = member_key_of(&id, &keys, Some(msg_key));
                match self.members.pin_first(&s.sid, from, &offered)? {
                    Pin::New | Pin::Same => Ok(Outcome::Announce),
                    Pin::Conflict(_) => {
                        if self.members.hold(&s.sid, from, &offered)? {
                            tracing::warn!(
                                member = ?shown(from),
                                "nexus: a member announced a key other than the one pinned in this session; held, not used"
                            );
                        }
                        Ok(Outcome::Forged("key_conflict"))
                    }
                }
            }
            (SigType::Announce, None) => Ok(Outcome::Forged(SigError::Malformed.code())),
            (SigType::Message, _) => {
                let Some(pin) = pinned else {
                    return Ok(Outcome::UnknownKey);
                };
                let Some(keys) = pinned_keys(&pin) else {
                    return Ok(Outcome::Forged(SigError::Malformed.code()));
                };
                if member_sig::verify(&signed, &parsed.sig, &keys).is_err() {
                    return Ok(Outcome::Forged(SigError::BadSignature.code()));
                }
                if !self
                    .members
                    .note_nonce(&s.sid, from, &parsed.nonce, msg_key)?
                {
                    return Ok(Outcome::Forged("replay"));
                }
                Ok(Outcome::Signed)
            }
        }
    }

    /// Applies an outcome to a message about to be stored: `meta` and `from`.
    pub(super) fn mark(
        meta: &mut Map<String, Value>,
        from: &mut String,
        outcome: &Outcome,
        pinned_key: Option<String>,
    ) {
        meta.insert("signed".into(), json!(false));
        match outcome {
            Outcome::Plain => {}
            Outcome::UnknownKey => {
                meta.insert("signature".into(), json!("unknown_key"));
            }
            Outcome::Signed | Outcome::Announce => {
                meta.insert("signed".into(), json!(true));
                if let Some(k) = pinned_key {
                    meta.insert("member_key".into(), json!(k));
                }
            }
            Outcome::Forged(why) => {
                meta.insert("verified".into(), json!(false));
                meta.insert("forged".into(), json!(true));
                meta.insert("forged_reason".into(), json!(why));
                meta.insert("claimed_from".into(), json!(from.clone()));
                meta.insert("own".into(), json!(false));
                *from = format!("{UNVERIFIED_PREFIX}{from}");
            }
        }
    }

    /// The key id pinned for `member` of `sid`, if any.
    pub(super) fn pinned_key_id(&self, sid: &str, member: &str) -> Option<String> {
        self.members
            .get(sid, member)
            .ok()
            .flatten()
            .map(|k| k.key_id)
    }

    /// Counts a newly stored message and logs a forged one (without its content).
    pub(super) fn count(&self, sid: &str, claimed: &str, outcome: &Outcome) {
        let mut all = lock(&self.sig_counts);
        let c = all.entry(sid.to_string()).or_default();
        match outcome {
            Outcome::Signed => c.signed += 1,
            Outcome::Forged(why) => {
                c.forged += 1;
                tracing::warn!(
                    member = ?shown(claimed),
                    reason = why,
                    "nexus: a message is not from the member it claims; stored as unverified"
                );
            }
            _ => {}
        }
    }

    /// The counters of `sid`.
    pub(super) fn sig_counts(&self, sid: &str) -> SigCounts {
        lock(&self.sig_counts).get(sid).copied().unwrap_or_default()
    }

    /// The key pair to sign with in `s`: the one pinned for us there if we still hold it
    /// (so a rotation does not break a running session while the previous key is kept),
    /// else the current one.
    fn with_pair<T>(
        &self,
        s: &JoinedSession,
        f: impl FnOnce(&crate::trust::Identity, &KeyPair) -> T,
    ) -> T {
        let me = self.trust.identity();
        let pinned = self
            .pinned_key_id(&s.sid, &s.agent_id)
            .and_then(|k| unhex::<16>(&k))
            .map(KeyId);
        let pair = pinned.and_then(|k| me.pair_for(&k)).unwrap_or(&me.current);
        f(&me, pair)
    }

    /// Posts our signed key announce in `s` unless it was posted already; pins our own key
    /// there first. `None` when nothing was sent, else the server's answer.
    pub async fn announce(&self, s: &JoinedSession) -> crate::store::Result<Option<super::Answer>> {
        if self.members.announced(&s.sid)?.is_some() {
            return Ok(None);
        }
        let me = self.trust.identity();
        let ours = member_key_of(&me.id, &me.current.public(), None);
        // A conflict here is an earlier key of ours pinned in this session: signing keeps using
        // it while we hold it (see `with_pair`).
        let _ = self.members.pin_first(&s.sid, &s.agent_id, &ours)?;
        let built = self.with_pair(s, |me, pair| {
            member_sig::sign_announce(&s.sid, &s.agent_id, me.id, pair)
                .map(|(t, j)| (t, j, pair.public().key_id().to_string()))
        });
        let (text, json, key_id) = match built {
            Ok(b) => b,
            Err(e) => {
                return Ok(Some(super::Answer::local(format!(
                    "cannot sign the announce: {}",
                    e.code()
                ))))
            }
        };
        let a = self.http.send_signed(s, &text, &json).await;
        if a.ok() {
            self.members.set_announced(&s.sid, &key_id)?;
            self.store.db().durable().await?;
        } else {
            tracing::warn!(
                status = a.status,
                "nexus: the key announce was not taken; retried before the next send"
            );
        }
        Ok(Some(a))
    }

    /// `clawlink nexus send`: the text with our member signature, and a tip for the CLI when
    /// there is something to say. Our key is announced first if that has not been done in
    /// this session; if the announce is refused the message is still sent (members without
    /// our key see it as signed by an unknown key) and the announce is tried again next time.
    pub async fn send_signed(
        &self,
        s: &JoinedSession,
        text: &str,
    ) -> crate::store::Result<(super::Answer, Vec<String>)> {
        let mut tips = Vec::new();
        if let Some(a) = self.announce(s).await? {
            if !a.ok() {
                tips.push(format!(
                    "the key announce was refused ({}); members cannot check this message's signature yet",
                    a.code().unwrap_or("error")
                ));
            }
        }
        let json = self.with_pair(s, |_, pair| {
            member_sig::sign_message(&s.sid, &s.agent_id, text, pair)
        });
        let a = match json {
            Ok(j) => self.http.send_signed(s, text, &j).await,
            Err(e) => super::Answer::local(format!("cannot sign the message: {}", e.code())),
        };
        if a.read::<SendAnswer>().redacted {
            tips.push("the server changed the text (redacted); the signature no longer matches it, so members see this message as unverified".into());
        }
        Ok((a, tips))
    }

    /// Forgets the pins, nonces and announce mark of `sid`.
    pub fn forget_members(&self, sid: &str) {
        if let Err(e) = self.members.forget_session(sid) {
            tracing::warn!(error = %e, "nexus: cannot drop a session's member keys");
        }
        lock(&self.sig_counts).remove(sid);
    }

    /// Pinned members and held key changes of `sid`, for `status`.
    pub(super) fn member_counts(&self, sid: &str) -> (usize, usize) {
        (
            self.members.members(sid).map(|m| m.len()).unwrap_or(0),
            self.members.held_count(sid),
        )
    }
}
