//! The `friend` transport: sealed envelopes to a friend, over every address it has.
//!
//! A record's payload is [`FriendSend`] `{friend, kind, envelope}`; its id is the envelope's
//! message id, so the friend's receipt names it. One lane per friend (order is kept per
//! friend). The addresses are read from the friend's pinned record at each attempt, in the
//! order the friend gave them, except that an address that failed in the last
//! [`DOWN_FOR`] goes last. An attempt tries them in turn until one takes the envelope:
//!
//! - `relay://HOST:PORT/ID`, `relay+http(s)://HOST/ID`: the relay transport delivers it from
//!   one of *our* identities registered on that relay, with the envelope id as the idempotency
//!   key. Two friends on different relays can talk once each is registered on the other's
//!   relay (`clawlink relay register --relay URL`); a relay carries only ciphertext, so which
//!   relay carries it does not matter to secrecy;
//! - `nexus+URL/SID`: posted as the text of a message in that session (which we must have
//!   joined);
//! - `http(s)://HOST[:PORT]/envelope`: posted directly to the friend's daemon (body: the
//!   `cle1:` text; answer `{"ok":true,"reply":"cle1:..."}` with the signed receipt, opened
//!   here at once).
//!
//! `delivered` in the outbox means a server (or the friend's daemon) took the envelope: the
//! state `sent` of `send --wait=sent`. The friend's signed receipt then records `stored` (or
//! `rejected`), which `send --wait=stored` waits for and `clawlink outbox` shows as `peer`.
//! The receiver de-duplicates by envelope id, so a retry over another address doubles nothing.
//!
//! A server that took an envelope may die before passing it on. So a message whose receipt
//! has not come [`RESEND_AFTER`] after it was sent is sent again (same bytes, same id), over
//! the addresses in the same order, which puts the one that failed since last; this repeats,
//! each wait twice the one before up to [`RESEND_MAX`] (a friend away for a day is not sent
//! every message every 10 s), until the receipt comes or the record's deadline passes. The watch itself is in memory, but
//! what it watches is not: the outbox keeps each record (state `delivered`) and the trust store
//! each receipt, so at start every message a server took without a receipt yet is watched
//! again ([`super::Friends`]' `rewatch`), and sent again `RESEND_AFTER` later.

use super::Friends;
use crate::transport::{
    BoxFuture, FriendSend, OutboxStore, Outcome, Payload, Record, SendRequest, Transport,
};
use crate::trust::engine::Outgoing;
use clawlink::proto::{ApiError, DeliveryState, SendParams};
use std::time::{Duration, Instant};

/// How long an address that failed is tried after the others.
pub const DOWN_FOR: Duration = Duration::from_secs(30);
/// How long after a send without a receipt the message is sent again (the first time).
pub const RESEND_AFTER: Duration = Duration::from_secs(10);
/// Longest wait between two sends of a message without a receipt.
pub const RESEND_MAX: Duration = Duration::from_secs(10 * 60);
/// How often the unconfirmed messages are looked at.
const RESEND_TICK: Duration = Duration::from_secs(1);
/// Deadline of one direct `POST /envelope`.
const DIRECT_DEADLINE: Duration = Duration::from_secs(15);
/// Largest direct answer read.
const MAX_ANSWER: usize = 256 * 1024;

/// A message a server took, waiting for its receipt.
pub struct Watch {
    record: Record,
    /// When it was last sent.
    sent_at: Instant,
    /// How many times it was sent again so far.
    resends: u32,
}

impl Watch {
    /// Watches `record`, as if it had just been sent.
    pub fn new(record: Record) -> Watch {
        Watch {
            record,
            sent_at: Instant::now(),
            resends: 0,
        }
    }

    /// How long after its last send it is sent again: [`RESEND_AFTER`], doubling per resend,
    /// at most [`RESEND_MAX`].
    fn wait(&self) -> Duration {
        RESEND_AFTER
            .saturating_mul(1 << self.resends.min(16))
            .min(RESEND_MAX)
    }
}

/// An outbox record carrying `out` (of `kind`) to its friend, alive for `ttl_secs`.
pub fn record(
    store: &OutboxStore,
    out: &Outgoing,
    kind: &str,
    ttl_secs: u64,
) -> crate::store::Result<Record> {
    let now = crate::time::now_ms();
    Ok(Record {
        seq: store.next_seq()?,
        id: out.id.clone(),
        to: out.friend.clone(),
        transport: "friend".into(),
        target: out.friend.clone(),
        payload: Payload::Friend(FriendSend {
            friend: out.friend.clone(),
            kind: kind.into(),
            envelope: out.text.clone(),
        }),
        state: DeliveryState::Queued,
        attempts: 0,
        created_ms: now,
        deadline_ms: now.saturating_add(ttl_secs.max(1).saturating_mul(1000)),
        done_ms: None,
        last_error: None,
    })
}

