//! What an `ack=1` WebSocket may remove from its account's queue, and removing it in bulk.
//!
//! Why: with a shared store every removal is a replicated write (an R3 proposal in
//! JetStream), and a recipient that acks each push would cost the cluster one such write per
//! message. A recipient acks in push order almost always, so the acked messages are a prefix
//! of the queue, and one request can remove the whole prefix: a subject purge up to a
//! sequence ([`super::storage::RelayBackend::remove_below`]). Only an ack that leaves an
//! older pushed message unacked is removed on its own.
//!
//! Why it is safe: a socket reads its queue in sequence order, from where the previous bulk
//! removal ended, and pushes every message it reads ([`Acks::pushed`]). Sequence numbers only
//! grow, so no message can appear later below one already read; and a replica that lags
//! holds a prefix of the stream, so a read can stop early but never skip one in the middle.
//! Hence every queued message below the oldest pushed-but-unacked one (or, with none, below
//! the last pushed one + 1) was pushed on this socket and acked. That bound is
//! [`Removal::below`]; nothing at or above it is removed except the messages named in
//! [`Removal::each`], which the recipient acked by id.
//!
//! The removals of a shared store run in one task per socket ([`spawn_remover`]), beside the
//! socket's loop: acks that arrive while a purge is in flight are merged into the next one,
//! so at a high rate the cluster sees a few purges per round trip, not one write per ack. If
//! the relay dies first, the messages are pushed again on the next connection (at least
//! once, as always).

use super::state::{Account, Relay};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The pushes and acks of one `ack=1` socket.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    /// Pushed, not acked yet.
    inflight: BTreeSet<u64>,
    /// The last message pushed; the next read starts after it.
    cursor: Option<u64>,
    /// Every message below it has been acked and its removal asked for.
    removed_below: u64,
}

/// What to delete after some acks.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Removal {
    /// Every message below this sequence (all acked).
    pub below: Option<u64>,
    /// These messages, one by one (acked out of order, or not pushed on this socket).
    pub each: Vec<u64>,
}

impl Removal {
    fn is_empty(&self) -> bool {
        self.below.is_none() && self.each.is_empty()
    }

    fn merge(&mut self, other: Removal) {
        self.below = self.below.max(other.below);
        self.each.extend(other.each);
    }
}

impl Acks {
    /// Pushed but not acked.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Where the next read starts (after this sequence).
    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    /// Records a batch pushed on the socket: every message the read returned, in order.
    pub fn pushed(&mut self, seqs: impl IntoIterator<Item = u64>) {
        for seq in seqs {
            if self.cursor.is_none() {
                // The socket's first read found nothing queued below this one.
                self.removed_below = self.removed_below.max(seq);
            }
            self.inflight.insert(seq);
            self.cursor = Some(self.cursor.map_or(seq, |c| c.max(seq)));
        }
    }

    /// Records acks of `seqs`; returns what may now be deleted.
    pub fn ack(&mut self, seqs: impl IntoIterator<Item = u64>) -> Removal {
        let mut each = Vec::new();
        for seq in seqs {
            if seq < self.removed_below {
                continue;
            }
            // Acked in order or not, or never pushed here (an earlier socket's, or an id the
            // store will find is not this account's): deleted by id unless the bulk bound
            // below covers it.
            self.inflight.remove(&seq);
            each.push(seq);
        }
        let contiguous = match self.inflight.first() {
            Some(&oldest) => oldest,
            None => self.cursor.map_or(0, |c| c.saturating_add(1)),
        };
        let below = (contiguous > self.removed_below).then(|| {
            self.removed_below = contiguous;
            contiguous
        });
        each.retain(|s| *s >= self.removed_below);
        each.sort_unstable();
        each.dedup();
        Removal { below, each }
    }
}

/// Applies removals for `account` in order.
async fn apply(relay: &Relay, account: &Account, r: Removal) {
    let below = r.below.unwrap_or(0);
    if below > 0 {
        if let Err(e) = relay.remove_below(account, below).await {
            tracing::warn!(error = %e, "acked messages not removed; they will be pushed again");
        }
    }
    for seq in r.each.into_iter().filter(|s| *s >= below) {
        let _ = relay.remove(account, seq).await;
    }
}

/// Where a socket sends its removals: done in place for a local store, by a task that merges
/// them for a shared one.
pub(crate) enum Remover {
    Inline,
    Task(mpsc::UnboundedSender<Removal>),
}

/// The remover of one socket of `account`. The task ends once the socket's sender is dropped
/// and every removal sent before is done.
pub(crate) fn spawn_remover(relay: &Arc<Relay>, account: &Arc<Account>) -> Remover {
    if !relay.store.shared() {
        return Remover::Inline;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Removal>();
    let (relay, account) = (Arc::clone(relay), Arc::clone(account));
    tokio::spawn(async move {
        while let Some(mut r) = rx.recv().await {
            while let Ok(more) = rx.try_recv() {
                r.merge(more);
            }
            apply(&relay, &account, r).await;
        }
    });
    Remover::Task(tx)
}

impl Remover {
    /// Deletes (or queues the deletion of) `r`.
    pub async fn remove(&self, relay: &Relay, account: &Account, r: Removal) {
        if r.is_empty() {
            return;
        }
        match self {
            Remover::Inline => apply(relay, account, r).await,
            Remover::Task(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_acks_remove_a_prefix_at_once() {
        let mut a = Acks::default();
        a.pushed([3, 5, 8]);
        assert_eq!(
            a.ack([3]),
            Removal {
                below: Some(5),
                each: vec![]
            }
        );
        assert_eq!(
            a.ack([5, 8]),
            Removal {
                below: Some(9),
                each: vec![]
            }
        );
        assert_eq!(a.inflight(), 0);
        // Acked again: already covered.
        assert_eq!(a.ack([8]), Removal::default());
    }

    #[test]
    fn out_of_order_acks_never_remove_an_unacked_message() {
        let mut a = Acks::default();
        a.pushed([10, 11, 12, 13]);
        // 12 acked first: 10 and 11 are unacked, so only 12 goes, by id.
        assert_eq!(
            a.ack([12]),
            Removal {
                below: None,
                each: vec![12]
            }
        );
        // 11 acked: 10 still holds the bound back.
        assert_eq!(
            a.ack([11]),
            Removal {
                below: None,
                each: vec![11]
            }
        );
        // 10 acked: everything below 13 goes at once; 13 is unacked and stays.
        assert_eq!(
            a.ack([10]),
            Removal {
                below: Some(13),
                each: vec![]
            }
        );
        a.pushed([20]);
        assert_eq!(
            a.ack([20]),
            Removal {
                below: None,
                each: vec![20]
            }
        );
        // Still 13 unacked: the bound never passed it.
        assert_eq!(a.inflight(), 1);
    }

    #[test]
    fn ids_not_pushed_here_are_removed_one_by_one() {
        let mut a = Acks::default();
        assert_eq!(
            a.ack([7]),
            Removal {
                below: None,
                each: vec![7]
            }
        );
        a.pushed([9]);
        assert_eq!(
            a.ack([4, 9]),
            Removal {
                below: Some(10),
                each: vec![]
            }
        );
        assert_eq!(a.cursor(), Some(9));
    }
}
