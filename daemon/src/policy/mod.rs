//! Inbound policy: nothing reaches the agent that its owner did not allow, and what does
//! arrives isolated and marked as untrusted.
//!
//! Every inbound message gets a [`Level`] for its [`Sender`] ([`decide`]): `block`, `review`,
//! `notify`, `deliver` or `converse`. The [`Engine`] turns that into a [`Route`]:
//!
//! - `block` → nothing reaches the agent (the message stays in the inbox);
//! - `review` → held in the review queue (`store::policy`) until `clawlink review approve`;
//! - `notify` → a short notice written by clawlink into the main session ([`frame::notice`]);
//! - `deliver` / `converse` → the sanitised, framed content ([`frame::content`]) into the
//!   sender's own session `hook:clawlink:…` through OpenClaw's `/hooks/agent`, which wraps it
//!   as untrusted external content ([`hooks`]).
//!
//! `converse` is decided, limited and audited like `deliver`; the agent's reply in the
//! peer's session then goes back to the peer ([`converse`]): sealed with one hop more to a
//! friend, or as the artifact that completes an A2A peer's task. Other senders cannot be
//! answered safely (nothing signs their hop count), so for them `converse` is lowered to
//! `deliver`, and the audit log says why.
//!
//! Limits ([`limits`]) can only lower a level. Every decision is appended to the hash-chained
//! audit log (`store::audit`) with the content's hash, never the content.
//!
//! ## Own messages
//!
//! A message the daemon sent itself never reaches its agent: [`is_own`] recognises a Nexus
//! message from our own member id (`meta.own`, set by the Nexus poller) and a relay message
//! from our own relay id (`meta.to == from`). The engine routes those to [`Route::Own`],
//! audits them as `own`, and marks them read. The better place is before the inbox: the Nexus
//! poller (`inbound/nexus.rs`, where `meta.own` is computed) and the relay subscriber
//! (`inbound/relay.rs::to_new_message`) should store them already read, so they are never
//! counted unread even for a moment.
//!
//! ## Who is verified
//!
//! Only a sender whose transport proved its identity: `source == "friend"` with
//! `meta.verified == true`, set by the trust layer after it checked a sealed envelope. A
//! Nexus server's `verified` flag, a relay's `from` and a webhook's `from` prove nothing. A
//! Nexus member whose signature checked against the key pinned for it in that session
//! ([`sender::nexus`]) is verified too, but keeps the unverified default level ([`decide`]).

pub mod converse;
pub mod decide;
pub mod frame;
pub mod hooks;
pub mod limits;
pub mod local_agent;
pub mod route;
pub mod sanitize;
pub mod sender;

pub use crate::level::Level;
pub use decide::{Decision, Defaults};
pub use limits::Limits;
pub use sender::Sender;

use crate::config::PolicyConfig;
use crate::store::audit::{sha256_hex, AuditLog, Entry};
use crate::store::policy::{Held, PolicyStore};
use crate::store::{Db, Result};
use clawlink::proto::InboxMessage;
use serde_json::Value;

/// The settings of `[policy]` the engine uses.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Default levels.
    pub defaults: Defaults,
    /// Loop and budget limits.
    pub limits: Limits,
    /// Content cap, characters.
    pub max_content_chars: usize,
}

impl Default for Settings {
    /// The defaults of `[policy]`.
    fn default() -> Self {
        Settings::from_config(&PolicyConfig::default())
    }
}

impl Settings {
    /// The engine's settings of a `[policy]` section (the webhook capped at `deliver`).
    pub fn from_config(c: &PolicyConfig) -> Settings {
        Settings {
            defaults: Defaults {
                verified: c.verified,
                unverified: c.unverified,
                webhook: c.webhook.min(decide::WEBHOOK_CAP),
            },
            limits: Limits {
                max_hops: c.max_hops.max(1),
                rate_per_minute: c.rate_per_minute.max(1),
                max_exchanges: c.max_exchanges,
            },
            max_content_chars: c.max_content_chars.clamp(64, 1 << 20),
        }
    }
}

/// Where one message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Our own message come back: nowhere.
    Own,
    /// Nowhere (blocked).
    Block,
    /// Held for review.
    Hold,
    /// A notice into the main session.
    Notice,
    /// The framed content into the peer's session; `converse` sends the reply back.
    Session {
        /// `hook:clawlink:…`.
        key: String,
        /// What the agent reads (before OpenClaw wraps it).
        text: String,
        /// Whether the reply goes back to the sender.
        converse: bool,
    },
}

/// One decided message.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The inbox id.
    pub id: u64,
    /// Who sent it.
    pub sender: Sender,
    /// The levels and why.
    pub decision: Decision,
    /// Where it goes.
    pub route: Route,
}

/// Whether `m` is a message this daemon sent itself.
pub fn is_own(m: &InboxMessage) -> bool {
    m.meta.get("own") == Some(&Value::Bool(true))
        || (m.source == "relay"
            && m.meta.get("to").and_then(Value::as_str) == Some(m.from.as_str()))
}

/// The hop count an envelope carries (`meta.hops`, 0 when absent).
pub fn hops(m: &InboxMessage) -> u32 {
    m.meta
        .get("hops")
        .and_then(Value::as_u64)
        .map_or(0, |h| u32::try_from(h).unwrap_or(u32::MAX))
}

