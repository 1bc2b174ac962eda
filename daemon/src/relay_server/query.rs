//! Lenient reading of what clients send: query strings, credentials, ids and names.
//!
//! The seed client builds `/poll?id=ID&secret=SECRET` and `/ws?id=...` by string
//! concatenation, without URL-encoding. A secret such as `a+b%zz` therefore arrives raw,
//! whereas a careful client sends `a%2Bb%25zz`, and a form encoder turns a space into `+`.
//! So a query value is read as every plausible spelling ([`secret_candidates`]): percent-decoded
//! with `+` kept, percent-decoded with `+` as a space, and raw; the secret check accepts any
//! that matches. Ids cannot contain `+`, `%` or spaces, so for them the first reading decides.
//! The secret may also come in `Authorization: Bearer SECRET`, which is tried first.
//!
//! Public (unlike the rest of the role) so that the fuzz targets can feed these readers.

use axum::http::{header, HeaderMap};

/// Longest id.
pub const MAX_ID: usize = 64;
/// Longest display name, in characters.
pub const MAX_NAME: usize = 128;
/// Longest secret, in bytes.
pub const MAX_SECRET: usize = 1024;

/// The raw `key=value` pairs of a query string, undecoded.
pub struct RawQuery<'a>(Vec<(&'a str, &'a str)>);

impl<'a> RawQuery<'a> {
    /// Splits on `&` and at the first `=` of each pair.
    pub fn parse(query: Option<&'a str>) -> Self {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        RawQuery(pairs)
    }

    /// The raw value of the first `key`.
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The value of `key`, percent-decoded when that is valid, else raw.
    pub fn get(&self, key: &str) -> Option<String> {
        self.raw(key)
            .map(|v| percent_decode(v, false).unwrap_or_else(|| v.to_string()))
    }

    /// Whether `key` is set to a true-ish value (`1`, `true`, `yes`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.raw(key), Some("1" | "true" | "yes"))
    }
}

/// Percent-decodes `s` (`+` → space when `plus_space`). A `%` not followed by two hex digits
/// is kept as it is (the seed client sends raw `%`); `None` if the result is not UTF-8.
pub fn percent_decode(s: &str, plus_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                std::str::from_utf8(&[*hi, *lo])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            }
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') if plus_space => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The plausible readings of a raw query value, most likely first, without duplicates.
pub fn query_candidates(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(3);
    for c in [
        percent_decode(raw, false),
        percent_decode(raw, true),
        Some(raw.to_string()),
    ]
    .into_iter()
    .flatten()
    {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Secrets to try, in order: the bearer token, then `fallback` readings.
pub fn secret_candidates(headers: &HeaderMap, fallback: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(fallback.len() + 1);
    if let Some(b) = bearer(headers) {
        out.push(b);
    }
    for c in fallback {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out.retain(|s| valid_secret(s));
    out
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// 1 to 64 of `[A-Za-z0-9_.-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// 1 to 128 characters, none of them control characters, not only blanks.
pub fn valid_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().count() <= MAX_NAME
        && !name.chars().any(char::is_control)
}

/// 1 to 1024 bytes.
pub fn valid_secret(secret: &str) -> bool {
    !secret.is_empty() && secret.len() <= MAX_SECRET
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_read_leniently() {
        let q = RawQuery::parse(Some("id=bob&secret=a+b%zz&x&ack=1"));
        assert_eq!(q.get("id").as_deref(), Some("bob"));
        assert_eq!(q.get("secret").as_deref(), Some("a+b%zz"));
        assert!(q.flag("ack"));
        assert!(!q.flag("x"));
        assert_eq!(query_candidates("a+b%41"), ["a+bA", "a bA", "a+b%41"]);
        assert_eq!(query_candidates("plain"), ["plain"]);
        assert_eq!(percent_decode("%ED%95%9C", false).as_deref(), Some("한"));
        assert_eq!(
            percent_decode("%EB%B9%84+%zz%", false).as_deref(),
            Some("비+%zz%")
        );
        assert_eq!(percent_decode("%ff", false), None);
        assert_eq!(percent_decode("%+1", false).as_deref(), Some("%+1"));
    }

    #[test]
    fn ids_names_and_bearer_are_validated() {
        assert!(valid_id("my-id_1.x"));
        assert!(
            !valid_id("") && !valid_id("a b") && !valid_id("a/b") && !valid_id(&"a".repeat(65))
        );
        assert!(
            valid_name("내 이름")
                && !valid_name("a\nb")
                && !valid_name("  ")
                && !valid_name(&"x".repeat(129))
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            "Bearer s3cret".parse().expect("header"),
        );
        assert_eq!(
            secret_candidates(&h, vec!["s3cret".into(), "other".into()]),
            ["s3cret", "other"]
        );
    }
}
