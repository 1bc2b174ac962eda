//! [`Secret`]: a string that never shows itself.
//!
//! Gateway tokens, relay secrets, Nexus session keys and webhook tokens travel inside
//! requests and live in the store, but must never reach a log line, a `Debug` dump or a
//! listing. `Secret` serializes transparently (it has to cross the control socket and reach
//! the disk) but its `Debug` prints `Secret(***)` and it has no `Display`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret string. Read it only with [`Secret::expose`], at the point where it is sent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call this only where the value leaves for its rightful peer.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A redacted rendering for listings: `***` plus the length class, never any character.
    pub fn redacted(&self) -> &'static str {
        if self.0.is_empty() {
            "(none)"
        } else {
            "***"
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
        assert_eq!(
            serde_json::to_string(&s).ok().as_deref(),
            Some("\"hunter2-very-secret\"")
        );
    }
}
