//! The envelope: binary layout, its text form, and a parser that refuses anything malformed.
//!
//! Text form: `cle1:` followed by the base64url (no padding) of the binary envelope. It is
//! plain ASCII, so it travels unchanged inside a relay `message`, a Nexus `text` or an HTTP
//! body. Binary layout (integers big-endian):
//!
//! ```text
//! off  len  field
//!   0    1  version            1
//!   1    1  kind               1 message, 2 receipt, 3 key update, 4 invite accept, 5 hello
//!   2    1  hops               set by the sender (0); refused above MAX_HOPS
//!   3    1  flags              0 (any other value is refused)
//!   4   16  sender id
//!  20   16  sender key id
//!  36   16  recipient id
//!  52   16  recipient key id
//!  68   16  message id         random, unique per sender
//!  84    8  timestamp          ms since the Unix epoch
//!  92   32  ephemeral X25519 public key
//! 124    4  ciphertext length  n, at most MAX_CIPHERTEXT
//! 128    n  ciphertext         ChaCha20-Poly1305 output (16-byte tag included)
//! 128+n 64  signature          Ed25519 by the sender key over "clawlink-envelope-v1\0" || bytes[0..128+n]
//! ```
//!
//! The 128-byte header is the AEAD's associated data, and the signature covers header and
//! ciphertext: changing any byte makes the envelope fail (see the property test).

use super::keys::{KeyId, PeerId};
use super::Refusal;
use base64::Engine;

/// The text prefix of a v1 envelope.
pub const PREFIX: &str = "cle1:";
/// Header length.
pub const HEADER_LEN: usize = 128;
/// Signature length.
pub const SIG_LEN: usize = 64;
/// AEAD tag length.
pub const TAG_LEN: usize = 16;
/// Largest ciphertext accepted (48 KiB: a 32 KiB text plus JSON escaping and the tag).
pub const MAX_CIPHERTEXT: usize = 48 * 1024;
/// Largest binary envelope.
pub const MAX_BINARY: usize = HEADER_LEN + MAX_CIPHERTEXT + SIG_LEN;
/// Largest text envelope (base64 of [`MAX_BINARY`] plus the prefix).
pub const MAX_TEXT: usize = PREFIX.len() + MAX_BINARY.div_ceil(3) * 4;
/// Hop limit.
pub const MAX_HOPS: u8 = 8;
/// Domain separation for the signature.
pub const SIG_CONTEXT: &[u8] = b"clawlink-envelope-v1\0";

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A message for the recipient's inbox.
    Message = 1,
    /// A signed receipt for an earlier envelope.
    Receipt = 2,
    /// New keys, endorsed by the old key (or held for the owner when not).
    KeyUpdate = 3,
    /// The answer to an invite: the accepter's keys and proof of the invite secret.
    InviteAccept = 4,
    /// The features the sender's build reads (see [`super::payload::HelloBody`]).
    Hello = 5,
}

impl Kind {
    /// The kind for a wire byte.
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Message,
            2 => Kind::Receipt,
            3 => Kind::KeyUpdate,
            4 => Kind::InviteAccept,
            5 => Kind::Hello,
            _ => return None,
        })
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Receipt => "receipt",
            Kind::KeyUpdate => "key_update",
            Kind::InviteAccept => "invite_accept",
            Kind::Hello => "hello",
        }
    }
}

/// The header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Kind.
    pub kind: Kind,
    /// Hop count.
    pub hops: u8,
    /// Sender's peer id.
    pub sender: PeerId,
    /// Sender's key id (the key that signed).
    pub sender_key: KeyId,
    /// Recipient's peer id.
    pub recipient: PeerId,
    /// Recipient's key id (the key sealed to).
    pub recipient_key: KeyId,
    /// Message id.
    pub id: [u8; 16],
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// Ephemeral X25519 public key.
    pub epk: [u8; 32],
}

/// A parsed, not yet verified envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The header.
    pub header: Header,
    /// The ciphertext (tag included).
    pub ciphertext: Vec<u8>,
    /// The signature.
    pub signature: [u8; 64],
}

fn take<const N: usize>(b: &[u8], off: usize) -> Result<[u8; N], Refusal> {
    b.get(off..off + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(Refusal::Malformed)
}

impl Header {
    /// The 128 header bytes for a ciphertext of `ct_len` bytes.
    pub fn encode(&self, ct_len: usize) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = 1;
        h[1] = self.kind as u8;
        h[2] = self.hops;
        h[3] = 0;
        h[4..20].copy_from_slice(&self.sender.0);
        h[20..36].copy_from_slice(&self.sender_key.0);
        h[36..52].copy_from_slice(&self.recipient.0);
        h[52..68].copy_from_slice(&self.recipient_key.0);
        h[68..84].copy_from_slice(&self.id);
        h[84..92].copy_from_slice(&self.ts_ms.to_be_bytes());
        h[92..124].copy_from_slice(&self.epk);
        h[124..128].copy_from_slice(&(ct_len as u32).to_be_bytes());
        h
    }
}

