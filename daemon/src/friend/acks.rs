//! Receipts batched per friend: one signed receipt envelope answers a burst of messages.
//!
//! Every sealed message that comes in over a relay or a Nexus session is answered with a
//! signed `stored` receipt once it is durable in the inbox (and later `delivered` or
//! `rejected`). Sealed one by one, a receipt costs what a message costs: a signature, an
//! ephemeral X25519 key, an outbox record (an fsync), a relay write (another fsync) and an open
//! at the sender. So the answers are not sealed where the message is opened: an [`Ack`] (friend,
//! message id, status, reason) goes to the one task [`run`], which coalesces them per
//! friend, status and reason, and seals one batched receipt
//! ([`ReceiptBody`](crate::trust::payload::ReceiptBody) with `ids`) for each group once
//!
//! - [`WINDOW`] has passed since the group's first ack was made (a burst arriving within it
//!   shares one receipt), or
//! - the group holds [`MAX_RECEIPT_IDS`] ids (the wire cap; about 9 KiB of JSON, far below the
//!   envelope cap).
//!
//! Only a friend whose hello named `receipt-ids` gets batched receipts: builds from before
//! them refuse a receipt with `ids`, and never send a hello. Every other friend gets one
//! receipt per id of the group, as before
//! ([`Trust::answer_batch`](crate::trust::Trust::answer_batch)).
//!
//! The task hands the receipts to the outbox one after the other (each is stored durably
//! there), so while one is being written the next burst gathers: under load the window is
//! rather the time of an outbox write, and a receipt answers everything that came meanwhile.
//! A lone message waits at most [`WINDOW`] longer for its receipt than before.
//!
//! Nothing is lost across a crash: an ack lives only in memory, but the message it answers is
//! already durable, and the sender keeps sending the same envelope until a receipt names it
//! ([`super::transport::RESEND_AFTER`], and the outbox's own retries before it was taken).
//! The copy is a duplicate here, which is answered with an ack again. At shutdown the task
//! seals and queues what it holds, within [`SHUTDOWN_FLUSH`].
//!
//! Receipts that are answers in the same exchange stay single and immediate: the direct
//! `POST /envelope` answer, `clawlink friend open`, a `rejected` receipt for an envelope that
//! does not decrypt, and the receipt of an invite accept.

use super::Friends;
use crate::transport::Outbound;
use crate::trust::payload::{ReceiptStatus, MAX_RECEIPT_IDS};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long the first ack of a group waits for others before its receipt is sealed.
pub const WINDOW: Duration = Duration::from_millis(10);
/// Most replies taken from the queue before the due groups are looked at again.
const DRAIN_BUDGET: usize = 4 * MAX_RECEIPT_IDS;
/// How long the task may take at shutdown to queue the receipts it still holds.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

/// One message of a friend to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The friend's name.
    pub friend: String,
    /// The message (envelope) id.
    pub id: [u8; 16],
    /// What became of it.
    pub status: ReceiptStatus,
    /// A refusal code, for `rejected`.
    pub reason: Option<String>,
    /// When the ack was made.
    pub at: Instant,
}

impl Ack {
    /// An ack made now.
    pub fn new(friend: &str, id: [u8; 16], status: ReceiptStatus, reason: Option<&str>) -> Ack {
        Ack {
            friend: friend.to_string(),
            id,
            status,
            reason: reason.map(str::to_string),
            at: Instant::now(),
        }
    }
}

/// What one receipt groups by: a receipt has one friend, one status and one reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    friend: String,
    status: ReceiptStatus,
    reason: Option<String>,
}

/// The ids one receipt will answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The friend's name.
    pub friend: String,
    /// The status of every id.
    pub status: ReceiptStatus,
    /// The reason, for `rejected`.
    pub reason: Option<String>,
    /// Distinct message ids, in the order they were acked; 1 to the cap.
    pub ids: Vec<[u8; 16]>,
}

struct Group {
    ids: Vec<[u8; 16]>,
    first: Instant,
}

/// The groups waiting for their receipt. No I/O, no clock of its own: [`run`] drives it.
pub struct Batcher {
    window: Duration,
    cap: usize,
    groups: HashMap<Key, Group>,
}

impl Batcher {
    /// Groups become due `window` after their first ack, or at once at `cap` ids (at least 1,
    /// at most [`MAX_RECEIPT_IDS`]).
    pub fn new(window: Duration, cap: usize) -> Batcher {
        Batcher {
            window,
            cap: cap.clamp(1, MAX_RECEIPT_IDS),
            groups: HashMap::new(),
        }
    }

