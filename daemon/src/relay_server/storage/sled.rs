//! [`RelayBackend`] on the sled store of one relay process: the trait forwards to
//! [`RelayStore`], whose module doc describes the trees. Nothing here is shared with other
//! processes (sled locks its directory), so the relay's in-memory counts are authoritative.
//! Sled's calls are local and short, so each answer is a future that is ready at once.

use super::{ready, RelayBackend, Result};
use crate::store::relay_server::{AccountRecord, Enqueued, QueuedMessage, RelayStore};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use std::collections::HashMap;

impl RelayStore {
    /// Deletes every message of `to` below `below`: the head of its queue, message by message
    /// (each one gives its room back to the quota).
    fn remove_head(&self, to: &str, below: u64) -> Result<u64> {
        let mut removed = 0;
        loop {
            let head = RelayStore::pending(self, to, None, 256)?;
            let mut more = head.len() == 256;
            for m in &head {
                if m.seq >= below {
                    more = false;
                    break;
                }
                removed += u64::from(RelayStore::remove(self, to, m.seq)?);
            }
            if !more {
                return Ok(removed);
            }
        }
    }
}

impl RelayBackend for RelayStore {
    fn kind(&self) -> &'static str {
        "sled"
    }

    fn accounts(&self) -> BoxFuture<'_, Result<Vec<(String, AccountRecord)>>> {
        ready(RelayStore::accounts(self).map_err(Into::into))
    }

    fn account<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<AccountRecord>>> {
        ready(RelayStore::account(self, id).map_err(Into::into))
    }

    fn create_account<'a>(
        &'a self,
        id: &'a str,
        record: &'a AccountRecord,
    ) -> BoxFuture<'a, Result<Option<AccountRecord>>> {
        ready(RelayStore::create_account(self, id, record).map_err(Into::into))
    }

    fn put_account<'a>(
        &'a self,
        id: &'a str,
        record: &'a AccountRecord,
    ) -> BoxFuture<'a, Result<()>> {
        ready(RelayStore::put_account(self, id, record).map_err(Into::into))
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

    fn enqueue<'a>(
        &'a self,
        to: &'a str,
        msg: &'a QueuedMessage,
        key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Enqueued>> {
        ready(RelayStore::enqueue(self, to, msg, key).map_err(Into::into))
    }

    fn sent<'a>(
        &'a self,
        from: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(u64, u64)>>> {
        ready(RelayStore::sent(self, from, key).map_err(Into::into))
    }

    fn prune_sent(&self, before_ms: u64) -> Result<usize> {
        Ok(RelayStore::prune_sent(self, before_ms)?)
    }

    fn high_water(&self) -> BoxFuture<'_, Result<u64>> {
        ready(RelayStore::high_water(self).map_err(Into::into))
    }

    fn pending<'a>(
        &'a self,
        to: &'a str,
        after: Option<u64>,
        limit: usize,
        _known: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<QueuedMessage>>> {
        // One process, one copy: every read is current.
        ready(RelayStore::pending(self, to, after, limit).map_err(Into::into))
    }

    fn remove<'a>(&'a self, to: &'a str, seq: u64) -> BoxFuture<'a, Result<bool>> {
        ready(RelayStore::remove(self, to, seq).map_err(Into::into))
    }

    fn remove_below<'a>(&'a self, to: &'a str, below: u64) -> BoxFuture<'a, Result<u64>> {
        ready(self.remove_head(to, below))
    }

    fn durable(&self) -> BoxFuture<'_, Result<()>> {
        async move { Ok(RelayStore::durable(self).await?) }.boxed()
    }

    fn flush_now(&self) -> Result<()> {
        Ok(RelayStore::flush_now(self)?)
    }
}
