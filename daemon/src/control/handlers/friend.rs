//! `id`, `id rotate` and `friend ...`: the control side of [`crate::trust`].
//!
//! Envelopes produced here (invite accepts, key updates, receipts, sealed messages) are
//! returned to the caller with the friend's addresses; a transport carries them. `friend open`
//! is the way in for an envelope received by any means: it runs every check, stores a message
//! in the inbox as `verified: true` with the friend's name, and returns the signed receipt.
//!
//! Addresses are written as `relay://HOST:PORT/ID` or `relay+https://HOST/ID` (a relay id),
//! `nexus+URL/SID` (a joined Nexus session) and `http(s)://HOST:PORT/envelope` (direct).

use super::{json, store_err, Reply};
use crate::friend::Friends;
use crate::state::State;
use crate::store::inbox::Stored;
use crate::trust::engine::{friend_keys, Outgoing, TrustError};
use crate::trust::Trust;
use clawlink::proto::{
    AcceptReply, ApiError, Count, FriendRequest, FriendView, IdReply, IdRequest, InviteReply,
    OpenReply, ReceiptView, RotateReply, SealedEnvelope,
};

/// Default invite validity: 15 minutes.
const DEFAULT_TTL_SECS: u64 = 15 * 60;
/// Longest invite validity: 7 days.
const MAX_TTL_SECS: u64 = 7 * 24 * 3600;

pub(super) fn trust_err(e: TrustError) -> ApiError {
    match e {
        TrustError::Refused(r) => ApiError::new(r.refusal.code(), r.refusal.to_string()),
        TrustError::Store(e) => store_err(e),
        TrustError::Local(m) => ApiError::new("bad_request", m),
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::new("not_found", format!("no friend named {name:?}"))
        .with_hint("see `clawlink friend list`")
}

/// This daemon's addresses: its public URL (direct), registered relay ids and joined Nexus
/// sessions, in that order of preference.
fn addresses(state: &State) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(url) = state.config().listen.public_url.as_deref() {
        out.push(format!("{}/envelope", url.trim_end_matches('/')));
    }
    let relays = state.transport::<crate::relay::Relay>().ok();
    let ids = relays.map(|r| r.store.all().unwrap_or_default());
    for i in ids.unwrap_or_default() {
        let a = match i.relay.strip_prefix("http://") {
            Some(host) => format!("relay://{}/{}", host.trim_end_matches('/'), i.id),
            None => format!("relay+{}/{}", i.relay.trim_end_matches('/'), i.id),
        };
        out.push(a);
    }
    let nexus = state.transport::<crate::nexus::Nexus>().ok();
    let sessions = nexus.map(|n| n.store().list().unwrap_or_default());
    for s in sessions.unwrap_or_default() {
        out.push(format!(
            "nexus+{}/{}",
            s.server.trim_end_matches('/'),
            s.sid
        ));
    }
    out
}

fn sealed(trust: &Trust, o: Outgoing) -> SealedEnvelope {
    let addresses = trust
        .store()
        .friend(&o.friend)
        .ok()
        .flatten()
        .map(|f| f.addresses)
        .unwrap_or_default();
    SealedEnvelope {
        friend: o.friend,
        id: o.id,
        envelope: o.text,
        addresses,
    }
}

fn view(trust: &Trust, f: &crate::store::trust::Friend) -> FriendView {
    let keys = friend_keys(f);
    let pending = f.pending.as_ref().and_then(|p| {
        Some(crate::trust::PublicKeys {
            sign: crate::trust::unb64_pub(&p.sign)?,
            seal: crate::trust::unb64_pub(&p.seal)?,
        })
    });
    let id = crate::trust::unhex::<16>(&f.id);
    FriendView {
        name: f.name.clone(),
        id: f.id.clone(),
        safety_number: keys.map(|k| trust.safety_number(&k)).unwrap_or_default(),
        verified: f.verified,
        epoch: f.epoch,
        key_id: keys.map(|k| k.key_id().to_string()).unwrap_or_default(),
        confirmed: f.confirmed,
        addresses: f.addresses.clone(),
        key_change: if f.pending.is_some() {
            "pending"
        } else {
            "none"
        }
        .into(),
        new_safety_number: pending.map(|k| trust.safety_number(&k)),
        held: id
            .map(|id| trust.store().held_count(&id) as u64)
            .unwrap_or(0),
        features: id.and_then(|id| trust.store().features(&id).ok().flatten()),
    }
}

pub(super) async fn id(state: &State, r: IdRequest) -> Reply {
    let friends = state.transport::<Friends>()?;
    let trust = &friends.trust;
    match r {
        IdRequest::Show => {
            let me = trust.identity();
            let p = me.current.public();
            json(&IdReply {
                id: me.id.to_string(),
                epoch: me.current.epoch,
                key_id: p.key_id().to_string(),
                sign_key: crate::trust::b64_pub(&p.sign),
                seal_key: crate::trust::b64_pub(&p.seal),
                addresses: addresses(state),
            })
        }
        IdRequest::Rotate => {
            let updates = trust.rotate().map_err(trust_err)?;
            trust.store().durable().await.map_err(store_err)?;
            for u in &updates {
                queue(state, u, "key_update").await?;
            }
            let me = trust.identity();
            json(&RotateReply {
                epoch: me.current.epoch,
                key_id: me.current.public().key_id().to_string(),
                updates: updates.into_iter().map(|o| sealed(trust, o)).collect(),
            })
        }
    }
}

