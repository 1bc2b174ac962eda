//! The decision for one inbound message: which level applies, and why.
//!
//! 1. **Configured level**: an owner rule for the exact sender key (`relay:alice`), else a rule
//!    for its whole kind (`relay:*`), else the default: verified senders get
//!    [`Defaults::verified`] (`deliver`), the local webhook gets [`Defaults::webhook`], every
//!    other sender [`Defaults::unverified`] (`review`). A Nexus member whose signature verified
//!    is shown as verified but keeps the unverified default: its key was pinned on first
//!    announce in that session, which proves continuity, not identity (a friend reached
//!    over Nexus sends sealed envelopes and is a verified `friend:` sender). The owner can
//!    raise one member with a rule for its key (`nexus:SID/member`). The webhook is capped at `deliver`
//!    whatever the rules say: anything on this machine can POST to it, so it never converses.
//! 2. **Limits** ([`super::limits`]) may only lower the level, never raise it, and never below
//!    `notify` for a message that was going to reach the agent: too many hops, over the
//!    peer's rate, or at the exchange cap → `notify`.
//!
//! A message the daemon itself sent (its own Nexus member id or relay id coming back) is
//! decided `own` and reaches nothing (see `super` for where that check sits).

use super::limits::Limits;
use super::{Level, Sender};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default levels by kind of sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Senders the transport verified (friends).
    pub verified: Level,
    /// Everyone else (seed clients, unknown relay ids, unsigned Nexus members).
    pub unverified: Level,
    /// The local webhook (capped at `deliver`).
    pub webhook: Level,
}

impl Default for Defaults {
    /// The defaults of `[policy]` ([`crate::config::PolicyConfig`]).
    fn default() -> Self {
        super::Settings::default().defaults
    }
}

/// The highest level the local webhook can have.
pub const WEBHOOK_CAP: Level = Level::Deliver;

/// Where the configured level came from.
pub fn configured(rules: &BTreeMap<String, Level>, d: &Defaults, s: &Sender) -> (Level, String) {
    let (level, why) = if let Some(l) = rules.get(&s.key()) {
        (*l, format!("rule {}", s.key()))
    } else if let Some(l) = rules.get(&format!("{}:*", s.kind)) {
        (*l, format!("rule {}:*", s.kind))
    } else if s.kind == "webhook" {
        (d.webhook, "default for the webhook".to_string())
    } else if s.verified && s.kind == "nexus" {
        // A signed Nexus member proved it is the party that announced that member's key first
        // in this session, not who that party is: it keeps the unverified default.
        (
            d.unverified,
            "default for signed Nexus members (a key pinned per session, not a friend)".to_string(),
        )
    } else if s.verified {
        (d.verified, "default for verified senders".to_string())
    } else {
        (d.unverified, "default for unverified senders".to_string())
    };
    if s.kind == "webhook" && level > WEBHOOK_CAP {
        return (
            WEBHOOK_CAP,
            format!("{why}, capped at deliver for the webhook"),
        );
    }
    (level, why)
}

/// What the limits saw for this message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed {
    /// The envelope's hop count.
    pub hops: u32,
    /// Consecutive agent-written exchanges with this peer, this message included.
    pub exchanges: u32,
    /// Whether the peer's rate window had room.
    pub rate_ok: bool,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The level the rules give.
    pub configured: Level,
    /// The level applied after the limits.
    pub applied: Level,
    /// Why (rule or default, and any limit that lowered it).
    pub reason: String,
}

/// Applies the limits to a configured level.
pub fn decide(configured: (Level, String), o: Observed, limits: &Limits) -> Decision {
    let (level, mut reason) = configured;
    let mut applied = level;
    if level >= Level::Notify {
        let lowered = if o.hops >= limits.max_hops {
            Some(format!("{} hops (limit {})", o.hops, limits.max_hops))
        } else if o.exchanges > limits.max_exchanges {
            Some(format!(
                "{} consecutive agent-written exchanges (limit {}); reset with `clawlink policy reset`",
                o.exchanges, limits.max_exchanges
            ))
        } else if !o.rate_ok && level >= Level::Deliver {
            Some(format!("over {} messages a minute", limits.rate_per_minute))
        } else {
            None
        };
        if let Some(why) = lowered {
            applied = applied.min(Level::Notify);
            reason = format!("{reason}; lowered to notify: {why}");
        }
    }
    Decision {
        configured: level,
        applied,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: &str, id: &str, verified: bool) -> Sender {
        Sender::new(kind, id, verified)
    }

    #[test]
    fn defaults_rules_and_the_webhook_cap() {
        let d = Defaults::default();
        let mut rules = BTreeMap::new();
        assert_eq!(
            configured(&rules, &d, &s("friend", "carol", true)).0,
            Level::Deliver
        );
        assert_eq!(
            configured(&rules, &d, &s("relay", "x", false)).0,
            Level::Review
        );
        assert_eq!(
            configured(&rules, &d, &s("nexus", "S/m", false)).0,
            Level::Review
        );
        // A signed Nexus member keeps the unverified default (its key is pinned per session,
        // it is not a friend); a rule for its key raises it.
        let signed = configured(&rules, &d, &s("nexus", "S/m", true));
        assert_eq!(signed.0, Level::Review);
        assert!(signed.1.contains("signed Nexus members"), "{}", signed.1);
        let mut raised = BTreeMap::new();
        raised.insert("nexus:S/m".to_string(), Level::Deliver);
        assert_eq!(
            configured(&raised, &d, &s("nexus", "S/m", true)).0,
            Level::Deliver
        );
        assert_eq!(
            configured(&rules, &d, &s("webhook", "local", false)).0,
            Level::Notify
        );
        rules.insert("relay:*".to_string(), Level::Block);
        rules.insert("relay:alice".to_string(), Level::Converse);
        rules.insert("webhook:local".to_string(), Level::Converse);
        assert_eq!(
            configured(&rules, &d, &s("relay", "x", false)).0,
            Level::Block
        );
        assert_eq!(
            configured(&rules, &d, &s("relay", "alice", false)).0,
            Level::Converse
        );
        assert_eq!(
            configured(&rules, &d, &s("webhook", "local", false)).0,
            Level::Deliver
        );
        let hot = Defaults {
            webhook: Level::Converse,
            ..d
        };
        assert_eq!(
            configured(&BTreeMap::new(), &hot, &s("webhook", "local", false)).0,
            Level::Deliver
        );
    }

    #[test]
    fn limits_only_lower_and_never_below_notify() {
        let l = Limits::default();
        let ok = Observed {
            hops: 0,
            exchanges: 1,
            rate_ok: true,
        };
        let c = || (Level::Converse, "rule".to_string());
        assert_eq!(decide(c(), ok, &l).applied, Level::Converse);
        assert_eq!(
            decide(c(), Observed { hops: 4, ..ok }, &l).applied,
            Level::Notify
        );
        assert_eq!(
            decide(c(), Observed { exchanges: 5, ..ok }, &l).applied,
            Level::Notify
        );
        assert_eq!(
            decide(
                c(),
                Observed {
                    rate_ok: false,
                    ..ok
                },
                &l
            )
            .applied,
            Level::Notify
        );
        let r = decide((Level::Review, "d".into()), Observed { hops: 9, ..ok }, &l);
        assert_eq!(r.applied, Level::Review, "a held message stays held");
        let b = decide((Level::Block, "d".into()), ok, &l);
        assert_eq!(b.applied, Level::Block);
    }
}
