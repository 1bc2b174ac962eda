//! Relay identities of the agent daemon: `relay_client` tree.
//!
//! Why stored: the daemon stays connected to every registered identity across restarts, so
//! identities live here, not in memory. Keys:
//! - `default` → JSON string, the relay URL used when a command gives no `--relay`;
//! - `id/RELAY\0ID` → JSON [`Identity`] (the secret as a [`Secret`], never logged).
//!
//! Writes are made durable (group commit) before the caller answers.

use super::{decode, encode, Db, Result};
use clawlink::Secret;
use serde::{Deserialize, Serialize};

/// One registered id on one relay.
#[derive(Clone, Serialize, Deserialize)]
pub struct Identity {
    /// Relay base URL (`http://HOST:PORT`, no trailing slash).
    pub relay: String,
    /// Our id on it.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The relay secret.
    pub secret: Secret,
    /// When saved (ms since epoch).
    #[serde(default)]
    pub saved_ms: u64,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("relay", &self.relay)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Handle to the relay client tree. Cheap to clone.
#[derive(Clone)]
pub struct RelayClientStore {
    db: Db,
    tree: sled::Tree,
}

fn key(relay: &str, id: &str) -> Vec<u8> {
    format!("id/{relay}\0{id}").into_bytes()
}

impl RelayClientStore {
    /// Opens the tree.
    pub fn open(db: &Db) -> Result<RelayClientStore> {
        Ok(RelayClientStore {
            db: db.clone(),
            tree: db.tree("relay_client")?,
        })
    }

    /// The saved default relay URL, if any.
    pub fn default_relay(&self) -> Result<Option<String>> {
        self.tree
            .get(b"default")?
            .map(|v| decode("relay_client", &v))
            .transpose()
    }

    /// Saves the default relay URL durably.
    pub async fn set_default_relay(&self, relay: &str) -> Result<()> {
        self.tree.insert(b"default", encode(&relay)?)?;
        self.db.durable().await
    }

    /// Saves (or replaces) an identity durably.
    pub async fn save(&self, identity: &Identity) -> Result<()> {
        self.tree
            .insert(key(&identity.relay, &identity.id), encode(identity)?)?;
        self.db.durable().await
    }

    /// Every identity, ordered by relay then id.
    pub fn all(&self) -> Result<Vec<Identity>> {
        self.tree
            .scan_prefix(b"id/")
            .map(|r| {
                let (_, v) = r?;
                decode("relay_client", &v)
            })
            .collect()
    }

    /// The identities registered on `relay`, most recently saved first.
    pub fn on_relay(&self, relay: &str) -> Result<Vec<Identity>> {
        let mut v: Vec<Identity> = self
            .tree
            .scan_prefix(format!("id/{relay}\0").as_bytes())
            .map(|r| {
                let (_, v) = r?;
                decode("relay_client", &v)
            })
            .collect::<Result<_>>()?;
        v.sort_by_key(|i| std::cmp::Reverse(i.saved_ms));
        Ok(v)
    }
}
