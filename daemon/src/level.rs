//! The five inbound levels, from most to least restrictive.
//!
//! | level | what happens |
//! |---|---|
//! | `block` | stored in the inbox and marked; never reaches the agent |
//! | `review` | held until the owner approves (`clawlink review approve`) |
//! | `notify` | the agent's main session gets a short notice clawlink writes itself |
//! | `deliver` | the content goes to an isolated per-peer session, wrapped as untrusted |
//! | `converse` | like `deliver`, and the agent's reply goes back to the peer |
//!
//! Levels are ordered (`Block < Review < … < Converse`) so a cap is a `min`.
//!
//! The inbound policy ([`crate::policy`]) decides them; they sit below it because the config
//! file (`[policy]` defaults) and the store (owner rules, released messages) hold them too.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One inbound level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Never reaches the agent.
    Block,
    /// Held for the owner.
    Review,
    /// Main session gets a short notice only.
    Notify,
    /// Isolated per-peer session, wrapped as untrusted.
    Deliver,
    /// Deliver, and send the agent's reply back.
    Converse,
}

impl Level {
    /// Every level, in order.
    pub const ALL: [Level; 5] = [
        Level::Block,
        Level::Review,
        Level::Notify,
        Level::Deliver,
        Level::Converse,
    ];

    /// The wire and CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Block => "block",
            Level::Review => "review",
            Level::Notify => "notify",
            Level::Deliver => "deliver",
            Level::Converse => "converse",
        }
    }

    /// Whether the content itself (not just a notice) reaches the agent.
    pub fn reaches_agent(self) -> bool {
        self >= Level::Deliver
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level name that is not one of the five.
#[derive(Debug, thiserror::Error)]
#[error("unknown policy level {0:?}; use block, review, notify, deliver or converse")]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;
    fn from_str(s: &str) -> Result<Level, UnknownLevel> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownLevel(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_strictness() {
        for l in Level::ALL {
            assert_eq!(l.as_str().parse::<Level>().ok(), Some(l));
        }
        assert!("allow".parse::<Level>().is_err());
        assert!(Level::Block < Level::Review && Level::Deliver < Level::Converse);
        assert!(!Level::Notify.reaches_agent() && Level::Deliver.reaches_agent());
    }
}
