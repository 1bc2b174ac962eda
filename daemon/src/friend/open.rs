//! Taking a sealed envelope in, whichever way it came: a relay push or poll, a Nexus poll, a
//! webhook post, the direct `POST /envelope`, or `clawlink friend open`.
//!
//! [`open`] runs every check of [`Trust::open`](crate::trust::Trust::open), stores a message in
//! the inbox (durably, before its receipt exists) and returns what to send back. Messages are
//! stored with source `friend` and the de-duplication key `SENDER:ENVELOPE_ID`, so the same
//! envelope arriving over two paths (multipath, or a retry over another relay) is stored once;
//! `meta.via` says which path carried the first copy. A refusal is counted by the trust layer
//! and logged here with its code and path only, never with content.

use super::Friends;
use crate::store::inbox::{NewMessage, Stored};
use crate::trust::engine::{Opened, Outgoing, TrustError};

/// What one envelope (and any envelopes a key update released) came to.
pub struct Handled {
    /// `message`, `duplicate`, `receipt`, `key_update`, `held`, `friend_added`, `rejected`.
    pub outcome: &'static str,
    /// The friend it is from, when verified.
    pub friend: Option<String>,
    /// For a receipt its status; for a key update its epoch; for a refusal its code.
    pub status: Option<String>,
    /// What the inbox holds for it.
    pub stored: Stored,
    /// The signed answer to the first envelope (a receipt), if any.
    pub reply: Option<Outgoing>,
    /// Answers to envelopes released by a key update, to send on.
    pub later: Vec<Outgoing>,
}

/// Opens `text`, which arrived over `via` (`relay`, `nexus`, `http`, `webhook`, `control`).
pub async fn open(friends: &Friends, text: &str, via: &str) -> Result<Handled, TrustError> {
    let mut queue = Vec::new();
    let mut first = one_durable(friends, text, via, &mut queue).await?;
    while let Some(released) = queue.pop() {
        let h = one_durable(friends, &released, via, &mut queue).await?;
        first.later.extend(h.reply);
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
        later: Vec::new(),
    };
    Ok(match friends.trust.open(text) {
        Ok(Opened::Message {
            friend,
            sender,
            id,
            text,
            duplicate,
            receipt,
        }) => {
            let mut meta = serde_json::Map::new();
            meta.insert("verified".into(), true.into());
            meta.insert("friend".into(), friend.clone().into());
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
            Handled {
                outcome: if duplicate { "duplicate" } else { "message" },
                friend: Some(friend),
                status: None,
                stored,
                reply: receipt,
                later: Vec::new(),
            }
        }
        Ok(Opened::Receipt {
            friend,
            for_id,
            status,
        }) => {
            let status = status.as_str().to_string();
            friends.receipt_arrived(&for_id, &status);
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
            handled("friend_added", Some(friend), None, receipt)
        }
        Err(TrustError::Refused(r)) => {
            tracing::warn!(code = r.refusal.code(), via, "sealed envelope refused");
            handled("rejected", None, Some(r.refusal.code().into()), r.receipt)
        }
        Err(e) => return Err(e),
    })
}