pub(super) async fn friend(state: &State, r: FriendRequest) -> Reply {
    let friends = state.transport::<Friends>()?;
    let trust = &friends.trust;
    match r {
        FriendRequest::Invite {
            via,
            ttl_secs,
            name,
        } => {
            let ttl = ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
            if ttl == 0 || ttl > MAX_TTL_SECS {
                return Err(ApiError::new(
                    "bad_request",
                    "--ttl must be between 1 second and 7 days",
                ));
            }
            let via = if via.is_empty() {
                addresses(state)
            } else {
                via
            };
            let (invite, expires_ms) = trust
                .invite(via.clone(), ttl * 1000, name)
                .map_err(trust_err)?;
            trust.store().durable().await.map_err(store_err)?;
            json(&InviteReply {
                invite,
                expires_at: crate::time::rfc3339(expires_ms),
                addresses: via,
            })
        }
        FriendRequest::Accept { invite, name } => {
            let me = trust.identity();
            let my_name = format!("peer-{}", &me.id.to_string()[..8]);
            let (out, _) = trust
                .accept(&invite, &name, &my_name, addresses(state))
                .map_err(trust_err)?;
            trust.store().durable().await.map_err(store_err)?;
            queue(state, &out, "invite_accept").await?;
            let f = trust
                .store()
                .friend(&name)
                .map_err(store_err)?
                .ok_or_else(|| not_found(&name))?;
            json(&AcceptReply {
                friend: view(trust, &f),
                accept: sealed(trust, out),
            })
        }
        FriendRequest::List => {
            let list: Vec<FriendView> = trust
                .store()
                .friends()
                .map_err(store_err)?
                .iter()
                .map(|f| view(trust, f))
                .collect();
            json(&list)
        }
        FriendRequest::Verify { name } => {
            let mut f = trust
                .store()
                .friend(&name)
                .map_err(store_err)?
                .ok_or_else(|| not_found(&name))?;
            if f.pending.is_some() {
                return Err(ApiError::new(
                    "key_change_pending",
                    format!("{name:?} has an unaccepted key change"),
                )
                .with_hint(format!(
                    "compare the new safety number, then `clawlink friend accept-key {name}`"
                )));
            }
            f.verified = true;
            trust.store().put_friend(&f).map_err(store_err)?;
            trust.store().durable().await.map_err(store_err)?;
            json(&view(trust, &f))
        }
        FriendRequest::Remove { name } => {
            if !trust.store().remove_friend(&name).map_err(store_err)? {
                return Err(not_found(&name));
            }
            trust.store().durable().await.map_err(store_err)?;
            json(&Count { count: 1 })
        }
        FriendRequest::AcceptKey { name } => {
            let held = trust.accept_key(&name).map_err(trust_err)?;
            let mut replies = Vec::new();
            for text in held {
                replies.push(open(&friends, &text).await?);
            }
            trust.store().durable().await.map_err(store_err)?;
            json(&replies)
        }
        FriendRequest::Seal { name, message } => {
            let out = trust.seal_message(&name, &message).map_err(trust_err)?;
            json(&sealed(trust, out))
        }
        FriendRequest::Open { envelope } => json(&open(&friends, &envelope).await?),
        FriendRequest::Receipt { id } => {
            let id = crate::trust::unhex::<16>(&id)
                .ok_or_else(|| ApiError::new("bad_request", "a message id is 32 hex digits"))?;
            let r = trust.store().receipt(&id).map_err(store_err)?;
            json(&r.map(|r| ReceiptView {
                friend: r.friend,
                status: r.status,
                reason: r.reason,
                at: crate::time::rfc3339(r.at_ms),
            }))
        }
    }
}

/// Opens an envelope received by any means (`friend open`, `friend accept-key`): every
/// check, the message durable in the inbox, and the signed answer returned to the caller.
pub async fn open(friends: &Friends, text: &str) -> Result<OpenReply, ApiError> {
    let trust = &friends.trust;
    let mut h = crate::friend::open::open(friends, text, "control")
        .await
        .map_err(trust_err)?;
    h.seal_ack(friends);
    for r in h.later {
        friends.send(r);
    }
    Ok(OpenReply {
        outcome: h.outcome.into(),
        friend: h.friend,
        inbox_id: match h.stored {
            Stored::Consumed => None,
            s => Some(s.id()),
        },
        status: h.status,
        reply: h.reply.map(|o| sealed(trust, o)),
    })
}

/// Queues `out` (of `kind`) for its friend in the outbox; the friend transport carries it.
async fn queue(state: &State, out: &Outgoing, kind: &str) -> Result<(), ApiError> {
    let ttl = state.config().outbox.ttl_secs;
    let record = crate::friend::transport::record(state.outbound.store(), out, kind, ttl)
        .map_err(store_err)?;
    state.outbound.enqueue(record).await.map_err(store_err)?;
    Ok(())
}
