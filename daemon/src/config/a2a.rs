//! `[a2a]` in the daemon's config file.
//!
//! ```toml
//! [a2a]
//! enabled = true                 # serve the card and /a2a/v1 on the listen address
//! name = "clawlink"              # the card's name
//! description = "A clawlink mailbox (A2A 1.0, durable)."
//! advertised_url = "https://me.example"   # origin put in the card (default: the request's Host)
//! show_version = false           # put clawlinkd's version in the card
//! skills = []                    # [{id, name, description, tags}] shown on the card
//! rate_limit_per_minute = 30     # per peer; 0 turns the limit off
//! reply_wait_secs = 20           # longest a blocking SendMessage waits for a final state
//! push_private_hosts = []        # "HOST:PORT"s a push may go to though loopback or private
//! ```
//!
//! The card discloses as little as possible by default: a name, a generic description, the
//! endpoint and the media types; no skills, no version, no agent names. `crate::a2a` reads it
//! (the card and the server).

use serde::Deserialize;

/// `[a2a]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct A2aConfig {
    /// Serve the endpoint.
    pub enabled: bool,
    /// Card name.
    pub name: String,
    /// Card description.
    pub description: String,
    /// Origin advertised in the card.
    pub advertised_url: Option<String>,
    /// Show the daemon's version in the card.
    pub show_version: bool,
    /// Skills shown in the card.
    pub skills: Vec<SkillConfig>,
    /// Requests per minute per peer (0: no limit).
    pub rate_limit_per_minute: u32,
    /// Longest a blocking `SendMessage` waits.
    pub reply_wait_secs: u64,
    /// `HOST:PORT`s a push notification may go to although they resolve to a loopback,
    /// private or link-local address (see [`super::push_guard`]).
    pub push_private_hosts: Vec<String>,
}

/// One skill in `[[a2a.skills]]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SkillConfig {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
}

impl Default for A2aConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            name: "clawlink".into(),
            description: "A clawlink mailbox: messages are stored durably and answered later."
                .into(),
            advertised_url: None,
            show_version: false,
            skills: Vec::new(),
            rate_limit_per_minute: 30,
            reply_wait_secs: 20,
            push_private_hosts: Vec::new(),
        }
    }
}