/// What one address did with the envelope.
enum Tried {
    Took,
    /// Try again later (down, overloaded, not reachable).
    Later(String),
    /// Refused for good at this address.
    Refused(String),
}

impl Friends {
    async fn attempt(&self, record: &Record) -> Outcome {
        let Payload::Friend(p) = &record.payload else {
            return Outcome::Failed(ApiError::new("bad_record", "not a friend outbox record"));
        };
        let friend = match self.trust.store().friend(&p.friend) {
            Ok(Some(f)) => f,
            Ok(None) => {
                return Outcome::Failed(
                    ApiError::new("not_found", format!("{:?} is no longer a friend", p.friend))
                        .with_hint("see `clawlink friend list`"),
                )
            }
            Err(e) => {
                return Outcome::Retry {
                    error: ApiError::new("store", format!("the store failed: {e}")),
                    after: None,
                }
            }
        };
        if friend.addresses.is_empty() {
            return Outcome::Failed(ApiError::new(
                "no_address",
                format!("friend {:?} has no address to reach it at", p.friend),
            ));
        }
        let mut errors = Vec::new();
        let mut later = false;
        for addr in self.in_order(&friend.addresses) {
            match self.try_address(&addr, record, p).await {
                Tried::Took => {
                    self.mark(&addr, true);
                    if p.kind == "message" {
                        // A resend that a server took again keeps counting (see [`Watch::wait`]).
                        self.awaiting
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(record.id.clone())
                            .and_modify(|w| {
                                w.sent_at = Instant::now();
                                w.resends = w.resends.saturating_add(1);
                            })
                            .or_insert_with(|| Watch::new(record.clone()));
                    }
                    return Outcome::Delivered;
                }
                Tried::Later(e) => {
                    self.mark(&addr, false);
                    later = true;
                    errors.push(format!("{addr}: {e}"));
                }
                Tried::Refused(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        let error = ApiError::new(
            "unreachable",
            format!(
                "no address of {:?} took the envelope: {}",
                p.friend,
                errors.join("; ")
            ),
        );
        if later {
            Outcome::Retry { error, after: None }
        } else {
            Outcome::Failed(error)
        }
    }

    /// `addresses` in preference order, those down recently last.
    fn in_order(&self, addresses: &[String]) -> Vec<String> {
        let down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let is_down = |a: &String| down.get(a).is_some_and(|until| *until > now);
        let (mut up, low): (Vec<String>, Vec<String>) =
            addresses.iter().cloned().partition(|a| !is_down(a));
        up.extend(low);
        up
    }

    fn mark(&self, addr: &str, ok: bool) {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            down.remove(addr);
        } else {
            down.insert(addr.to_string(), Instant::now() + DOWN_FOR);
        }
    }

    async fn try_address(&self, addr: &str, record: &Record, p: &FriendSend) -> Tried {
        match crate::transport::scheme(addr) {
            Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {
                self.direct(addr, &p.envelope).await
            }
            Some(s) if s.to_ascii_lowercase().starts_with("nexus+") => {
                self.nexus(addr, &p.envelope).await
            }
            _ => self.carried(addr, record, p).await,
        }
    }

    /// Through the transport that accepts `addr` (a relay).
    async fn carried(&self, addr: &str, record: &Record, p: &FriendSend) -> Tried {
        let Some(registry) = self.registry.get().and_then(|r| r.upgrade()) else {
            return Tried::Later("the daemon is stopping".into());
        };
        let transport = match registry.for_address(addr) {
            Ok(t) if t.kind() != "friend" && t.kind() != "gateway" && t.kind() != "a2a" => t,
            _ => return Tried::Refused("not an address envelopes can travel to".into()),
        };
        let params = SendParams {
            message: p.envelope.clone(),
            ..Default::default()
        };
        let route = match transport.route(&SendRequest {
            url: addr,
            token: Default::default(),
            params: &params,
        }) {
            Ok(r) => r,
            Err(e) => return Tried::Refused(e.to_string()),
        };
        let carrier = Record {
            transport: transport.kind().into(),
            target: route.target,
            payload: route.payload,
            ..record.clone()
        };
        match transport.deliver(&carrier).await {
            Outcome::Delivered => Tried::Took,
            Outcome::Retry { error, .. } => Tried::Later(error.to_string()),
            Outcome::Failed(e) => Tried::Refused(e.to_string()),
        }
    }

    /// Into a joined Nexus session, as a message's text.
    async fn nexus(&self, addr: &str, envelope: &str) -> Tried {
        let Some(nexus) = self
            .registry
            .get()
            .and_then(|r| r.upgrade())
            .and_then(|r| r.get::<crate::nexus::Nexus>())
        else {
            return Tried::Later("the daemon is stopping".into());
        };
        let rest = &addr[addr.find("+").map_or(0, |i| i + 1)..];
        let Some((server, sid)) = rest.rsplit_once('/') else {
            return Tried::Refused("expected nexus+URL/SESSION".into());
        };
        let session = match nexus.store().get(sid) {
            Ok(Some(s)) if s.server.trim_end_matches('/') == server.trim_end_matches('/') => s,
            Ok(_) => return Tried::Refused(format!("session {sid} is not joined here")),
            Err(e) => return Tried::Later(format!("the store failed: {e}")),
        };
        let a = nexus.http().send(&session, envelope).await;
        match a.status {
            200..=299 => Tried::Took,
            0 | 429 | 500..=599 => Tried::Later(format!("Nexus answered {}", a.status)),
            s => Tried::Refused(format!("Nexus answered {s}")),
        }
    }

    /// Straight to the friend's daemon; the receipt in the answer is opened at once.
    async fn direct(&self, url: &str, envelope: &str) -> Tried {
        let sent = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .body(envelope.to_string())
            .timeout(DIRECT_DEADLINE)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Tried::Later(format!("not reachable: {e}")),
        };
        let status = resp.status().as_u16();
        let body = match crate::util::http_client::read_capped(resp, MAX_ANSWER).await {
            Ok(b) => b,
            Err(e) => return Tried::Later(format!("answer unreadable: {e}")),
        };
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(reply) = answer["reply"].as_str() {
            match super::open::open(self, reply, "http").await {
                Ok(h) if h.outcome == "rejected" => {
                    tracing::warn!("a direct answer's receipt was refused");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "a direct answer's receipt was not taken in"),
            }
        }
        let why = || {
            answer["error"]
                .as_str()
                .map(crate::text::display_name)
                .unwrap_or_else(|| format!("HTTP {status}"))
        };
        match status {
            200..=299 => Tried::Took,
            429 | 500..=599 => Tried::Later(why()),
            _ => Tried::Refused(why()),
        }
    }
}

/// Sends again, until `shutdown`, every message whose receipt is [`RESEND_AFTER`] late.
pub async fn resend_unconfirmed(
    friends: std::sync::Arc<Friends>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(RESEND_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let now_ms = crate::time::now_ms();
        let due: Vec<Record> = {
            let mut awaiting = friends.awaiting.lock().unwrap_or_else(|p| p.into_inner());
            awaiting.retain(|_, w| w.record.deadline_ms > now_ms);
            awaiting
                .values()
                .filter(|w| w.sent_at.elapsed() >= w.wait())
                .map(|w| w.record.clone())
                .collect()
        };
        for record in due {
            if friends.receipt_status(&record.id).is_some() {
                friends.forget(&record.id);
                continue;
            }
            tracing::info!(id = %record.id, friend = %record.to, "no receipt yet; sending the message again");
            // A success re-arms the watch; a failure leaves it due for the next tick.
            let _ = friends.attempt(&record).await;
        }
    }
}

impl Transport for Friends {
    fn kind(&self) -> &'static str {
        "friend"
    }

    fn deliver<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resend_wait_doubles_up_to_its_cap() {
        let record = Record {
            seq: 1,
            id: "m".into(),
            to: "bob".into(),
            transport: "friend".into(),
            target: "bob".into(),
            payload: crate::transport::Payload::Friend(FriendSend {
                friend: "bob".into(),
                kind: "message".into(),
                envelope: String::new(),
            }),
            state: DeliveryState::Delivered,
            attempts: 1,
            created_ms: 0,
            deadline_ms: u64::MAX,
            done_ms: None,
            last_error: None,
        };
        let mut w = Watch::new(record);
        let waits: Vec<u64> = (0..10)
            .map(|n| {
                w.resends = n;
                w.wait().as_secs()
            })
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 600, 600, 600, 600]);
        w.resends = u32::MAX;
        assert_eq!(w.wait(), RESEND_MAX);
    }
}
