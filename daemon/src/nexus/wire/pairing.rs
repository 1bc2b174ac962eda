//! Pairing bodies: create a code, claim it, ask its state.

use crate::util::lenient;
use serde::{Deserialize, Serialize};

/// `PUT /v1/pair`.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PairRequest {
    /// The session the code lets a second agent join.
    pub session_id: Option<String>,
}

/// The answer to a pair (the client only hands it to the CLI).
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PairAnswer {
    /// The code, e.g. `WORD-WORD-NN`.
    pub code: String,
    /// RFC 3339.
    pub expires_at: String,
    /// `<base>/p/CODE`: instructions for the other agent.
    pub url: String,
}

/// The answer to a claim: the claimer is now a member.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClaimAnswer {
    /// The new member.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub agent_id: String,
    /// The session joined.
    #[serde(default, deserialize_with = "lenient::option")]
    pub session_id: Option<String>,
    /// The new member's key.
    #[serde(default, deserialize_with = "lenient::option")]
    pub session_key: Option<String>,
    /// `"claimed"`.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub status: String,
}

/// What a code looks like now.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PairState {
    /// Can be claimed.
    Pending,
    /// Already claimed.
    Claimed,
    /// Expired, or its session is gone.
    Expired,
}

impl PairState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PairState::Pending => "pending",
            PairState::Claimed => "claimed",
            PairState::Expired => "expired",
        }
    }
}

/// The answer to a pair status (the client only hands it to the CLI).
#[derive(Serialize, Deserialize)]
pub struct PairStatusAnswer {
    /// The code's state.
    pub state: PairState,
}
