//! Relay addresses and relay base URLs.
//!
//! - Addresses: `relay://HOST:PORT/ID` (plain HTTP), `relay+http://…`, `relay+https://HOST/ID`.
//! - Base URLs: `http(s)://HOST[:PORT][/PATH]`, kept without a trailing `/`.

use clawlink::proto::ApiError;

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
