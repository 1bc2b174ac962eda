//! The Agent Card clawlinkd serves, and card discovery for `contacts add --a2a ORIGIN`.
//!
//! Served at `GET /.well-known/agent-card.json` and `GET /.well-known/agent.json` (older
//! clients), without authentication, as A2A 1.0 asks. It carries the 1.0
//! `supportedInterfaces` and, for 0.3 clients, `url` and `preferredTransport`. What it
//! discloses comes from `[a2a]` (see [`super::config`]): by default a name, a generic
//! description and the endpoint; no skills, no version.

use super::wire::{AgentCard, AgentInterface, Capabilities, Skill};
use crate::config::a2a::{A2aConfig, SkillConfig};
use axum::http::HeaderMap;

/// The card for a request that reached us with these headers.
pub fn card(config: &A2aConfig, headers: &HeaderMap) -> AgentCard {
    let origin = config
        .advertised_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", host(headers)));
    let endpoint = format!("{}/a2a/v1", origin.trim_end_matches('/'));
    AgentCard {
        name: config.name.clone(),
        description: config.description.clone(),
        supported_interfaces: vec![AgentInterface {
            url: endpoint.clone(),
            protocol_binding: "JSONRPC".into(),
            protocol_version: Some("1.0".into()),
        }],
        url: Some(endpoint),
        protocol_version: None,
        preferred_transport: Some("JSONRPC".into()),
        version: if config.show_version {
            env!("CARGO_PKG_VERSION").into()
        } else {
            "1".into()
        },
        capabilities: Capabilities {
            streaming: false,
            push_notifications: true,
        },
        default_input_modes: vec!["text/plain".into(), "application/json".into()],
        default_output_modes: vec!["text/plain".into()],
        skills: config.skills.iter().map(Into::into).collect(),
    }
}

/// The request's `Host`, if it is a plain host[:port]; else `localhost`.
fn host(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
        })
        .unwrap_or("localhost")
        .to_string()
}

/// Where a contact's JSON-RPC endpoint is, given what the user typed: a URL with a path is
/// the endpoint itself; an origin (no path) is looked up through its card.
pub async fn resolve(
    http: &reqwest::Client,
    url: &str,
) -> Result<(String, Option<AgentCard>), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{url:?}: an A2A address starts with http:// or https://"
        ));
    }
    if parsed.path() != "/" && !parsed.path().is_empty() {
        return Ok((url.to_string(), None));
    }
    let origin = url.trim_end_matches('/');
    let mut last = String::new();
    for path in ["/.well-known/agent-card.json", "/.well-known/agent.json"] {
        match fetch(http, &format!("{origin}{path}")).await {
            Ok(card) => {
                let Some(endpoint) = card.jsonrpc_url().map(str::to_string) else {
                    return Err(format!(
                        "the Agent Card of {origin} offers no JSON-RPC endpoint (clawlink speaks the JSON-RPC binding)"
                    ));
                };
                return Ok((endpoint, Some(card)));
            }
            Err(e) => last = e,
        }
    }
    Err(format!("no Agent Card at {origin}: {last}"))
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<AgentCard, String> {
    let resp = http
        .get(url)
        .timeout(std::time::Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| super::client::why(&e))?;
    if !resp.status().is_success() {
        return Err(format!("{url} answered HTTP {}", resp.status().as_u16()));
    }
    let bytes = super::client::read_capped(resp).await?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{url} is not an Agent Card: {e}"))
}

impl From<&SkillConfig> for Skill {
    fn from(s: &SkillConfig) -> Skill {
        Skill {
            id: s.id.clone(),
            name: s.name.clone(),
            description: s.description.clone(),
            tags: s.tags.clone(),
        }
    }
}