impl Envelope {
    /// The bytes the signature covers (without the context prefix): header and ciphertext.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_LEN + self.ciphertext.len());
        v.extend_from_slice(&self.header.encode(self.ciphertext.len()));
        v.extend_from_slice(&self.ciphertext);
        v
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.signed_bytes();
        v.extend_from_slice(&self.signature);
        v
    }

    /// The text form (`cle1:` + base64url).
    pub fn to_text(&self) -> String {
        let mut s = String::from(PREFIX);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(self.to_bytes(), &mut s);
        s
    }

    /// Whether `text` looks like an envelope (the prefix), without parsing it.
    pub fn is_envelope_text(text: &str) -> bool {
        text.trim_start().starts_with(PREFIX)
    }

    /// Parses the text form. Surrounding whitespace is ignored.
    pub fn from_text(text: &str) -> Result<Envelope, Refusal> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(Refusal::Oversized);
        }
        let body = text.strip_prefix(PREFIX).ok_or(Refusal::Malformed)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body.as_bytes())
            .map_err(|_| Refusal::Malformed)?;
        Envelope::from_bytes(&bytes)
    }

    /// Parses the binary form: exact lengths, known version, kind and flags.
    pub fn from_bytes(b: &[u8]) -> Result<Envelope, Refusal> {
        if b.len() > MAX_BINARY {
            return Err(Refusal::Oversized);
        }
        let version = *b.first().ok_or(Refusal::Malformed)?;
        if version != 1 {
            return Err(Refusal::UnknownVersion);
        }
        if b.len() < HEADER_LEN + TAG_LEN + SIG_LEN {
            return Err(Refusal::Malformed);
        }
        let kind = Kind::from_byte(b[1]).ok_or(Refusal::UnknownKind)?;
        if b[3] != 0 {
            return Err(Refusal::UnknownKind);
        }
        let ct_len = u32::from_be_bytes(take::<4>(b, 124)?) as usize;
        if ct_len > MAX_CIPHERTEXT {
            return Err(Refusal::Oversized);
        }
        if ct_len < TAG_LEN || b.len() != HEADER_LEN + ct_len + SIG_LEN {
            return Err(Refusal::Malformed);
        }
        let header = Header {
            kind,
            hops: b[2],
            sender: PeerId(take(b, 4)?),
            sender_key: KeyId(take(b, 20)?),
            recipient: PeerId(take(b, 36)?),
            recipient_key: KeyId(take(b, 52)?),
            id: take(b, 68)?,
            ts_ms: u64::from_be_bytes(take(b, 84)?),
            epk: take(b, 92)?,
        };
        Ok(Envelope {
            header,
            ciphertext: b[HEADER_LEN..HEADER_LEN + ct_len].to_vec(),
            signature: take(b, HEADER_LEN + ct_len)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            header: Header {
                kind: Kind::Message,
                hops: 0,
                sender: PeerId([1; 16]),
                sender_key: KeyId([2; 16]),
                recipient: PeerId([3; 16]),
                recipient_key: KeyId([4; 16]),
                id: [5; 16],
                ts_ms: 1_700_000_000_000,
                epk: [6; 32],
            },
            ciphertext: vec![7; 40],
            signature: [8; 64],
        }
    }

    #[test]
    fn text_round_trip() {
        let e = sample();
        let t = e.to_text();
        assert!(Envelope::is_envelope_text(&t));
        assert_eq!(Envelope::from_text(&t), Ok(e));
    }

    #[test]
    fn truncated_oversized_and_unknown_version_are_refused() {
        let b = sample().to_bytes();
        for n in 0..b.len() {
            assert!(Envelope::from_bytes(&b[..n]).is_err(), "truncated at {n}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(Envelope::from_bytes(&longer), Err(Refusal::Malformed));
        let mut v2 = b.clone();
        v2[0] = 2;
        assert_eq!(Envelope::from_bytes(&v2), Err(Refusal::UnknownVersion));
        let mut big = b.clone();
        big[124..128].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Envelope::from_bytes(&big), Err(Refusal::Oversized));
        let huge = format!("{PREFIX}{}", "A".repeat(MAX_TEXT));
        assert_eq!(Envelope::from_text(&huge), Err(Refusal::Oversized));
        assert_eq!(Envelope::from_text("hello"), Err(Refusal::Malformed));
        assert_eq!(Envelope::from_text("cle1:!!"), Err(Refusal::Malformed));
    }
}
