//! Relay server requests: the query-string reader, percent-decoding, secret candidates, the
//! id/name/secret validators and the JSON body parser with the `/register` and `/send` shapes.
//!
//! Input: the first line is an `Authorization` header value; the whole input is also read as a
//! query string, a raw query value, an id/name/secret and a request body. Checked: no panic;
//! the validators accept exactly what the wire format documents; the query reader agrees with
//! a plain model of it; percent-encoding round-trips; accepted bodies agree with a generic JSON
//! reading and round-trip; error messages never echo the input.
#![no_main]
use axum::http::{header, HeaderMap, HeaderValue};
use clawlinkd::relay::wire::{RegisterRequest, SendRequest};
use clawlinkd::relay_server::query::{
    percent_decode, query_candidates, secret_candidates, valid_id, valid_name, valid_secret,
    RawQuery, MAX_ID, MAX_NAME, MAX_SECRET,
};
use clawlinkd::relay_server::{body::parse_json, valid_key};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let (head, _) = data.split_at(data.iter().position(|&b| b == b'\n').unwrap_or(data.len()));
    bodies(data);
    if let Ok(s) = std::str::from_utf8(data) {
        validators(s);
        query(s);
        decoding(s);
        candidates(head, s);
    }
});

/// Ids: 1-64 of `[A-Za-z0-9_.-]`; names: 1-128 characters, no control character, not only
/// blanks; secrets: 1-1024 bytes. Checked both ways, on the input and on each of its lines.
fn validators(s: &str) {
    for s in std::iter::once(s).chain(s.split('\n')) {
        let id_ok = (1..=MAX_ID).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        assert_eq!(valid_id(s), id_ok, "valid_id({s:?})");
        let name_ok = (1..=MAX_NAME).contains(&s.chars().count())
            && s.chars().all(|c| !c.is_control())
            && s.chars().any(|c| !c.is_whitespace());
        assert_eq!(valid_name(s), name_ok, "valid_name({s:?})");
        assert_eq!(valid_secret(s), (1..=MAX_SECRET).contains(&s.len()));
        if valid_id(s) {
            // Every id is a valid name and secret too, and needs no escaping in a query.
            assert!(valid_name(s) && valid_secret(s));
            assert_eq!(query_candidates(s), [s]);
        }
    }
}

/// `RawQuery` against a model: pairs split on `&`, at the first `=`, first key wins.
fn query(s: &str) {
    let q = RawQuery::parse(Some(s));
    let mut seen = Vec::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if seen.contains(&k) {
            continue;
        }
        seen.push(k);
        assert_eq!(q.raw(k), Some(v));
        let decoded = q.get(k).expect("a present key has a value");
        assert_eq!(
            decoded,
            percent_decode(v, false).unwrap_or_else(|| v.to_string())
        );
        assert_eq!(q.flag(k), matches!(v, "1" | "true" | "yes"));
    }
    // A key never contains `&`, the pair separator.
    for absent in ["&", "id&secret"] {
        assert!(q.raw(absent).is_none() && q.get(absent).is_none() && !q.flag(absent));
    }
    let empty = RawQuery::parse(None);
    assert!(empty.raw("").is_none() && empty.raw("id").is_none());
}

/// Percent-decoding: a superset of the identity when there is no `%` or `+` to read, `+`-as-
/// space equals `+` spelled `%20`, never longer than its input, and a full encoding of any
/// text decodes back to it.
fn decoding(s: &str) {
    let kept = percent_decode(s, false);
    let spaced = percent_decode(s, true);
    if !s.contains('%') {
        assert_eq!(kept.as_deref(), Some(s));
        assert_eq!(spaced, Some(s.replace('+', " ")));
    }
    assert_eq!(spaced, percent_decode(&s.replace('+', "%20"), false));
    for d in [&kept, &spaced].into_iter().flatten() {
        assert!(d.len() <= s.len());
    }
    let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(percent_decode(&encoded, false).as_deref(), Some(s));
    assert_eq!(percent_decode(&encoded, true).as_deref(), Some(s));
    let lower: String = s.bytes().map(|b| format!("%{b:02x}")).collect();
    assert_eq!(percent_decode(&lower, true).as_deref(), Some(s));
}

