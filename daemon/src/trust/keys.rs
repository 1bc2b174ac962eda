//! This daemon's identity: an Ed25519 signing key and an X25519 sealing key, with an epoch.
//!
//! - **Peer id** (16 bytes, shown as 32 hex digits): `SHA-256("clawlink-id-v1" || sign₀)[..16]`
//!   where `sign₀` is the Ed25519 public key of epoch 0. It names the identity and stays the
//!   same across rotations; trust is in the pinned keys, never in the id alone.
//! - **Key id** (16 bytes): `SHA-256("clawlink-key-id-v1" || sign || seal)[..16]` of the current
//!   public keys. Every envelope names the sender's and the recipient's key ids.
//! - **Epoch**: 0 at creation, +1 on each `clawlink id rotate`.
//!
//! The keys live in `DATA_DIR/identity.key`, separate from the gateway device key, mode 0600,
//! written atomically (temp file + rename) as JSON:
//! `{"version":1,"id":HEX,"epoch":N,"sign":B64,"seal":B64,"previous":[{"epoch":N,"sign":B64,"seal":B64}]}`
//! with the 32-byte secrets in base64url. `previous` keeps the last retired key pair so that
//! envelopes sealed to it while a rotation propagates can still be opened. Secret bytes are
//! zeroized when dropped and never shown by `Debug`.

use super::{b64, hex, unb64};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

/// A peer id: 16 bytes derived from the epoch-0 signing key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 16]);

/// A key id: 16 bytes derived from one epoch's public keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

macro_rules! hex_display {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($t), hex(&self.0))
            }
        }
    };
}
hex_display!(PeerId);
hex_display!(KeyId);

impl PeerId {
    /// The id of the identity whose epoch-0 signing key is `sign0`.
    pub fn derive(sign0: &[u8; 32]) -> PeerId {
        let d = Sha256::new()
            .chain_update(b"clawlink-id-v1")
            .chain_update(sign0)
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&d[..16]);
        PeerId(id)
    }
}

/// One epoch's public keys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKeys {
    /// Ed25519 verifying key.
    pub sign: [u8; 32],
    /// X25519 public key.
    pub seal: [u8; 32],
}

impl PublicKeys {
    /// The key id of these keys.
    pub fn key_id(&self) -> KeyId {
        let d = Sha256::new()
            .chain_update(b"clawlink-key-id-v1")
            .chain_update(self.sign)
            .chain_update(self.seal)
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&d[..16]);
        KeyId(id)
    }

    /// The Ed25519 verifying key, if the bytes are a valid point.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.sign).ok()
    }
}

/// One epoch's key pair.
pub struct KeyPair {
    /// The epoch.
    pub epoch: u32,
    /// Signing key (zeroized on drop by ed25519-dalek).
    pub sign: SigningKey,
    /// Sealing key (zeroized on drop by x25519-dalek).
    pub seal: StaticSecret,
    /// The public half, computed once: the X25519 public key is a scalar multiplication
    /// (about 17 µs here), and every seal and open needs it.
    public: PublicKeys,
}

impl KeyPair {
    /// The pair of these secret keys.
    pub fn new(epoch: u32, sign: SigningKey, seal: StaticSecret) -> KeyPair {
        let public = PublicKeys {
            sign: sign.verifying_key().to_bytes(),
            seal: x25519_dalek::PublicKey::from(&seal).to_bytes(),
        };
        KeyPair {
            epoch,
            sign,
            seal,
            public,
        }
    }

    /// A fresh random key pair.
    pub fn generate(epoch: u32) -> KeyPair {
        KeyPair::new(
            epoch,
            SigningKey::generate(&mut rand::rngs::OsRng),
            StaticSecret::random_from_rng(rand::rngs::OsRng),
        )
    }

    /// The public half.
    pub fn public(&self) -> PublicKeys {
        self.public
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyPair(epoch {}, {})",
            self.epoch,
            self.public().key_id()
        )
    }
}

/// This daemon's identity: its id, current keys and the previous epoch's keys.
pub struct Identity {
    /// The stable peer id.
    pub id: PeerId,
    /// The current keys.
    pub current: KeyPair,
    /// The keys of the previous epoch, kept to open envelopes sealed before a rotation.
    pub previous: Option<KeyPair>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.id)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

/// Errors loading or saving the identity file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// I/O on the file.
    #[error("identity key {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The file exists but cannot be used.
    #[error("identity key {path} is unusable ({why}); restore it from a backup, or move it away to create a new identity (friends will then see a key change)")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

#[derive(Serialize, Deserialize)]
struct PairFile {
    epoch: u32,
    sign: Zeroizing<String>,
    seal: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    id: String,
    epoch: u32,
    sign: Zeroizing<String>,
    seal: Zeroizing<String>,
    #[serde(default)]
    previous: Vec<PairFile>,
}

