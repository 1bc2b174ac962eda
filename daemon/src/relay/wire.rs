//! Relay wire formats as the client reads and writes them, and relay addresses.
//!
//! - Pushed: `{"type":"message","id":"N","data":{id, from, fromName, message, timestamp}}`;
//!   polled: the same `data` objects in `{"messages":[...],"more":bool}`.
//! - Acknowledgement frame: `{"type":"ack","ids":["N",...]}`.
//! - Addresses: `relay://HOST:PORT/ID` (plain HTTP), `relay+http://…`, `relay+https://HOST/ID`.
//!
//! Each message becomes an inbox entry with source `relay` and `source_id` `RELAY/N`, so a
//! redelivery of the same relay id is stored once.

use crate::store::inbox::NewMessage;
use clawlink::proto::ApiError;
use serde_json::{json, Value};

/// The address kinds the relay transport accepts.
pub const SCHEMES: &[&str] = &["relay", "relay+http", "relay+https"];

/// Splits `relay://HOST:PORT/ID` into (`http://HOST:PORT`, `ID`).
pub fn parse_address(url: &str) -> Option<(String, String)> {
    let (base, rest) = if let Some(r) = url.strip_prefix("relay://") {
        ("http://", r)
    } else if let Some(r) = url.strip_prefix("relay+https://") {
        ("https://", r)
    } else if let Some(r) = url.strip_prefix("relay+http://") {
        ("http://", r)
    } else {
        return None;
    };
    let (host, id) = rest.rsplit_once('/')?;
    if host.is_empty() || id.is_empty() {
        return None;
    }
    Some((format!("{base}{host}"), id.to_string()))
}

/// The address of `to` on the relay at base URL `relay` (the inverse of [`parse_address`]).
pub fn address(relay: &str, to: &str) -> String {
    match relay.strip_prefix("https://") {
        Some(host) => format!("relay+https://{host}/{to}"),
        None => format!("relay://{}/{to}", relay.trim_start_matches("http://")),
    }
}

/// Validates and normalises a relay base URL (`http(s)://HOST[:PORT][/PATH]`, no trailing `/`).
pub fn normalize(url: &str) -> Result<String, ApiError> {
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

/// The acknowledgement frame for `ids`.
pub fn ack_frame(ids: &[String]) -> String {
    json!({ "type": "ack", "ids": ids }).to_string()
}

/// A pushed or polled message (`{"id"?, "data": {...}}`) as an inbox entry, with its relay id.
pub fn to_new_message(
    relay: &str,
    our_id: &str,
    v: &Value,
) -> Option<(Option<String>, NewMessage)> {
    let data = &v["data"];
    let message = data["message"].as_str()?.to_string();
    let id_of = |x: &Value| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let rid = id_of(&v["id"]).or_else(|| id_of(&data["id"]));
    let from = data["from"].as_str().unwrap_or("unknown").to_string();
    let mut meta = serde_json::Map::new();
    meta.insert("relay".into(), json!(relay));
    meta.insert("to".into(), json!(our_id));
    meta.insert("fromName".into(), data["fromName"].clone());
    meta.insert("timestamp".into(), data["timestamp"].clone());
    let msg = NewMessage {
        source: "relay".into(),
        source_id: rid.as_ref().map(|id| format!("{relay}/{id}")),
        from,
        message,
        meta,
    };
    Some((rid, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_addresses_parse_and_print() {
        assert_eq!(
            parse_address("relay://127.0.0.1:3900/bob"),
            Some(("http://127.0.0.1:3900".into(), "bob".into()))
        );
        assert_eq!(
            parse_address("relay+https://r.example/x"),
            Some(("https://r.example".into(), "x".into()))
        );
        assert_eq!(parse_address("relay://host/"), None);
        assert_eq!(parse_address("ws://x"), None);
        for (relay, to) in [("http://127.0.0.1:3900", "bob"), ("https://r.example", "x")] {
            assert_eq!(
                parse_address(&address(relay, to)),
                Some((relay.into(), to.into()))
            );
        }
    }
}