    /// Adds `ack` to its group; returns the group once it is full. An id already waiting in
    /// its group is not added twice (two copies of one envelope over two paths).
    pub fn push(&mut self, ack: Ack) -> Option<Batch> {
        let key = Key {
            friend: ack.friend,
            status: ack.status,
            reason: ack.reason,
        };
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            ids: Vec::new(),
            first: ack.at,
        });
        if group.ids.contains(&ack.id) {
            return None;
        }
        group.ids.push(ack.id);
        group.first = group.first.min(ack.at);
        if group.ids.len() < self.cap {
            return None;
        }
        let group = self.groups.remove(&key)?;
        Some(batch(key, group))
    }

    /// Takes every group whose window has passed at `now`, oldest first.
    pub fn due(&mut self, now: Instant) -> Vec<Batch> {
        let window = self.window;
        let keys: Vec<Key> = self
            .groups
            .iter()
            .filter(|(_, g)| g.first + window <= now)
            .map(|(k, _)| k.clone())
            .collect();
        self.take(keys)
    }

    /// Takes every group, oldest first.
    pub fn drain(&mut self) -> Vec<Batch> {
        let keys: Vec<Key> = self.groups.keys().cloned().collect();
        self.take(keys)
    }

    fn take(&mut self, keys: Vec<Key>) -> Vec<Batch> {
        let mut out: Vec<(Instant, Batch)> = keys
            .into_iter()
            .filter_map(|k| {
                let g = self.groups.remove(&k)?;
                Some((g.first, batch(k, g)))
            })
            .collect();
        out.sort_by_key(|(first, _)| *first);
        out.into_iter().map(|(_, b)| b).collect()
    }

    /// When the next group becomes due, if any waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.groups.values().map(|g| g.first + self.window).min()
    }

    /// Whether no ack waits.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

fn batch(key: Key, group: Group) -> Batch {
    Batch {
        friend: key.friend,
        status: key.status,
        reason: key.reason,
        ids: group.ids,
    }
}

/// What the replies task is handed.
pub enum Reply {
    /// A message to answer, batched with others.
    Ack(Ack),
    /// An envelope already sealed (a `rejected` receipt, an invite accept's receipt), queued
    /// as it is, with its outbox kind.
    Sealed(crate::trust::engine::Outgoing, &'static str),
}

/// Moves replies into the outbox until `shutdown`: sealed ones at once, acks batched into
/// receipts as the module docs say. At shutdown what is held is queued within
/// [`SHUTDOWN_FLUSH`]; an ack lost anyway (a crash) is made again when the sender sends the
/// envelope again.
pub async fn run(
    friends: Arc<Friends>,
    mut replies: mpsc::UnboundedReceiver<Reply>,
    outbound: Outbound,
    ttl_secs: u64,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut batcher = Batcher::new(WINDOW, MAX_RECEIPT_IDS);
    let q = Queue {
        friends: &friends,
        outbound: &outbound,
        ttl_secs,
    };
    loop {
        let due = batcher.next_due();
        let first = tokio::select! {
            r = replies.recv() => match r {
                Some(r) => Some(r),
                None => break,
            },
            _ = sleep_until(due), if due.is_some() => None,
            _ = shutdown.cancelled() => break,
        };
        // What is already waiting joins its group before any group is judged due (bounded,
        // so that a steady stream cannot hold back the groups that are due).
        let mut next = first;
        let mut budget = DRAIN_BUDGET;
        while let Some(r) = next.take().or_else(|| {
            budget = budget.checked_sub(1)?;
            replies.try_recv().ok()
        }) {
            q.take(&mut batcher, r).await;
        }
        for b in batcher.due(Instant::now()) {
            q.receipt(b).await;
        }
    }
    // Stopping: what was handed over already is answered now rather than after a resend.
    replies.close();
    let flush = async {
        while let Ok(r) = replies.try_recv() {
            q.take(&mut batcher, r).await;
        }
        for b in batcher.drain() {
            q.receipt(b).await;
        }
    };
    if tokio::time::timeout(SHUTDOWN_FLUSH, flush).await.is_err() {
        tracing::info!("receipts not queued at shutdown: the senders will send again");
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
}

struct Queue<'a> {
    friends: &'a Friends,
    outbound: &'a Outbound,
    ttl_secs: u64,
}

impl Queue<'_> {
    /// Queues a sealed reply at once; adds an ack to its group, sealing the group if full.
    async fn take(&self, batcher: &mut Batcher, reply: Reply) {
        match reply {
            Reply::Ack(a) => {
                if let Some(b) = batcher.push(a) {
                    self.receipt(b).await;
                }
            }
            Reply::Sealed(o, kind) => {
                self.sealed(&o, kind).await;
            }
        }
    }

