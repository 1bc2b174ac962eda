//! `policy list|set|unset|reset`: the owner's per-sender rules.
//!
//! A `set` also applies to messages already held from that sender (or kind, for `KIND:*`):
//! any level other than `review` releases them to be routed at the new level.

use super::{json, store_err, Reply};
use crate::policy::{sender::parse_key, Level};
use crate::state::State;
use clawlink::proto::{ApiError, Count, PolicyList, PolicyRequest, PolicyRule, PolicySetReply};

fn bad(msg: String) -> ApiError {
    ApiError::new("bad_request", msg).with_hint("see `clawlink policy --help`")
}

pub(super) async fn handle(state: &State, r: PolicyRequest) -> Reply {
    let p = &state.policy.store;
    match r {
        PolicyRequest::List => {
            let cfg = state.config();
            let set = crate::policy::Settings::from_config(&cfg.policy);
            let rules = p
                .rules()
                .map_err(store_err)?
                .into_iter()
                .map(|(sender, l)| PolicyRule {
                    sender,
                    level: l.to_string(),
                })
                .collect();
            let defaults = [
                ("verified", set.defaults.verified),
                ("unverified", set.defaults.unverified),
                ("webhook", set.defaults.webhook),
            ]
            .into_iter()
            .map(|(k, l)| (k.to_string(), l.to_string()))
            .collect();
            let limits = [
                ("max_hops", u64::from(set.limits.max_hops)),
                ("rate_per_minute", u64::from(set.limits.rate_per_minute)),
                ("max_exchanges", u64::from(set.limits.max_exchanges)),
                ("max_content_chars", set.max_content_chars as u64),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let exchanges = p.all_exchanges().map_err(store_err)?;
            json(&PolicyList {
                rules,
                defaults,
                limits,
                exchanges,
            })
        }
        PolicyRequest::Set { sender, level } => {
            let key = parse_key(&sender).map_err(bad)?;
            let level: Level = level
                .parse()
                .map_err(|e: crate::level::UnknownLevel| bad(e.to_string()))?;
            p.set_rule(&key, level).map_err(store_err)?;
            let mut released = 0;
            if level != Level::Review {
                let kind_rule = key.strip_suffix(":*").map(|k| format!("{k}:"));
                for h in p.held().map_err(store_err)? {
                    let matches = match &kind_rule {
                        Some(prefix) => h.sender.starts_with(prefix.as_str()),
                        None => h.sender == key,
                    };
                    if matches && p.release_to(h.id, level).map_err(store_err)?.is_some() {
                        released += 1;
                    }
                }
            }
            state.db.durable().await.map_err(store_err)?;
            if released > 0 {
                state.hub.agent_wake().notify_one();
            }
            tracing::info!(sender = %key, %level, released, "policy set");
            json(&PolicySetReply {
                sender: key,
                level: level.to_string(),
                released,
            })
        }
        PolicyRequest::Unset { sender } => {
            let key = parse_key(&sender).map_err(bad)?;
            let n = u64::from(p.remove_rule(&key).map_err(store_err)?);
            state.db.durable().await.map_err(store_err)?;
            json(&Count { count: n })
        }
        PolicyRequest::Reset { sender } => {
            let key = parse_key(&sender).map_err(bad)?;
            let n = u64::from(p.exchanges(&key).map_err(store_err)?);
            p.set_exchanges(&key, 0).map_err(store_err)?;
            state.db.durable().await.map_err(store_err)?;
            json(&Count { count: n })
        }
    }
}
