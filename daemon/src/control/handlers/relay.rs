//! `relay setup|register|send|poll|users` (the seed's `relay-client.js` commands) and the
//! relay part of `import --from-skill`: a thin adapter over [`crate::relay::Relay`].
//!
//! Results: setup → `{relay}`; register → `{relay, id, name}`; send → `SendReply` (through the
//! outbox, transport `relay`); poll → the inbox messages it newly stored; users → the relay's
//! `{count, users}`. `--relay URL` overrides the saved default relay; `register` saves it as
//! the default. After `register` the daemon stays connected ([`crate::relay::conn`]).

use super::{json, store_err, Reply};
use crate::relay::address::{address, normalize};
use crate::relay::error::relay_error;
use crate::relay::wire::RegisterAnswer;
use crate::relay::Relay;
use crate::state::State;
use crate::store::relay_client::Identity;
use clawlink::proto::{ApiError, RelayIdentity, RelayRequest, SendParams};
use serde_json::json;
use std::sync::Arc;

fn resolve(relay: &Relay, url: Option<String>) -> Result<String, ApiError> {
    match url {
        Some(r) => normalize(&r),
        None => relay.store.default_relay().map_err(store_err)?.ok_or_else(|| {
            ApiError::new(
                "no_relay",
                "no relay is set up yet: run `clawlink relay setup --relay URL` (or `clawlink relay register --relay URL ...`), or pass --relay URL",
            )
        }),
    }
}

/// `POST /register`; Ok(name) on 200/201.
async fn register_on_relay(relay: &Relay, ident: &Identity) -> Result<String, ApiError> {
    let a = relay
        .http
        .register(ident)
        .await
        .map_err(|e| e.with_hint("check the relay URL (`clawlink relay setup --relay URL`)"))?;
    match a.status {
        200 | 201 => {
            // A seed relay answers without a body: the name stays ours.
            let name = a.read::<RegisterAnswer>().name;
            Ok(if name.is_empty() {
                ident.name.clone()
            } else {
                name
            })
        }
        409 => Err(ApiError::new(
            "conflict",
            format!(
                "the id {:?} is already registered on {} with another secret",
                ident.id, ident.relay
            ),
        )
        .with_hint("use the secret it was registered with, or choose another id")),
        s => Err(relay_error(s, &a.body, &ident.relay)),
    }
}

async fn save_and_connect(
    relay: &Arc<Relay>,
    ident: Identity,
    make_default: bool,
) -> Result<(), ApiError> {
    relay.store.save(&ident).await.map_err(store_err)?;
    let has_default = relay.store.default_relay().map_err(store_err)?.is_some();
    if make_default || !has_default {
        relay
            .store
            .set_default_relay(&ident.relay)
            .await
            .map_err(store_err)?;
    }
    relay.connect(ident);
    Ok(())
}

pub(super) async fn handle(state: &State, r: RelayRequest) -> Reply {
    let relay = state.transport::<Relay>()?;
    match r {
        RelayRequest::Setup { relay: url } => {
            let url = normalize(&url)?;
            relay
                .store
                .set_default_relay(&url)
                .await
                .map_err(store_err)?;
            Ok(json!({ "relay": url }))
        }
        RelayRequest::Register {
            relay: url,
            id,
            name,
            secret,
        } => {
            let url = resolve(&relay, url)?;
            if secret.is_empty() {
                return Err(ApiError::new("bad_request", "a secret is required"));
            }
            let name = if name.is_empty() { id.clone() } else { name };
            let mut ident = Identity {
                relay: url,
                id,
                name,
                secret,
                saved_ms: crate::time::now_ms(),
            };
            ident.name = register_on_relay(&relay, &ident).await?;
            let reply = json!({ "relay": ident.relay, "id": ident.id, "name": ident.name });
            save_and_connect(&relay, ident, true).await?;
            Ok(reply)
        }
        RelayRequest::Send {
            relay: url,
            to,
            message,
            wait,
        } => {
            let url = resolve(&relay, url)?;
            let me = relay.me(&url)?;
            let p = SendParams {
                url: Some(address(&url, &to)),
                message,
                from: Some(me.id),
                wait,
                ..Default::default()
            };
            super::send::send(state, p).await
        }
        RelayRequest::Poll { relay: url } => {
            let url = resolve(&relay, url)?;
            relay.me(&url)?;
            let mut all = Vec::new();
            for ident in relay.store.on_relay(&url).map_err(store_err)? {
                all.extend(relay.poll(&ident).await?);
            }
            all.sort_by_key(|m| m.id);
            json(&all)
        }
        RelayRequest::Users { relay: url } => {
            let url = resolve(&relay, url)?;
            let a = relay.http.users(&url).await?;
            if a.status != 200 {
                return Err(relay_error(a.status, &a.body, &url));
            }
            Ok(a.body)
        }
    }
}

/// Saves an identity from a seed `relay-config.json`, registers it if the relay is reachable,
/// and connects it. An unreachable relay is not an error: the connection retries.
pub(super) async fn import_identity(
    state: &State,
    identity: RelayIdentity,
) -> Result<(), ApiError> {
    let relay = state.transport::<Relay>()?;
    let url = normalize(&identity.relay)?;
    let name = if identity.name.is_empty() {
        identity.id.clone()
    } else {
        identity.name
    };
    let mut ident = Identity {
        relay: url,
        id: identity.id,
        name,
        secret: identity.secret,
        saved_ms: crate::time::now_ms(),
    };
    match register_on_relay(&relay, &ident).await {
        Ok(name) => ident.name = name,
        Err(e) if e.code == "unreachable" => {
            tracing::warn!(relay = %ident.relay, "relay unreachable; identity saved, connection will retry");
        }
        Err(e) => return Err(e),
    }
    save_and_connect(&relay, ident, false).await
}
