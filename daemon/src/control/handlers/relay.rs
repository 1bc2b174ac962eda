//! `relay setup|register|send|poll|users` (the seed's `relay-client.js` commands) and the
//! relay part of `import --from-skill`.
//!
//! Results: setup → `{relay}`; register → `{relay, id, name}`; send → `SendReply` (through the
//! outbox, transport `relay`); poll → the inbox messages it newly stored; users → the relay's
//! `{count, users}`. `--relay URL` overrides the saved default relay; `register` saves it as
//! the default. After `register` the daemon stays connected ([`crate::inbound::relay`]).

use super::{json, store_err, Reply};
use crate::agent::State;
use crate::inbound::relay::{http_error, relay_error};
use crate::store::relay_client::{Identity, DEFAULT_RELAY};
use clawlink::proto::{ApiError, RelayIdentity, RelayRequest, SendParams};
use serde_json::{json, Value};

/// Validates and normalises a relay base URL (`http(s)://HOST[:PORT][/PATH]`, no trailing `/`).
fn normalize(url: &str) -> Result<String, ApiError> {
    let u = url.trim().trim_end_matches('/');
    let ok = (u.starts_with("http://") || u.starts_with("https://"))
        && reqwest::Url::parse(u).is_ok_and(|p| p.host().is_some() && p.query().is_none());
    if !ok {
        return Err(ApiError::new(
            "bad_request",
            format!("relay URL {url:?} must look like http://HOST:PORT or https://HOST"),
        ));
    }
    Ok(u.to_string())
}

fn resolve(state: &State, relay: Option<String>) -> Result<String, ApiError> {
    match relay {
        Some(r) => normalize(&r),
        None => Ok(state
            .relay
            .store
            .default_relay()
            .map_err(store_err)?
            .unwrap_or_else(|| DEFAULT_RELAY.to_string())),
    }
}

fn me(state: &State, relay: &str) -> Result<Identity, ApiError> {
    let ids = state.relay.store.on_relay(relay).map_err(store_err)?;
    ids.into_iter().next().ok_or_else(|| {
        ApiError::new(
            "no_identity",
            format!("no relay identity registered on {relay}; run `clawlink relay register --relay {relay} --id ID --secret SECRET` first"),
        )
    })
}

/// `POST /register`; Ok(name) on 200/201.
async fn register_on_relay(state: &State, ident: &Identity) -> Result<String, ApiError> {
    let r = state
        .relay
        .http
        .post(format!("{}/register", ident.relay))
        .json(&json!({ "id": ident.id, "name": ident.name, "secret": ident.secret }))
        .send()
        .await
        .map_err(|e| {
            ApiError::new(
                "unreachable",
                format!("relay {}: {}", ident.relay, http_error(e)),
            )
            .with_hint("check the relay URL (`clawlink relay setup --relay URL`)")
        })?;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    match status {
        200 | 201 => Ok(body["name"].as_str().unwrap_or(&ident.name).to_string()),
        409 => Err(ApiError::new(
            "conflict",
            format!(
                "the id {:?} is already registered on {} with another secret",
                ident.id, ident.relay
            ),
        )
        .with_hint("use the secret it was registered with, or choose another id")),
        _ => Err(relay_error(status, &body, &ident.relay)),
    }
}

async fn save_and_connect(
    state: &State,
    ident: Identity,
    make_default: bool,
) -> Result<(), ApiError> {
    state.relay.store.save(&ident).await.map_err(store_err)?;
    let has_default = state
        .relay
        .store
        .default_relay()
        .map_err(store_err)?
        .is_some();
    if make_default || !has_default {
        state
            .relay
            .store
            .set_default_relay(&ident.relay)
            .await
            .map_err(store_err)?;
    }
    state.relay.connect(ident);
    Ok(())
}

pub(super) async fn handle(state: &State, r: RelayRequest) -> Reply {
    match r {
        RelayRequest::Setup { relay } => {
            let relay = normalize(&relay)?;
            state
                .relay
                .store
                .set_default_relay(&relay)
                .await
                .map_err(store_err)?;
            Ok(json!({ "relay": relay }))
        }
        RelayRequest::Register {
            relay,
            id,
            name,
            secret,
        } => {
            let relay = resolve(state, relay)?;
            if secret.is_empty() {
                return Err(ApiError::new("bad_request", "a secret is required"));
            }
            let name = if name.is_empty() { id.clone() } else { name };
            let mut ident = Identity {
                relay,
                id,
                name,
                secret,
                saved_ms: crate::time::now_ms(),
            };
            ident.name = register_on_relay(state, &ident).await?;
            let reply = json!({ "relay": ident.relay, "id": ident.id, "name": ident.name });
            save_and_connect(state, ident, true).await?;
            Ok(reply)
        }
        RelayRequest::Send {
            relay,
            to,
            message,
            wait,
        } => {
            let relay = resolve(state, relay)?;
            let me = me(state, &relay)?;
            let url = match relay.strip_prefix("https://") {
                Some(host) => format!("relay+https://{host}/{to}"),
                None => format!("relay://{}/{to}", relay.trim_start_matches("http://")),
            };
            let p = SendParams {
                url: Some(url),
                message,
                from: Some(me.id),
                wait,
                ..Default::default()
            };
            super::send::send(state, p).await
        }
        RelayRequest::Poll { relay } => {
            let relay = resolve(state, relay)?;
            me(state, &relay)?;
            let mut all = Vec::new();
            for ident in state.relay.store.on_relay(&relay).map_err(store_err)? {
                all.extend(state.relay.poll(&ident).await?);
            }
            all.sort_by_key(|m| m.id);
            json(&all)
        }
        RelayRequest::Users { relay } => {
            let relay = resolve(state, relay)?;
            let r = state
                .relay
                .http
                .get(format!("{relay}/users"))
                .send()
                .await
                .map_err(|e| {
                    ApiError::new("unreachable", format!("relay {relay}: {}", http_error(e)))
                })?;
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status != 200 {
                return Err(relay_error(status, &body, &relay));
            }
            Ok(body)
        }
    }
}

/// Saves an identity from a seed `relay-config.json`, registers it if the relay is reachable,
/// and connects it. An unreachable relay is not an error: the connection retries.
pub(super) async fn import_identity(
    state: &State,
    identity: RelayIdentity,
) -> Result<(), ApiError> {
    let relay = normalize(&identity.relay)?;
    let name = if identity.name.is_empty() {
        identity.id.clone()
    } else {
        identity.name
    };
    let mut ident = Identity {
        relay,
        id: identity.id,
        name,
        secret: identity.secret,
        saved_ms: crate::time::now_ms(),
    };
    match register_on_relay(state, &ident).await {
        Ok(name) => ident.name = name,
        Err(e) if e.code == "unreachable" => {
            tracing::warn!(relay = %ident.relay, "relay unreachable; identity saved, connection will retry");
        }
        Err(e) => return Err(e),
    }
    save_and_connect(state, ident, false).await
}
