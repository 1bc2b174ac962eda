//! Device tokens the gateways issued to this device, kept in one small 0600 JSON file.
//!
//! After the owner of a remote gateway approves this device, the gateway's `hello-ok` carries
//! `auth.deviceToken`. With it the daemon can connect even when no shared token is configured
//! for that gateway: it then sends `auth:{deviceToken}` and signs with it. The file is keyed by
//! gateway URL, and each entry remembers which device it belongs to, so a new device key never
//! presents an old device's token.
//!
//! File format: `{"version":1,"tokens":{"ws://host:18789":{"deviceId":"<hex>","role":"operator",
//! "scopes":["operator.admin"],"token":"<secret>","issuedAtMs":1795426640431}}}`.

use super::device::replace_private;
use clawlink::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One issued device token (its `Debug` hides the token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredToken {
    /// The device it was issued to.
    pub device_id: String,
    /// The role it carries.
    pub role: String,
    /// The scopes it carries.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The token.
    pub token: Secret,
    /// When the gateway issued it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at_ms: Option<u64>,
}

#[derive(Default, Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    #[serde(default)]
    tokens: BTreeMap<String, StoredToken>,
}

/// The device-token file, cached in memory.
#[derive(Debug)]
pub struct DeviceTokens {
    path: PathBuf,
    tokens: Mutex<BTreeMap<String, StoredToken>>,
}

impl DeviceTokens {
    /// Reads `path` (a missing or unreadable file is an empty store; a warning says so).
    pub fn load(path: &Path) -> Self {
        let tokens = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<TokenFile>(&bytes) {
                Ok(f) => f.tokens,
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring the unreadable device token file: {e}");
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read the device token file: {e}");
                BTreeMap::new()
            }
        };
        Self {
            path: path.to_path_buf(),
            tokens: Mutex::new(tokens),
        }
    }

    /// The token `url` issued to `device_id`, if any.
    pub fn get(&self, url: &str, device_id: &str) -> Option<StoredToken> {
        let map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key(url))
            .filter(|t| t.device_id == device_id)
            .cloned()
    }

    /// Remembers a token (written through at once unless unchanged).
    pub fn put(&self, url: &str, entry: StoredToken) {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&key(url)) == Some(&entry) {
            return;
        }
        map.insert(key(url), entry);
        self.write(&map);
    }

    /// Forgets the token of `url` (the gateway revoked it).
    pub fn remove(&self, url: &str) {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if map.remove(&key(url)).is_some() {
            self.write(&map);
        }
    }

    fn write(&self, map: &BTreeMap<String, StoredToken>) {
        let file = TokenFile {
            version: 1,
            tokens: map.clone(),
        };
        let result = serde_json::to_vec_pretty(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| replace_private(&self.path, &bytes));
        if let Err(e) = result {
            tracing::warn!(path = %self.path.display(), "cannot save the device token file: {e}");
        }
    }
}

fn key(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn tokens_survive_a_reload_privately() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("device-tokens.json");
        let t = DeviceTokens::load(&path);
        let entry = StoredToken {
            device_id: "dev".into(),
            role: "operator".into(),
            scopes: vec!["operator.admin".into()],
            token: Secret::new("dt-secret-value"),
            issued_at_ms: Some(1),
        };
        t.put("ws://h:1/", entry.clone());
        assert!(!format!("{t:?}").contains("dt-secret-value"));
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        let again = DeviceTokens::load(&path);
        assert_eq!(again.get("ws://h:1", "dev"), Some(entry));
        assert_eq!(again.get("ws://h:1", "other-device"), None);
        again.remove("ws://h:1");
        assert_eq!(DeviceTokens::load(&path).get("ws://h:1", "dev"), None);
        Ok(())
    }
}
