//! `contacts.add`, `contacts.list`, `contacts.remove`, `import`.

use super::{json, store_err, Reply};
use crate::state::State;
use clawlink::proto::{ApiError, Count, ImportParams, ImportReply, NewContact};

/// What a usable contact URL looks like, for errors.
const URL_EXAMPLES: &str = "ws://192.168.1.50:18789, wss://gateway.example (an OpenClaw gateway) or relay://relay.example:3900/friend-id (an id on a relay)";

/// Checks a contact before it is stored: some transport must accept its address, and the
/// address must be one that can ever work.
fn validate(state: &State, c: &NewContact) -> Result<(), ApiError> {
    if c.name.trim().is_empty() || c.name.len() > 64 || c.name.chars().any(char::is_control) {
        return Err(ApiError::new(
            "bad_request",
            "contact name must be 1-64 printable characters",
        ));
    }
    let url = c.url.as_str();
    let bad = |why: String| {
        ApiError::new("bad_request", format!("contact url {url:?} {why}"))
            .with_hint(format!("a valid one looks like {URL_EXAMPLES}"))
    };
    if state.transports.for_address(url).is_err() {
        let kinds: Vec<String> = state
            .transports
            .schemes()
            .iter()
            .map(|s| format!("{s}://"))
            .collect();
        return Err(bad(format!("must start with one of {}", kinds.join(", "))));
    }
    check_url(url).map_err(bad)?;
    if c.desc.len() > 1024 || c.token.expose().len() > 4096 {
        return Err(ApiError::new(
            "bad_request",
            "description or token too long",
        ));
    }
    Ok(())
}

/// Whether `url` can ever be sent to: a gateway URL with a host, or a relay address with a
/// host and an id. Says why not.
fn check_url(url: &str) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("is longer than 2048 bytes".into());
    }
    if !url.contains("://") {
        return Err("is not an address (it needs a scheme, such as ws://)".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters".into());
    }
    let has_host = |u: &str| {
        reqwest::Url::parse(u)
            .ok()
            .is_some_and(|u| u.host_str().is_some_and(|h| !h.is_empty()))
    };
    if url.starts_with("ws://") || url.starts_with("wss://") {
        return if has_host(url) {
            Ok(())
        } else {
            Err("has no host (or an invalid one)".into())
        };
    }
    if url.starts_with("relay") {
        return match crate::relay::address::parse_address(url) {
            Some((base, id)) if has_host(&base) && !id.contains('?') && !id.contains('#') => Ok(()),
            Some(_) => Err("has no valid relay host".into()),
            None => Err("is not relay://HOST:PORT/ID: it needs a host and an id".into()),
        };
    }
    // Another transport's address: that transport checks it when it routes a send.
    Ok(())
}

pub(super) async fn add(state: &State, c: NewContact) -> Reply {
    validate(state, &c)?;
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
    let mut reply = ImportReply::default();
    for c in p.contacts {
        if let Err(e) = validate(state, &c) {
            let hint = e.hint.map(|h| format!("; {h}")).unwrap_or_default();
            tracing::warn!(name = %c.name, "import: contact skipped: {}", e.message);
            reply
                .skipped
                .push(format!("{:?}: {}{hint}", c.name, e.message));
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls_that_can_never_work_are_refused() {
        for bad in [
            "ws://",
            "wss://",
            "relay://host",
            "relay://host/",
            "ws://a b:1",
            "relay:///id",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "ws://192.168.1.50:18789",
            "wss://gateway.example",
            "ws://[::1]:18789",
            "relay://relay.example:3900/friend-id",
            "relay+https://relay.example/friend",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good:?}");
        }
    }
}
