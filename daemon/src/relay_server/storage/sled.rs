//! [`RelayBackend`] on the sled store of one relay process: the trait forwards to
//! [`RelayStore`], whose module doc describes the trees. Nothing here is shared with other
//! processes (sled locks its directory), so the relay's in-memory counts are authoritative.

use super::{RelayBackend, Result};
use crate::store::relay_server::{AccountRecord, Enqueued, QueuedMessage, RelayStore};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use std::collections::HashMap;

impl RelayBackend for RelayStore {
    fn kind(&self) -> &'static str {
        "sled"
    }

    fn accounts(&self) -> Result<Vec<(String, AccountRecord)>> {
        Ok(RelayStore::accounts(self)?)
    }

    fn account(&self, id: &str) -> Result<Option<AccountRecord>> {
        Ok(RelayStore::account(self, id)?)
    }

    fn create_account(&self, id: &str, record: &AccountRecord) -> Result<Option<AccountRecord>> {
        Ok(RelayStore::create_account(self, id, record)?)
    }

    fn put_account(&self, id: &str, record: &AccountRecord) -> Result<()> {
        Ok(RelayStore::put_account(self, id, record)?)
    }

    fn queued_counts(&self) -> Result<HashMap<String, usize>> {
        // The quota books count every queue (restored from disk at open).
        Ok(RelayStore::accounts(self)?
            .into_iter()
            .map(|(id, _)| {
                let n = self.quota().queued(&id);
                (id, n)
            })
            .filter(|(_, n)| *n > 0)
            .collect())
    }

    fn enqueue(&self, to: &str, msg: &QueuedMessage, key: Option<&str>) -> Result<Enqueued> {
        Ok(RelayStore::enqueue(self, to, msg, key)?)
    }

    fn sent(&self, from: &str, key: &str) -> Result<Option<(u64, u64)>> {
        Ok(RelayStore::sent(self, from, key)?)
    }

    fn prune_sent(&self, before_ms: u64) -> Result<usize> {
        Ok(RelayStore::prune_sent(self, before_ms)?)
    }

    fn high_water(&self) -> Result<u64> {
        Ok(RelayStore::high_water(self)?)
    }

    fn pending(&self, to: &str, after: Option<u64>, limit: usize) -> Result<Vec<QueuedMessage>> {
        Ok(RelayStore::pending(self, to, after, limit)?)
    }

    fn remove(&self, to: &str, seq: u64) -> Result<bool> {
        Ok(RelayStore::remove(self, to, seq)?)
    }

    fn durable(&self) -> BoxFuture<'_, Result<()>> {
        async move { Ok(RelayStore::durable(self).await?) }.boxed()
    }

    fn flush_now(&self) -> Result<()> {
        Ok(RelayStore::flush_now(self)?)
    }
}
