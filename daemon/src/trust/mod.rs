//! End-to-end trust between clawlink peers: identities, friends by invite, sealed and signed
//! envelopes, signed receipts, key updates and the replay window.
//!
//! This module does no network I/O of its own. It turns text into verified, decrypted payloads
//! and payloads into sealed text; the transports carry that text inside whatever they move (a
//! relay `message`, a Nexus `text`, an HTTP body). The wire formats are specified in
//! `docs/envelope.md`; each submodule's docs repeat the part it implements.
//!
//! - [`keys`]: this daemon's identity (Ed25519 signing key + X25519 sealing key, an epoch, the
//!   previous epoch kept for messages in flight), in `DATA_DIR/identity.key` (0600);
//! - [`envelope`]: the binary layout and its `cle1:` text form, parsing with hard limits;
//! - [`seal`]: X25519 + HKDF-SHA256 + ChaCha20-Poly1305 with the header as associated data,
//!   and the Ed25519 signature over everything;
//! - [`invite`]: single-use, expiring, signed invites (`cli1:`) and the accept proof;
//! - [`payload`]: what the ciphertext holds for each kind (message, receipt, key update,
//!   invite accept);
//! - [`member_sig`]: detached signatures of plain Nexus messages and member key announces;
//! - [`safety`]: the safety number both friends compare aloud;
//! - [`replay`]: the timestamp window;
//! - [`engine`]: [`Trust`], which ties these to the store (pinned keys, seen ids, held
//!   envelopes) and counts every refusal.
//!
//! Nothing here prints or logs a secret or a message's content: secret types have no `Debug`
//! that shows them, and refusals are described by [`Refusal`] only.

pub mod engine;
#[cfg(test)]
mod engine_tests;
pub mod envelope;
pub mod invite;
pub mod keys;
pub mod member_sig;
pub mod payload;
pub mod replay;
pub mod safety;
pub mod seal;

pub use engine::{Opened, Trust};
pub use envelope::{Envelope, Kind};
pub use keys::{Identity, KeyId, PeerId, PublicKeys};

/// Why an envelope, invite or receipt was refused. Never carries content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refusal {
    /// Not an envelope (wrong prefix, bad base64, wrong lengths, trailing bytes).
    #[error("malformed: not a clawlink v1 envelope")]
    Malformed,
    /// Larger than the cap.
    #[error("oversized: larger than the envelope cap")]
    Oversized,
    /// A version this build does not read.
    #[error("unknown version")]
    UnknownVersion,
    /// An unknown kind byte or a flag this build does not know.
    #[error("unknown kind or flags")]
    UnknownKind,
    /// The sender is not a friend (and the envelope is not an invite accept).
    #[error("unknown sender: not a friend")]
    UnknownSender,
    /// The signature does not verify against the pinned key.
    #[error("bad signature: does not verify against the sender's pinned key")]
    BadSignature,
    /// Addressed to another daemon or to a key we do not hold.
    #[error("wrong recipient: not addressed to this daemon's keys")]
    WrongRecipient,
    /// Too old, or too far in the future.
    #[error("outside the replay window (timestamp too old or in the future)")]
    Stale,
    /// The same message id was seen before with different bytes.
    #[error("replay: this message id was already used with other content")]
    Replay,
    /// The AEAD refused the ciphertext.
    #[error("decryption failed")]
    Decrypt,
    /// The decrypted payload is not what its kind requires.
    #[error("bad payload for its kind")]
    BadPayload,
    /// Hop limit exceeded.
    #[error("too many hops")]
    Hops,
    /// The invite is unknown to this daemon (never issued, or removed).
    #[error("unknown invite")]
    UnknownInvite,
    /// The invite was already used.
    #[error("invite already used")]
    InviteUsed,
    /// The invite has expired.
    #[error("invite expired")]
    InviteExpired,
    /// The proof of the invite secret is wrong, or the invite was altered.
    #[error("invite proof or signature invalid (tampered)")]
    InviteTampered,
    /// The sender's key changed without a signature by its previous key; held for the owner.
    #[error(
        "key changed without the old key's signature: held until `clawlink friend accept-key`"
    )]
    KeyChangeHeld,
}

impl Refusal {
    /// A stable snake_case name, used as the `status` counter key and in error codes.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Oversized => "oversized",
            Refusal::UnknownVersion => "unknown_version",
            Refusal::UnknownKind => "unknown_kind",
            Refusal::UnknownSender => "unknown_sender",
            Refusal::BadSignature => "bad_signature",
            Refusal::WrongRecipient => "wrong_recipient",
            Refusal::Stale => "stale",
            Refusal::Replay => "replay",
            Refusal::Decrypt => "decrypt",
            Refusal::BadPayload => "bad_payload",
            Refusal::Hops => "hops",
            Refusal::UnknownInvite => "unknown_invite",
            Refusal::InviteUsed => "invite_used",
            Refusal::InviteExpired => "invite_expired",
            Refusal::InviteTampered => "invite_tampered",
            Refusal::KeyChangeHeld => "key_change_held",
        }
    }

    /// Every refusal, for counters.
    pub const ALL: [Refusal; 17] = [
        Refusal::Malformed,
        Refusal::Oversized,
        Refusal::UnknownVersion,
        Refusal::UnknownKind,
        Refusal::UnknownSender,
        Refusal::BadSignature,
        Refusal::WrongRecipient,
        Refusal::Stale,
        Refusal::Replay,
        Refusal::Decrypt,
        Refusal::BadPayload,
        Refusal::Hops,
        Refusal::UnknownInvite,
        Refusal::InviteUsed,
        Refusal::InviteExpired,
        Refusal::InviteTampered,
        Refusal::KeyChangeHeld,
    ];
}

pub use crate::util::hex::{hex, unhex};

/// base64url without padding, the encoding of every binary field in JSON payloads.
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding into exactly `N` bytes.
pub(crate) fn unb64<const N: usize>(s: &str) -> Option<[u8; N]> {
    use base64::Engine;
    if s.len() > N * 2 {
        return None;
    }
    let v = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .ok()?;
    v.try_into().ok()
}

/// base64url of a public key, as shown by `clawlink id`.
pub fn b64_pub(key: &[u8; 32]) -> String {
    b64(key)
}

/// Decodes a base64url public key.
pub fn unb64_pub(s: &str) -> Option<[u8; 32]> {
    unb64(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex::<4>(&hex(&b)), Some(b));
        assert_eq!(unhex::<4>("0001ABff"), Some(b));
        assert_eq!(unhex::<4>("0001ab"), None);
        assert_eq!(unhex::<2>("zz00"), None);
        assert_eq!(unhex::<2>("é0"), None);
    }
}
