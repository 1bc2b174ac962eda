//! This machine's gateway device identity: one Ed25519 key, created once, kept in a 0600 file.
//!
//! A gateway admits a token-only connection from loopback, but from any other address it
//! wants a device identity too, and its owner approves each new device once
//! (`openclaw devices approve`). So the daemon always presents the same device: the key is
//! generated on first use and kept at a path the caller chooses (e.g. `DATA_DIR/device.key`).
//!
//! File format (JSON, mode 0600, created atomically so two processes agree on one key):
//! `{"version":1,"algorithm":"ed25519","deviceId":"<hex>","publicKey":"<b64url>","secretKey":"<b64url>"}`.
//!
//! Wire facts: `device.id` = lowercase hex sha256 of the raw 32-byte public key;
//! `device.publicKey` = base64url without padding of that raw key; `device.signature` =
//! base64url Ed25519 signature of the UTF-8 string
//! `v3|deviceId|client.id|client.mode|role|scope1,scope2|signedAtMs|token|nonce|platform|deviceFamily`
//! where `token` is the `auth.token` sent (else the device token, else empty) and platform and
//! device family are trimmed and lower-cased. The key never appears in logs or `Debug`.

use super::error::GatewayError;
use super::frame::DeviceProof;
use crate::util::hex;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The device key pair and its derived id.
pub struct DeviceIdentity {
    key: SigningKey,
    id: String,
    public_key: String,
}

/// What gets signed: every field the gateway re-derives to check the signature.
pub struct SignedFields<'a> {
    /// `client.id`.
    pub client_id: &'a str,
    /// `client.mode`.
    pub client_mode: &'a str,
    /// `role`.
    pub role: &'a str,
    /// `scopes`, in the order sent.
    pub scopes: &'a [String],
    /// `auth.token`, else `auth.deviceToken`, else empty.
    pub token: &'a str,
    /// The challenge nonce.
    pub nonce: &'a str,
    /// `client.platform`.
    pub platform: &'a str,
    /// `client.deviceFamily` (empty when not sent).
    pub device_family: &'a str,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyFile {
    version: u32,
    algorithm: String,
    device_id: String,
    public_key: String,
    secret_key: String,
}

impl DeviceIdentity {
    /// Loads the key at `path`, creating it (and its directory) on first use.
    pub fn load_or_create(path: &Path) -> Result<Self, GatewayError> {
        match std::fs::read(path) {
            Ok(bytes) => return Self::from_file(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(GatewayError::local(format!(
                    "cannot read the device key {}: {e}",
                    path.display()
                )))
            }
        }
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let me = Self::from_key(key);
        let file = KeyFile {
            version: 1,
            algorithm: "ed25519".into(),
            device_id: me.id.clone(),
            public_key: me.public_key.clone(),
            secret_key: URL_SAFE_NO_PAD.encode(me.key.to_bytes()),
        };
        let text =
            serde_json::to_vec_pretty(&file).map_err(|e| GatewayError::local(e.to_string()))?;
        match create_exclusive(path, &text) {
            Ok(true) => {
                tracing::info!(device_id = %me.id, path = %path.display(), "created the gateway device key");
                Ok(me)
            }
            // Another process created it first: use theirs, so everyone presents one device.
            Ok(false) => Self::load_or_create(path),
            Err(e) => Err(GatewayError::local(format!(
                "cannot write the device key {}: {e}",
                path.display()
            ))),
        }
    }

    fn from_file(path: &Path, bytes: &[u8]) -> Result<Self, GatewayError> {
        let bad = |why: String| {
            GatewayError::local(format!(
                "the device key {} is unusable ({why}); move it away to create a new device",
                path.display()
            ))
        };
        let file: KeyFile = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if file.algorithm != "ed25519" {
            return Err(bad(format!("algorithm {}", file.algorithm)));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(file.secret_key.as_bytes())
            .map_err(|e| bad(e.to_string()))?;
        let seed: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| bad("the key is not 32 bytes".into()))?;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the device key was readable by others; restricting it to 0600");
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
        }
        Ok(Self::from_key(SigningKey::from_bytes(&seed)))
    }

    fn from_key(key: SigningKey) -> Self {
        let raw = key.verifying_key().to_bytes();
        let id = hex(&Sha256::digest(raw));
        let public_key = URL_SAFE_NO_PAD.encode(raw);
        Self {
            key,
            id,
            public_key,
        }
    }

    /// The device id the gateway knows us by.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// base64url of the raw public key.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The exact v3 string the gateway verifies.
    pub fn payload(&self, f: &SignedFields<'_>, signed_at_ms: u64) -> String {
        [
            "v3",
            &self.id,
            f.client_id,
            f.client_mode,
            f.role,
            &f.scopes.join(","),
            &signed_at_ms.to_string(),
            f.token,
            f.nonce,
            &normalize(f.platform),
            &normalize(f.device_family),
        ]
        .join("|")
    }

    /// The `device` object of `connect`, signed now.
    pub fn prove(&self, f: &SignedFields<'_>, signed_at_ms: u64) -> DeviceProof {
        let sig = self.key.sign(self.payload(f, signed_at_ms).as_bytes());
        DeviceProof {
            id: self.id.clone(),
            public_key: self.public_key.clone(),
            signature: URL_SAFE_NO_PAD.encode(sig.to_bytes()),
            signed_at: signed_at_ms,
            nonce: f.nonce.to_string(),
        }
    }
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The gateway's normalization of signed metadata: trimmed, ASCII lower-case.
fn normalize(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// Writes `bytes` to `path` with mode 0600 unless it exists. `Ok(false)`: someone else's file is there.
pub(crate) fn create_exclusive(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let tmp = write_private_tmp(path, bytes)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Replaces `path` atomically with `bytes`, mode 0600.
pub(crate) fn replace_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = write_private_tmp(path, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn write_private_tmp(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn key_is_private_stable_and_signs_the_v3_string() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/device.key");
        let a = DeviceIdentity::load_or_create(&path)?;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        let b = DeviceIdentity::load_or_create(&path)?;
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 64);
        let secret = serde_json::from_slice::<KeyFile>(&std::fs::read(&path)?)?.secret_key;
        assert!(!format!("{a:?}").contains(&secret) && format!("{a:?}").contains(a.id()));

        let scopes = vec!["operator.admin".to_string(), "operator.read".to_string()];
        let f = SignedFields {
            client_id: "gateway-client",
            client_mode: "backend",
            role: "operator",
            scopes: &scopes,
            token: "tok",
            nonce: "n-1",
            platform: " Linux ",
            device_family: "",
        };
        let expect = format!("v3|{}|gateway-client|backend|operator|operator.admin,operator.read|1700|tok|n-1|linux|", a.id());
        assert_eq!(a.payload(&f, 1700), expect);
        let proof = a.prove(&f, 1700);
        let pk: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&proof.public_key)?
            .as_slice()
            .try_into()?;
        assert_eq!(hex(&Sha256::digest(pk)), proof.id);
        let sig: [u8; 64] = URL_SAFE_NO_PAD
            .decode(&proof.signature)?
            .as_slice()
            .try_into()?;
        VerifyingKey::from_bytes(&pk)?.verify(expect.as_bytes(), &Signature::from_bytes(&sig))?;
        Ok(())
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_identity() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("device.key");
        std::fs::write(&path, "garbage")?;
        let err = DeviceIdentity::load_or_create(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unusable"), "{err}");
        Ok(())
    }
}