/// Query candidates: the three readings, in order, without duplicates, raw always among them.
/// Secret candidates: the bearer token first, only valid secrets, no duplicates, nothing new.
fn candidates(head: &[u8], s: &str) {
    let c = query_candidates(s);
    let readings: Vec<String> = [
        percent_decode(s, false),
        percent_decode(s, true),
        Some(s.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut expected: Vec<String> = Vec::new();
    for r in readings {
        if !expected.contains(&r) {
            expected.push(r);
        }
    }
    assert_eq!(c, expected);

    let mut headers = HeaderMap::new();
    let bearer = HeaderValue::from_bytes(head).ok().and_then(|v| {
        headers.insert(header::AUTHORIZATION, v.clone());
        let v = v.to_str().ok()?.trim();
        let (scheme, token) = v.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
    });
    let out = secret_candidates(&headers, c.clone());
    for (i, x) in out.iter().enumerate() {
        assert!(valid_secret(x));
        assert!(!out[..i].contains(x), "duplicate candidate");
        assert!(c.contains(x) || bearer.as_ref() == Some(x));
    }
    match &bearer {
        Some(b) if valid_secret(b) => assert_eq!(out.first(), Some(b)),
        _ => assert!(out.iter().all(|x| c.contains(x))),
    }
    for x in c.iter().filter(|x| valid_secret(x)) {
        assert!(out.contains(x), "a valid reading was dropped");
    }
}

/// Bodies: anything accepted is JSON that the generic reader takes too (see [`tree`]), with
/// the same fields (objects) or in field order (arrays, which serde also accepts);
/// re-encoding the fields parses back to them; a refusal is one of the two fixed messages.
fn bodies(data: &[u8]) {
    let generic = serde_json::from_slice::<Value>(data);
    let field = |v: &Value, name: &str, pos: usize| -> Option<String> {
        let f = match v {
            Value::Object(m) => m.get(name),
            Value::Array(a) => a.get(pos),
            _ => panic!("accepted a body that is neither an object nor an array"),
        };
        f.and_then(Value::as_str).map(str::to_string)
    };
    match parse_json::<RegisterRequest>(data) {
        Ok(r) => {
            if let Some(v) = tree(&generic) {
                assert_eq!(r.id, field(v, "id", 0));
                assert_eq!(r.name, field(v, "name", 1));
                assert_eq!(r.secret, field(v, "secret", 2));
            }
            let again = json!({"id": r.id, "name": r.name, "secret": r.secret}).to_string();
            let back = parse_json::<RegisterRequest>(again.as_bytes()).expect("round trip");
            assert!(back.id == r.id && back.name == r.name && back.secret == r.secret);
        }
        Err(e) => refusal(&e),
    }
    match parse_json::<SendRequest>(data) {
        Ok(r) => {
            if let Some(v) = tree(&generic) {
                assert_eq!(r.from, field(v, "from", 0));
                assert_eq!(r.to, field(v, "to", 1));
                assert_eq!(r.message, field(v, "message", 2));
                assert_eq!(r.secret, field(v, "secret", 3));
                assert_eq!(r.key, field(v, "key", 4));
            }
            if let Some(k) = &r.key {
                let ok =
                    (1..=128).contains(&k.len()) && k.bytes().all(|b| (b'!'..=b'~').contains(&b));
                assert_eq!(valid_key(k), ok, "idempotency key {k:?}");
            }
            let again = json!({"from": r.from, "to": r.to, "message": r.message, "secret": r.secret, "key": r.key});
            let back = parse_json::<SendRequest>(again.to_string().as_bytes()).expect("round trip");
            assert!(back.from == r.from && back.to == r.to && back.key == r.key);
            assert!(back.message == r.message && back.secret == r.secret);
        }
        Err(e) => refusal(&e),
    }
}

/// The generic reading of an accepted body. It may fail only where `serde_json::Value` is
/// stricter than JSON (RFC 8259), in fields the typed reader skips unread: an unpaired
/// surrogate escape such as `"\ud800"`, which a `String` cannot hold, or a number beyond the
/// range of `f64` such as `2e777`.
fn tree(generic: &Result<Value, serde_json::Error>) -> Option<&Value> {
    match generic {
        Ok(v) => Some(v),
        Err(e) => {
            let e = e.to_string();
            let lenient = ["surrogate", "hex escape", "number out of range"];
            assert!(lenient.iter().any(|l| e.contains(l)), "accepted: {e}");
            None
        }
    }
}

/// A refusal names the fault and its position only: no byte of the request is echoed.
fn refusal(e: &str) {
    let rest = e
        .strip_prefix("malformed request body: expected valid JSON (line ")
        .or_else(|| {
            e.strip_prefix(
                "malformed request body: expected a JSON object with the expected fields (line ",
            )
        })
        .unwrap_or_else(|| panic!("unexpected refusal: {e:?}"));
    let (line, col) = rest
        .strip_suffix(')')
        .and_then(|r| r.split_once(", column "))
        .expect("line and column");
    assert!(line.parse::<usize>().is_ok() && col.parse::<usize>().is_ok());
}