/// The policy sender of an inbox message.
pub fn sender_of(m: &InboxMessage) -> Sender {
    let verified = m.source == "friend" && m.meta.get("verified") == Some(&Value::Bool(true));
    match m.source.as_str() {
        "webhook" => Sender::new("webhook", "local", false).named(&m.from),
        "nexus" => sender::nexus(m),
        "friend" => {
            let mut s = Sender::new("friend", &m.from, verified);
            s.peer = m
                .meta
                .get("peer")
                .and_then(Value::as_str)
                .filter(|p| p.len() <= 64 && p.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_string);
            s
        }
        other => Sender::new(other, &m.from, verified),
    }
}

/// The policy engine: rules, review queue, limits and audit log of one data directory.
#[derive(Clone)]
pub struct Engine {
    /// Rules, held messages, exchange counts.
    pub store: PolicyStore,
    /// The audit log.
    pub audit: AuditLog,
    /// Replies owed under `converse`.
    pub converse: crate::store::converse::ConverseStore,
    rates: std::sync::Arc<limits::RateWindows>,
    converse_wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Engine {
    /// Opens the policy state of `db`.
    pub fn open(db: &Db) -> Result<Engine> {
        Ok(Engine {
            store: PolicyStore::open(db)?,
            audit: AuditLog::open(db)?,
            converse: crate::store::converse::ConverseStore::open(db)?,
            rates: Default::default(),
            converse_wake: Default::default(),
        })
    }

    /// Wakes the [`converse`] worker (a reply is owed).
    pub fn converse_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.converse_wake.clone()
    }

    /// The configured level of a sender and why.
    pub fn configured(&self, s: &Sender, set: &Settings) -> Result<(Level, String)> {
        Ok(decide::configured(&self.store.rules()?, &set.defaults, s))
    }

    /// Decides where `m` goes. `forced` is the level of a message released from review.
    /// Updates the exchange count and the rate window; holds a `review` message. Does not
    /// audit: call [`Engine::record`] once the route was acted on.
    pub fn decide(
        &self,
        m: &InboxMessage,
        forced: Option<Level>,
        set: &Settings,
    ) -> Result<Outcome> {
        let sender = sender_of(m);
        let key = sender.key();
        if is_own(m) {
            let d = Decision {
                configured: Level::Block,
                applied: Level::Block,
                reason: "sent by this daemon".into(),
            };
            return Ok(Outcome {
                id: m.id,
                sender,
                decision: d,
                route: Route::Own,
            });
        }
        let hops = hops(m);
        let exchanges = if hops > 0 {
            self.store.exchanges(&key)?.saturating_add(1)
        } else {
            0
        };
        let configured = match forced {
            Some(l) if sender.kind == "webhook" => (
                l.min(decide::WEBHOOK_CAP),
                "released from review".to_string(),
            ),
            Some(l) => (l, "released from review".to_string()),
            None => self.configured(&sender, set)?,
        };
        let rate_ok = configured.0 < Level::Deliver
            || self
                .rates
                .admit(&key, crate::time::now_ms(), set.limits.rate_per_minute);
        let observed = decide::Observed {
            hops,
            exchanges,
            rate_ok,
        };
        let mut decision = decide::decide(configured, observed, &set.limits);
        if decision.applied == Level::Converse && !can_answer(&sender) {
            decision.applied = Level::Deliver;
            decision.reason.push_str(
                "; lowered to deliver: only friends and A2A peers can be answered (nothing signs other senders' hop counts)",
            );
        }
        if configured_is_counted(&decision) {
            self.store.set_exchanges(&key, exchanges)?;
        }
        let route = match decision.applied {
            Level::Block => Route::Block,
            Level::Review => {
                self.store.hold(&Held {
                    id: m.id,
                    sender: key,
                    source: m.source.clone(),
                    verified: sender.verified,
                    held_ms: crate::time::now_ms(),
                })?;
                Route::Hold
            }
            Level::Notify => Route::Notice,
            l @ (Level::Deliver | Level::Converse) => Route::Session {
                key: frame::session_key(&sender),
                text: frame::content(
                    m.id,
                    &sender,
                    &m.source,
                    hops,
                    &m.message,
                    set.max_content_chars,
                ),
                converse: l == Level::Converse,
            },
        };
        Ok(Outcome {
            id: m.id,
            sender,
            decision,
            route,
        })
    }

    /// Appends the audit record of an acted-on outcome (durable after [`AuditLog::sync`]).
    pub fn record(&self, m: &InboxMessage, o: &Outcome, action: &str) -> Result<()> {
        let session = match &o.route {
            Route::Session { key, .. } => Some(key.clone()),
            Route::Notice => Some("main".to_string()),
            _ => None,
        };
        self.audit.append(Entry {
            source: m.source.clone(),
            sender: o.sender.key(),
            verified: o.sender.verified,
            level: o.decision.applied.to_string(),
            action: action.to_string(),
            session,
            message: m.id,
            content_sha256: sha256_hex(&m.message),
        })?;
        Ok(())
    }
}

/// Whether the agent's reply can go back to `s` under `converse`: a verified friend (the hop
/// count is signed) or an A2A peer (the reply completes its task).
pub fn can_answer(s: &Sender) -> bool {
    (s.kind == "friend" && s.verified) || s.kind == "a2a"
}

/// Whether the exchange count is kept: only for messages that were going to reach a session
/// (a held or blocked message is not part of a conversation).
fn configured_is_counted(d: &Decision) -> bool {
    d.configured >= Level::Notify
}

#[cfg(test)]
mod tests;
