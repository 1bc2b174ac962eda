//! Small settings: the `kv` tree, key → JSON value (e.g. the default relay URL).

use super::{decode, encode, Db, Result};
use serde::{de::DeserializeOwned, Serialize};

/// Handle to the settings tree.
#[derive(Clone)]
pub struct Kv {
    tree: sled::Tree,
}

impl Kv {
    /// Opens the tree.
    pub fn open(db: &Db) -> Result<Kv> {
        Ok(Kv {
            tree: db.tree("kv")?,
        })
    }

    /// Reads a value.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.tree
            .get(key.as_bytes())?
            .map(|v| decode("kv", &v))
            .transpose()
    }

    /// Writes a value (durable after the next [`Db::durable`]).
    pub fn set<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.tree.insert(key.as_bytes(), encode(value)?)?;
        Ok(())
    }

    /// Removes a value.
    pub fn remove(&self, key: &str) -> Result<()> {
        self.tree.remove(key.as_bytes())?;
        Ok(())
    }

    /// All values whose key starts with `prefix`, as (key, value).
    pub fn scan<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>> {
        self.tree
            .scan_prefix(prefix.as_bytes())
            .map(|r| {
                let (k, v) = r?;
                Ok((String::from_utf8_lossy(&k).into_owned(), decode("kv", &v)?))
            })
            .collect()
    }
}
