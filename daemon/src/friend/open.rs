//! Taking a sealed envelope in, whichever way it came: a relay push or poll, a Nexus poll, a
//! webhook post, the direct `POST /envelope`, or `clawlink friend open`.
//!
//! [`open`] runs every check of [`Trust::open`](crate::trust::Trust::open), stores a message in
//! the inbox (durably, before its receipt exists) and returns what to send back. Messages are
//! stored with source `friend` and the de-duplication key `SENDER:ENVELOPE_ID`, so the same
//! envelope arriving over two paths (multipath, or a retry over another relay) is stored once;
//! `meta.via` says which path carried the first copy. A refusal is counted by the trust layer
//! and logged here with its code and path only, never with content.
//!
//! A message (new or a duplicate) is answered by an [`Ack`], not yet a sealed receipt: the
//! ingest path hands it to the batcher ([`super::acks`]), which answers a burst with one
//! receipt; paths that answer in the same exchange seal it at once ([`Handled::seal_ack`]).

use super::acks::{Ack, Reply};
use super::Friends;
use crate::store::inbox::{NewMessage, Stored};
use crate::trust::engine::{Opened, Outgoing, TrustError};
use crate::trust::payload::ReceiptStatus;

/// What one envelope (and any envelopes a key update released) came to.
pub struct Handled {
    /// `message`, `duplicate`, `receipt`, `key_update`, `held`, `friend_added`, `hello`,
    /// `rejected`.
    pub outcome: &'static str,
    /// The friend it is from, when verified.
    pub friend: Option<String>,
    /// For a receipt its status; for a key update its epoch; for a hello its features
    /// (comma-separated); for a refusal its code.
    pub status: Option<String>,
    /// What the inbox holds for it.
    pub stored: Stored,
    /// The signed answer to the first envelope (a receipt), if any.
    pub reply: Option<Outgoing>,
    /// The first envelope was a message, durable now: the `stored` receipt it is owed.
    pub ack: Option<Ack>,
    /// Answers to envelopes released by a key update, to send on.
    pub later: Vec<Reply>,
}

impl Handled {
    /// Turns [`Handled::ack`] into a signed single receipt in [`Handled::reply`], for the
    /// paths that hand the answer back at once (the direct answer, `friend open`).
    pub fn seal_ack(&mut self, friends: &Friends) {
        let Some(ack) = self.ack.take() else {
            return;
        };
        let id = crate::trust::hex(&ack.id);
        match friends
            .trust
            .answer(&ack.friend, &id, ack.status, ack.reason.as_deref())
        {
            Ok(o) => self.reply = Some(o),
            Err(e) => tracing::debug!(error = %e, "no receipt sealed"),
        }
    }
}

/// Opens `text`, which arrived over `via` (`relay`, `nexus`, `http`, `webhook`, `control`).
pub async fn open(friends: &Friends, text: &str, via: &str) -> Result<Handled, TrustError> {
    let mut queue = Vec::new();
    let mut first = one_durable(friends, text, via, &mut queue).await?;
    while let Some(released) = queue.pop() {
        let h = one_durable(friends, &released, via, &mut queue).await?;
        first.later.extend(h.ack.map(Reply::Ack));
        first
            .later
            .extend(h.reply.map(|o| Reply::Sealed(o, "receipt")));
    }
    Ok(first)
}

/// [`one`], then made durable where the inbox's own fsync did not already cover it: a
/// message's fsync (same store) covered its seen id, and a receipt lost in a crash only costs
/// a resend.
async fn one_durable(
    friends: &Friends,
    text: &str,
    via: &str,
    queue: &mut Vec<String>,
) -> Result<Handled, TrustError> {
    let h = one(friends, text, via, queue).await?;
    if !matches!(h.outcome, "message" | "duplicate" | "receipt") {
        friends.trust.store().durable().await?;
    }
    Ok(h)
}

/// One envelope; envelopes a key update released are pushed onto `queue`.
async fn one(
    friends: &Friends,
    text: &str,
    via: &str,
    queue: &mut Vec<String>,
) -> Result<Handled, TrustError> {
    let handled = |outcome, friend, status, reply| Handled {
        outcome,
        friend,
        status,
        stored: Stored::Consumed,
        reply,
        ack: None,
        later: Vec::new(),
    };
    Ok(match friends.trust.open(text) {
        Ok(Opened::Message {
            friend,
            sender,
            id,
            text,
            duplicate,
            hops,
        }) => {
            let mut meta = serde_json::Map::new();
            meta.insert("verified".into(), true.into());
            if hops > 0 {
                // Signed by the sender: the policy's loop limits trust it (`policy::limits`).
                meta.insert("hops".into(), hops.into());
            }
            meta.insert("friend".into(), friend.clone().into());
            meta.insert("peer".into(), sender.clone().into());
            meta.insert("envelope_id".into(), id.clone().into());
            meta.insert("via".into(), via.into());
            let stored = friends
                .ingest
                .store_plain(NewMessage {
                    source: "friend".into(),
                    source_id: Some(format!("{sender}:{id}")),
                    from: friend.clone(),
                    message: text,
                    meta,
                })
                .await?;
            // Durable now (new or a duplicate): owed a `stored` receipt.
            let ack = crate::trust::unhex::<16>(&id)
                .map(|id| Ack::new(&friend, id, ReceiptStatus::Stored, None));
            Handled {
                outcome: if duplicate { "duplicate" } else { "message" },
                friend: Some(friend),
                status: None,
                stored,
                reply: None,
                ack,
                later: Vec::new(),
            }
        }
        Ok(Opened::Receipt {
            friend,
            for_ids,
            status,
        }) => {
            let status = status.as_str().to_string();
            for id in &for_ids {
                friends.receipt_arrived(id, &status);
            }
            handled("receipt", Some(friend), Some(status), None)
        }
        Ok(Opened::KeyUpdated {
            friend,
            epoch,
            released,
        }) => {
            queue.extend(released.into_iter().rev());
            handled(
                "key_update",
                Some(friend),
                Some(format!("epoch {epoch}")),
                None,
            )
        }
        Ok(Opened::Held { friend }) => {
            handled("held", Some(friend), Some("key_change_held".into()), None)
        }
        Ok(Opened::FriendAdded { friend, receipt }) => {
            tracing::info!(%friend, via, "friend added by invite accept");
            // After the receipt that confirms the friendship: what this build reads.
            let later = friends.hello(&friend, false).into_iter().collect();
            Handled {
                later,
                ..handled("friend_added", Some(friend), None, receipt)
            }
        }
        Ok(Opened::Hello {
            friend,
            features,
            first,
        }) => {
            tracing::info!(%friend, features = %features.join(","), "friend's hello: the features its build reads");
            // A friend that greets us has pinned us: it is told ours, unless it was already.
            // Its first hello gets ours again: a build from before hellos refused the one we
            // sent it, and this friend may be that build, upgraded since.
            let later = friends.hello(&friend, first).into_iter().collect();
            Handled {
                later,
                ..handled("hello", Some(friend), Some(features.join(",")), None)
            }
        }
        Err(TrustError::Refused(r)) => {
            tracing::warn!(code = r.refusal.code(), via, "sealed envelope refused");
            handled("rejected", None, Some(r.refusal.code().into()), r.receipt)
        }
        Err(e) => return Err(e),
    })
}