fn pair_file(p: &KeyPair) -> PairFile {
    PairFile {
        epoch: p.epoch,
        sign: Zeroizing::new(b64(&p.sign.to_bytes())),
        seal: Zeroizing::new(b64(p.seal.as_bytes())),
    }
}

fn pair_from(epoch: u32, sign: &str, seal: &str) -> Option<KeyPair> {
    let s = Zeroizing::new(unb64::<32>(sign)?);
    let x = Zeroizing::new(unb64::<32>(seal)?);
    Some(KeyPair::new(
        epoch,
        SigningKey::from_bytes(&s),
        StaticSecret::from(*x),
    ))
}

impl Identity {
    /// A new identity at epoch 0.
    pub fn generate() -> Identity {
        let current = KeyPair::generate(0);
        Identity {
            id: PeerId::derive(&current.public().sign),
            current,
            previous: None,
        }
    }

    /// The same id with fresh keys at the next epoch; the current keys become `previous`.
    pub fn rotated(self) -> Identity {
        let next = KeyPair::generate(self.current.epoch.saturating_add(1));
        Identity {
            id: self.id,
            previous: Some(self.current),
            current: next,
        }
    }

    /// The key pair whose key id is `key_id` (current or previous).
    pub fn pair_for(&self, key_id: &KeyId) -> Option<&KeyPair> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|p| p.public().key_id() == *key_id)
    }

    /// Loads `path`, creating a new identity there on first use.
    pub fn load_or_create(path: &Path) -> Result<Identity, KeyFileError> {
        match std::fs::read(path) {
            Ok(bytes) => return Self::from_file(path, &Zeroizing::new(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(KeyFileError::Io {
                    path: path.into(),
                    error,
                })
            }
        }
        let me = Identity::generate();
        me.save(path)?;
        tracing::info!(id = %me.id, path = %path.display(), "created the clawlink identity");
        Ok(me)
    }

    fn from_file(path: &Path, bytes: &[u8]) -> Result<Identity, KeyFileError> {
        let bad = |why: &str| KeyFileError::Unusable {
            path: path.into(),
            why: why.into(),
        };
        let f: KeyFile = serde_json::from_slice(bytes).map_err(|_| bad("not valid JSON"))?;
        if f.version != 1 {
            return Err(bad("unknown version"));
        }
        let current = pair_from(f.epoch, &f.sign, &f.seal).ok_or_else(|| bad("bad key bytes"))?;
        let previous = match f.previous.first() {
            Some(p) => {
                Some(pair_from(p.epoch, &p.sign, &p.seal).ok_or_else(|| bad("bad key bytes"))?)
            }
            None => None,
        };
        let id = super::unhex::<16>(&f.id)
            .map(PeerId)
            .ok_or_else(|| bad("bad id"))?;
        if f.epoch == 0 && id != PeerId::derive(&current.public().sign) {
            return Err(bad("the id does not match the epoch-0 key"));
        }
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the identity key was readable by others; restricting it to 0600");
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
        }
        Ok(Identity {
            id,
            current,
            previous,
        })
    }

    /// Writes the identity to `path` atomically (0600 temp file, fsync, rename, fsync dir).
    pub fn save(&self, path: &Path) -> Result<(), KeyFileError> {
        let io = |error| KeyFileError::Io {
            path: path.into(),
            error,
        };
        let file = KeyFile {
            version: 1,
            id: hex(&self.id.0),
            epoch: self.current.epoch,
            sign: Zeroizing::new(b64(&self.current.sign.to_bytes())),
            seal: Zeroizing::new(b64(self.current.seal.as_bytes())),
            previous: self.previous.iter().map(pair_file).collect(),
        };
        let text = Zeroizing::new(
            serde_json::to_vec_pretty(&file).map_err(|e| io(std::io::Error::other(e)))?,
        );
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&text).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_a_restart_and_rotation_keeps_the_id() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("identity.key");
        let a = Identity::load_or_create(&path)?;
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = Identity::load_or_create(&path)?;
        assert_eq!(a.id, b.id);
        assert_eq!(a.current.public(), b.current.public());
        let old = b.current.public().key_id();
        let r = b.rotated();
        r.save(&path)?;
        let c = Identity::load_or_create(&path)?;
        assert_eq!(c.id, a.id);
        assert_eq!(c.current.epoch, 1);
        assert_ne!(c.current.public().key_id(), old);
        assert!(c.pair_for(&old).is_some());
        let text = std::fs::read_to_string(&path)?;
        assert!(!format!("{c:?}").contains(&text[..20]));
        Ok(())
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_new_identity() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("identity.key");
        std::fs::write(&path, b"{not json")?;
        let e = Identity::load_or_create(&path).err().map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("unusable"));
        Ok(())
    }
}