    /// Seals `b` into one receipt (or, for a friend whose build has not said it reads
    /// batched receipts, one per id) and queues it.
    async fn receipt(&self, b: Batch) {
        let ids: Vec<String> = b.ids.iter().map(|id| crate::trust::hex(id)).collect();
        match self
            .friends
            .trust
            .answer_batch(&b.friend, &ids, b.status, b.reason.as_deref())
        {
            Ok(receipts) => {
                for (o, n) in receipts {
                    if self.sealed(&o, "receipt").await {
                        self.friends
                            .receipt_ids
                            .fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            }
            // A friend removed since: nobody to tell.
            Err(e) => tracing::debug!(error = %e, "no receipt sent"),
        }
    }

    /// Queues `out` in the outbox; whether it is there.
    async fn sealed(&self, out: &crate::trust::engine::Outgoing, kind: &'static str) -> bool {
        let queued = match super::transport::record(self.outbound.store(), out, kind, self.ttl_secs)
        {
            Ok(record) => self.outbound.enqueue(record).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match queued {
            Ok(()) => {
                if kind == "receipt" {
                    self.friends.receipts_queued.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, friend = %out.friend, "a receipt could not be queued");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(friend: &str, n: u8, status: ReceiptStatus, at: Instant) -> Ack {
        Ack {
            friend: friend.into(),
            id: [n; 16],
            status,
            reason: None,
            at,
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_within_the_window_is_one_receipt() {
        let t0 = Instant::now();
        let mut b = Batcher::new(10 * MS, 256);
        for n in 0..50 {
            assert!(b
                .push(ack(
                    "bob",
                    n,
                    ReceiptStatus::Stored,
                    t0 + MS * u32::from(n) / 10
                ))
                .is_none());
        }
        assert_eq!(b.next_due(), Some(t0 + 10 * MS));
        assert!(b.due(t0 + 9 * MS).is_empty(), "not due before the window");
        let due = b.due(t0 + 10 * MS);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].ids, (0..50).map(|n| [n; 16]).collect::<Vec<_>>());
        assert_eq!(due[0].friend, "bob");
        assert!(b.is_empty() && b.next_due().is_none());
    }

    #[test]
    fn a_full_group_is_due_at_once_and_the_next_starts_afresh() {
        let t0 = Instant::now();
        let mut b = Batcher::new(10 * MS, 4);
        let mut full = Vec::new();
        for n in 0..10 {
            full.extend(b.push(ack("bob", n, ReceiptStatus::Stored, t0)));
        }
        assert_eq!(full.len(), 2);
        assert!(full.iter().all(|f| f.ids.len() == 4));
        let rest = b.drain();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].ids, vec![[8; 16], [9; 16]]);
        // The cap never exceeds what the wire accepts.
        assert_eq!(Batcher::new(MS, 100_000).cap, MAX_RECEIPT_IDS);
        assert_eq!(Batcher::new(MS, 0).cap, 1);
    }

    #[test]
    fn groups_are_per_friend_status_and_reason() {
        let t0 = Instant::now();
        let mut b = Batcher::new(10 * MS, 256);
        b.push(ack("bob", 1, ReceiptStatus::Stored, t0));
        b.push(ack("carol", 2, ReceiptStatus::Stored, t0 + MS));
        b.push(ack("bob", 3, ReceiptStatus::Delivered, t0 + 2 * MS));
        let mut rejected = ack("bob", 4, ReceiptStatus::Rejected, t0 + 3 * MS);
        rejected.reason = Some("policy_denied".into());
        b.push(rejected.clone());
        rejected.id = [5; 16];
        rejected.reason = Some("rate_limited".into());
        rejected.at += MS / 2;
        b.push(rejected);
        b.push(ack("bob", 6, ReceiptStatus::Stored, t0 + 4 * MS));
        let all = b.due(t0 + 20 * MS);
        let summary: Vec<(&str, ReceiptStatus, Option<&str>, usize)> = all
            .iter()
            .map(|x| {
                (
                    x.friend.as_str(),
                    x.status,
                    x.reason.as_deref(),
                    x.ids.len(),
                )
            })
            .collect();
        // Oldest group first.
        assert_eq!(
            summary,
            vec![
                ("bob", ReceiptStatus::Stored, None, 2),
                ("carol", ReceiptStatus::Stored, None, 1),
                ("bob", ReceiptStatus::Delivered, None, 1),
                ("bob", ReceiptStatus::Rejected, Some("policy_denied"), 1),
                ("bob", ReceiptStatus::Rejected, Some("rate_limited"), 1),
            ]
        );
    }

    #[test]
    fn the_same_id_twice_in_a_window_is_answered_once() {
        let t0 = Instant::now();
        let mut b = Batcher::new(10 * MS, 2);
        assert!(b.push(ack("bob", 1, ReceiptStatus::Stored, t0)).is_none());
        assert!(b.push(ack("bob", 1, ReceiptStatus::Stored, t0)).is_none());
        let full = b.push(ack("bob", 2, ReceiptStatus::Stored, t0));
        assert_eq!(full.map(|f| f.ids), Some(vec![[1; 16], [2; 16]]));
        // Once answered, a later copy is answered again (the sender may have missed it).
        assert!(b.push(ack("bob", 1, ReceiptStatus::Stored, t0)).is_none());
        assert_eq!(b.drain().len(), 1);
    }

    #[test]
    fn a_group_is_due_by_its_oldest_ack() {
        let t0 = Instant::now();
        let mut b = Batcher::new(10 * MS, 256);
        // Acks made in order may reach the batcher out of order (several ingest paths).
        b.push(ack("bob", 1, ReceiptStatus::Stored, t0 + 5 * MS));
        b.push(ack("bob", 2, ReceiptStatus::Stored, t0));
        assert_eq!(b.next_due(), Some(t0 + 10 * MS));
        assert_eq!(b.due(t0 + 10 * MS).len(), 1);
    }
}
