//! Identifiers and secrets of the Nexus server, and the checks on what clients send.
//!
//! | what | format | randomness |
//! |---|---|---|
//! | session id | 48 lowercase hex characters | 192 bits |
//! | session key | 64 lowercase hex characters (one per member) | 256 bits |
//! | message id | `msg_` + 20 hex characters | 80 bits |
//! | pairing code | `WORD-WORD-XXXXX`: two of 256 words, five of 32 symbols | 8 + 8 + 25 = 41 bits |
//! | agent id | chosen by the agent: letters, digits, `-`, `_`, 1 to 128 | - |
//!
//! All randomness comes from the operating system (`OsRng`). The pairing code is drawn
//! independently of the session id, so one says nothing about the other. Session keys are
//! stored only as SHA-256 hashes and compared in constant time.

use super::words::WORDS;
use crate::store::nexus_server::SessionId;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

/// Longest accepted agent id.
pub const MAX_AGENT_ID: usize = 128;

/// Symbols of the code's random suffix: A-Z without I and O, then 2-9 (32 symbols, 5 bits each).
const SUFFIX_SYMBOLS: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

pub use crate::util::hex;

/// A new random session id.
pub fn new_session_id() -> SessionId {
    let mut id = [0u8; 24];
    OsRng.fill_bytes(&mut id);
    id
}

/// Parses the wire form of a session id (48 hex characters, any case).
pub fn parse_session_id(s: &str) -> Option<SessionId> {
    if s.len() != 48 {
        return None;
    }
    let mut id = [0u8; 24];
    for (i, out) in id.iter_mut().enumerate() {
        *out = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

/// A new session key and the hash that is stored.
pub fn new_session_key() -> (clawlink::Secret, String) {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    let key = hex(&key);
    let hash = key_hash(&key);
    (clawlink::Secret::new(key), hash)
}

/// The stored form of a session key.
pub fn key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Whether `presented` is the key whose hash is `stored` (constant time).
pub fn key_matches(presented: &str, stored: &str) -> bool {
    crate::http::secret_eq(key_hash(presented).as_bytes(), stored.as_bytes())
}

/// A new message id.
pub fn new_message_id() -> String {
    let mut b = [0u8; 10];
    OsRng.fill_bytes(&mut b);
    format!("msg_{}", hex(&b))
}

/// A new pairing code, e.g. `PEARL-FOCAL-S5SJV`.
pub fn new_pair_code() -> String {
    let mut rng = OsRng;
    let mut code = format!(
        "{}-{}-",
        WORDS[rng.gen_range(0..WORDS.len())],
        WORDS[rng.gen_range(0..WORDS.len())]
    );
    for _ in 0..5 {
        code.push(char::from(
            SUFFIX_SYMBOLS[rng.gen_range(0..SUFFIX_SYMBOLS.len())],
        ));
    }
    code
}

/// Normalises a code typed by a person (case, surrounding blanks); `None` if it cannot be one.
pub fn normalize_pair_code(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then(|| s.to_ascii_uppercase())
}

/// Whether `s` is a valid agent id.
pub fn valid_agent_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_AGENT_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A random request id for `X-Request-Id` on internal errors.
pub fn new_request_id() -> String {
    let mut b = [0u8; 8];
    OsRng.fill_bytes(&mut b);
    hex(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_codes_have_the_documented_shape() {
        let id = new_session_id();
        let wire = hex(&id);
        assert_eq!(wire.len(), 48);
        assert_eq!(parse_session_id(&wire), Some(id));
        assert_eq!(parse_session_id(&wire.to_uppercase()), Some(id));
        assert_eq!(parse_session_id("zz"), None);
        assert_eq!(parse_session_id(&"g".repeat(48)), None);
        let code = new_pair_code();
        let parts: Vec<&str> = code.split('-').collect();
        assert_eq!(parts.len(), 3, "{code}");
        assert!(WORDS.contains(&parts[0]) && WORDS.contains(&parts[1]));
        assert!(parts[2].len() == 5 && parts[2].bytes().all(|b| SUFFIX_SYMBOLS.contains(&b)));
        assert_eq!(
            normalize_pair_code(&format!(" {} ", code.to_lowercase())),
            Some(code)
        );
        let mut words = WORDS.to_vec();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), 256);
    }

    #[test]
    fn keys_match_only_themselves_and_agent_ids_are_checked() {
        let (key, hash) = new_session_key();
        assert_eq!(key.expose().len(), 64);
        assert!(key_matches(key.expose(), &hash));
        assert!(!key_matches("nope", &hash));
        assert!(valid_agent_id("agent-1_B"));
        assert!(!valid_agent_id("") && !valid_agent_id("a b") && !valid_agent_id(&"a".repeat(129)));
    }
}
