//! `contacts.add`, `contacts.list`, `contacts.remove`, `import`.

use super::{json, store_err, Reply};
use crate::state::State;
use clawlink::proto::{ApiError, Count, ImportParams, ImportReply, NewContact};

/// Checks a contact before it is stored.
fn validate(c: &NewContact) -> Result<(), ApiError> {
    if c.name.trim().is_empty() || c.name.len() > 64 || c.name.chars().any(char::is_control) {
        return Err(ApiError::new(
            "bad_request",
            "contact name must be 1-64 printable characters",
        ));
    }
    let url = c.url.as_str();
    let scheme_ok = ["ws://", "wss://", "relay://", "a2a+http://", "a2a+https://"]
        .iter()
        .any(|s| url.starts_with(s));
    if !scheme_ok || url.len() > 2048 {
        return Err(ApiError::new("bad_request", format!("contact url {url:?} must start with ws://, wss:// (an OpenClaw gateway), relay:// (relay://HOST:PORT/ID) or a2a+http(s):// (an A2A endpoint)")));
    }
    if c.desc.len() > 1024 || c.token.expose().len() > 4096 {
        return Err(ApiError::new(
            "bad_request",
            "description or token too long",
        ));
    }
    Ok(())
}

pub(super) async fn add(state: &State, c: NewContact) -> Reply {
    validate(&c)?;
    let contact = state.contacts.put(c).map_err(store_err)?;
    state.db.durable().await.map_err(store_err)?;
    tracing::info!(name = %contact.name, "contact saved");
    json(&contact.view())
}

pub(super) fn list(state: &State) -> Reply {
    let list: Vec<_> = state
        .contacts
        .list()
        .map_err(store_err)?
        .iter()
        .map(|c| c.view())
        .collect();
    json(&list)
}

pub(super) async fn remove(state: &State, name: &str) -> Reply {
    if !state.contacts.remove(name).map_err(store_err)? {
        return Err(
            ApiError::new("not_found", format!("no contact named {name:?}"))
                .with_hint("see `clawlink contacts list`"),
        );
    }
    state.db.durable().await.map_err(store_err)?;
    json(&Count { count: 1 })
}

pub(super) async fn import(state: &State, p: ImportParams) -> Reply {
    for c in &p.contacts {
        validate(c)?;
    }
    let mut reply = ImportReply::default();
    for c in p.contacts {
        state.contacts.put(c).map_err(store_err)?;
        reply.contacts += 1;
    }
    if let Some(identity) = p.relay {
        super::relay::import_identity(state, identity).await?;
        reply.relay = true;
    }
    if let Some(dir) = p.nexus_dir {
        reply.nexus_sessions = super::nexus::import_dir(state, &dir).await?;
    }
    state.db.durable().await.map_err(store_err)?;
    json(&reply)
}
