//! The outbox lanes: one task per `(transport, target)` delivering its records in order.
//!
//! A send is first written durably to the outbox ([`crate::store::outbox`]), then handed to
//! the *lane* of its `(transport, target)`: one task per lane delivers that lane's records
//! strictly in order, so two messages to one peer never overtake each other, while a slow or
//! dead peer never holds up another. A lane retries its head record with the shared
//! [`Backoff`] (honouring a transport's retry-after) until it is delivered, refused for good,
//! or past its deadline. Every attempt is announced on a broadcast channel, which is how
//! `clawlink send` learns the outcome of the first attempt and `--wait` the final one.
//!
//! Records queued behind a stuck head still end on time: while the head waits out its backoff,
//! the lane wakes at the earliest deadline behind it and expires what is due. `clawlink outbox
//! cancel` marks records in [`Outbound::cancel`] and pokes every lane; the lane that holds a
//! record is the only writer of its final state, so a record delivered at the moment it was
//! cancelled is reported as delivered, never as both.
//!
//! A lane with nothing to do for [`LANE_IDLE`] ends and is forgotten; the next record for
//! its target starts a new one. The check that it is empty and its removal happen under the
//! lanes lock, the same lock a record is handed over under, so no record is left behind.

use super::{OutboxStore, Outcome, Record, Registry};
use crate::util::Backoff;
use clawlink::proto::{ApiError, DeliveryState};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// First retry delay.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A lane idle for this long is retired.
pub const LANE_IDLE: Duration = Duration::from_secs(60);

type Lanes = HashMap<(String, String), mpsc::UnboundedSender<Record>>;

/// How [`Outbound::pruning`] ended.
enum Woke<T> {
    /// The future finished.
    Done(T),
    /// The head record was cancelled meanwhile.
    HeadCancelled,
    /// The daemon is stopping.
    Shutdown,
}

/// The result of one attempt, broadcast to whoever waits on a send.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Outbox id.
    pub id: String,
    /// State after the attempt.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: u32,
    /// The error of this attempt, if any.
    pub error: Option<ApiError>,
}

/// Handle to the outbound machinery. Cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    inner: Arc<Inner>,
}

struct Inner {
    store: OutboxStore,
    transports: Registry,
    // Held only to look up, insert or retire a sender; never across an await.
    lanes: Mutex<Lanes>,
    /// Ids the owner cancelled that their lane has not ended yet.
    cancelled: Mutex<HashSet<String>>,
    /// Wakes every lane (a cancellation to act on).
    poke: tokio::sync::Notify,
    events: broadcast::Sender<Attempt>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Outbound {
    /// Builds the worker over `store` with the given transports.
    pub fn new(
        store: OutboxStore,
        transports: Registry,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Outbound {
        let (events, _) = broadcast::channel(1024);
        Outbound {
            inner: Arc::new(Inner {
                store,
                transports,
                lanes: Mutex::new(HashMap::new()),
                cancelled: Mutex::new(HashSet::new()),
                poke: tokio::sync::Notify::new(),
                events,
                shutdown,
                tracker,
            }),
        }
    }

    /// How many lanes are running (one per target with work or recently used).
    pub fn lane_count(&self) -> usize {
        self.lock().len()
    }

    /// The store behind it.
    pub fn store(&self) -> &OutboxStore {
        &self.inner.store
    }

    /// Number of lanes running now.
    pub fn lanes(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.inner.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands every pending record (from before a restart) to its lane.
    pub fn resume(&self) -> crate::store::Result<usize> {
        let pending = self.inner.store.pending()?;
        let n = pending.len();
        for r in pending {
            self.dispatch(r);
        }
        Ok(n)
    }

    /// Attempt announcements.
    pub fn subscribe(&self) -> broadcast::Receiver<Attempt> {
        self.inner.events.subscribe()
    }

    /// Stores `record`, queues it on its lane, and returns once it is on disk. The first
    /// attempt runs while the fsync does (the caller learns nothing before both are done, so a
    /// crash in between leaves a message the user was never told about, and the idempotency key
    /// makes a redelivery harmless). Returns a receiver subscribed before the first attempt,
    /// so no announcement about this record can be missed.
    pub async fn enqueue(
        &self,
        record: Record,
    ) -> crate::store::Result<broadcast::Receiver<Attempt>> {
        let rx = self.subscribe();
        self.inner.store.put(&record)?;
        self.dispatch(record);
        self.inner.store.durable().await?;
        Ok(rx)
    }

    fn dispatch(&self, record: Record) {
        let key = (record.transport.clone(), record.target.clone());
        let mut lanes = self.lock();
        if let Some(tx) = lanes.get(&key) {
            if let Err(mpsc::error::SendError(r)) = tx.send(record) {
                // The lane ended (shutdown): the record stays queued in the store for next start.
                tracing::debug!(id = %r.id, "lane closed; record stays queued");
            }
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(record);
        lanes.insert(key.clone(), tx);
        let this = self.clone();
        self.inner
            .tracker
            .spawn(async move { this.run_lane(key, rx).await });
    }

    /// Cancels the pending records `which` selects: their lanes end them as `cancelled` (or,
    /// for one in the middle of an attempt that succeeds, as `delivered`). Returns the final
    /// state of each, waiting up to `within` for its lane; one still in an attempt then is
    /// reported `queued`.
    pub async fn cancel(
        &self,
        which: impl Fn(&Record) -> bool,
        within: Duration,
    ) -> crate::store::Result<Vec<(String, DeliveryState)>> {
        let mut events = self.subscribe();
        let ids: Vec<String> = self
            .inner
            .store
            .pending()?
            .into_iter()
            .filter(|r| which(r))
            .map(|r| r.id)
            .collect();
        self.inner
            .cancelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(ids.iter().cloned());
        self.inner.poke.notify_waiters();
        let mut states: HashMap<String, DeliveryState> = ids
            .iter()
            .map(|id| (id.clone(), DeliveryState::Queued))
            .collect();
        let mut open = ids.len();
        let until = tokio::time::Instant::now() + within;
        while open > 0 {
            let Ok(Ok(a)) = tokio::time::timeout_at(until, events.recv()).await else {
                break;
            };
            if let Some(s) = states.get_mut(&a.id) {
                if *s == DeliveryState::Queued && a.state != DeliveryState::Queued {
                    *s = a.state;
                    open -= 1;
                }
            }
        }
        Ok(ids
            .into_iter()
            .map(|id| {
                let s = states[&id];
                (id, s)
            })
            .collect())
    }

    /// Whether the owner cancelled `id` (and forgets it: the caller ends the record).
    fn take_cancelled(&self, id: &str) -> bool {
        self.inner
            .cancelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    /// Ends what waits in `queue` and was cancelled or is past its deadline.
    async fn prune(&self, queue: &mut VecDeque<Record>) {
        let now = crate::time::now_ms();
        let mut kept = VecDeque::with_capacity(queue.len());
        for mut r in queue.drain(..) {
            if self.take_cancelled(&r.id) {
                self.end_cancelled(&mut r).await;
            } else if now > r.deadline_ms {
                self.expire(&mut r).await;
            } else {
                kept.push_back(r);
            }
        }
        *queue = kept;
    }

    async fn end_cancelled(&self, record: &mut Record) {
        let err = ApiError::new("cancelled", "cancelled by `clawlink outbox cancel`");
        self.finish(record, DeliveryState::Cancelled, Some(err))
            .await;
    }

    async fn expire(&self, record: &mut Record) {
        let err = ApiError::new(
            "expired",
            "the message could not be delivered before its deadline",
        )
        .with_hint(
            record
                .last_error
                .clone()
                .map(|e| format!("last error: {e}"))
                .unwrap_or_default(),
        );
        self.finish(record, DeliveryState::Expired, Some(err)).await;
    }

    async fn run_lane(self, key: (String, String), mut rx: mpsc::UnboundedReceiver<Record>) {
        let mut queue: VecDeque<Record> = VecDeque::new();
        loop {
            while let Ok(r) = rx.try_recv() {
                queue.push_back(r);
            }
            self.prune(&mut queue).await;
            let Some(record) = queue.pop_front() else {
                tokio::select! {
                    r = rx.recv() => match r { Some(r) => { queue.push_back(r); continue } None => return },
                    _ = tokio::time::sleep(LANE_IDLE) => {
                        let mut lanes = self.lock();
                        match rx.try_recv() {
                            Ok(r) => queue.push_back(r),
                            Err(_) => {
                                lanes.remove(&key);
                                return;
                            }
                        }
                        continue;
                    }
                    _ = self.inner.shutdown.cancelled() => return,
                }
            };
            if !self.deliver_one(record, &mut queue, &mut rx).await {
                return;
            }
        }
    }

    /// Runs one record to a final state, keeping the records behind it (`queue`, fed from
    /// `rx`) pruned while it waits. Returns false on shutdown.
    async fn deliver_one(
        &self,
        mut record: Record,
        queue: &mut VecDeque<Record>,
        rx: &mut mpsc::UnboundedReceiver<Record>,
    ) -> bool {
        let Some(transport) = self.inner.transports.by_kind(&record.transport) else {
            let err = ApiError::new(
                "no_transport",
                format!("no transport {:?} in this daemon", record.transport),
            );
            self.finish(&mut record, DeliveryState::Failed, Some(err))
                .await;
            return true;
        };
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        loop {
            if self.take_cancelled(&record.id) {
                self.end_cancelled(&mut record).await;
                return true;
            }
            if crate::time::now_ms() > record.deadline_ms {
                self.expire(&mut record).await;
                return true;
            }
            // An attempt under way is never cut short by a cancel: its outcome is the truth.
            let outcome = match self
                .pruning(transport.deliver(&record), queue, rx, None)
                .await
            {
                Woke::Done(o) => o,
                Woke::HeadCancelled => continue,
                Woke::Shutdown => return false,
            };
            record.attempts += 1;
            match outcome {
                Outcome::Delivered => {
                    self.take_cancelled(&record.id);
                    self.finish(&mut record, DeliveryState::Delivered, None)
                        .await;
                    return true;
                }
                Outcome::Failed(err) => {
                    self.take_cancelled(&record.id);
                    self.finish(&mut record, DeliveryState::Failed, Some(err))
                        .await;
                    return true;
                }
                Outcome::Retry { error, after } => {
                    tracing::debug!(id = %record.id, transport = %record.transport, attempts = record.attempts, error = %error, "delivery will be retried");
                    record.last_error = Some(error.to_string());
                    if let Err(e) = self.inner.store.put(&record) {
                        tracing::warn!(error = %e, "could not record the attempt");
                    }
                    let _ = self.inner.events.send(Attempt {
                        id: record.id.clone(),
                        state: DeliveryState::Queued,
                        attempts: record.attempts,
                        error: Some(error),
                    });
                    // The peer's own delay replaces ours (capped), as it always did here.
                    let ours = backoff.next_wait(None);
                    let wait = after.map_or(ours, |a| a.min(BACKOFF_MAX));
                    let until_deadline = Duration::from_millis(
                        record.deadline_ms.saturating_sub(crate::time::now_ms()) + 1,
                    );
                    let nap = tokio::time::sleep(wait.min(until_deadline));
                    if let Woke::Shutdown = self.pruning(nap, queue, rx, Some(&record.id)).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Runs `fut` while keeping `queue` pruned, so that a record behind the head that is
    /// cancelled or reaches its deadline ends on time however long the head takes. With
    /// `head`, it also returns early once that record is cancelled.
    async fn pruning<T>(
        &self,
        fut: impl std::future::Future<Output = T>,
        queue: &mut VecDeque<Record>,
        rx: &mut mpsc::UnboundedReceiver<Record>,
        head: Option<&str>,
    ) -> Woke<T> {
        tokio::pin!(fut);
        let mut open = true;
        // The earliest deadline in the queue, kept up to date as records arrive (a full scan
        // only after a wake-up, never per arrival).
        let mut due = queue.iter().map(|r| r.deadline_ms).min();
        loop {
            let until_due = due.map_or(LANE_IDLE, |d| {
                Duration::from_millis(d.saturating_sub(crate::time::now_ms()) + 1)
            });
            tokio::select! {
                t = &mut fut => return Woke::Done(t),
                r = rx.recv(), if open => {
                    match r {
                        Some(r) => {
                            due = Some(due.map_or(r.deadline_ms, |d| d.min(r.deadline_ms)));
                            queue.push_back(r);
                        }
                        None => open = false,
                    }
                    continue;
                }
                _ = self.inner.poke.notified() => {}
                _ = tokio::time::sleep(until_due) => {}
                _ = self.inner.shutdown.cancelled() => return Woke::Shutdown,
            }
            while let Ok(r) = rx.try_recv() {
                queue.push_back(r);
            }
            self.prune(queue).await;
            due = queue.iter().map(|r| r.deadline_ms).min();
            let cancelled = self
                .inner
                .cancelled
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if head.is_some_and(|id| cancelled.contains(id)) {
                return Woke::HeadCancelled;
            }
        }
    }

    async fn finish(&self, record: &mut Record, state: DeliveryState, error: Option<ApiError>) {
        record.state = state;
        record.done_ms = Some(crate::time::now_ms());
        if let Some(e) = &error {
            record.last_error = Some(e.to_string());
        }
        // The outcome is announced before it is fsynced, and the lane goes on to its next
        // record while the flush runs: a lane's pace is its peer's round trip, not that plus
        // our fsync. A crash before the flush only means the record is still `queued` on
        // disk, so it is delivered again with the same idempotency key: our relay, gateways
        // and friends store it once (a seed relay, which has no such key, may show it twice,
        // as it could before in the shorter window). Nothing is lost either way.
        if let Err(e) = self.inner.store.put(record) {
            tracing::warn!(error = %e, id = %record.id, "could not record the outcome; it will be retried after a restart");
        }
        tracing::info!(id = %record.id, transport = %record.transport, state = ?state, attempts = record.attempts, "outbound message finished");
        let _ = self.inner.events.send(Attempt {
            id: record.id.clone(),
            state,
            attempts: record.attempts,
            error,
        });
        // A failed flush is logged by the store, which then refuses every write.
        if let Err(e) = self.inner.store.flush_soon() {
            tracing::warn!(error = %e, id = %record.id, "could not flush the outcome; it will be retried after a restart");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StatusSource;
    use crate::transport::{BoxFuture, FriendSend, Payload, Transport};
    use clawlink::proto::ConnectionRow;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Takes every record at once and counts them.
    #[derive(Default)]
    struct Taker(AtomicUsize);

    impl StatusSource for Taker {
        fn rows(&self) -> Vec<ConnectionRow> {
            Vec::new()
        }
    }

    impl Transport for Taker {
        fn kind(&self) -> &'static str {
            "friend"
        }
        fn deliver<'a>(&'a self, _record: &'a Record) -> BoxFuture<'a, Outcome> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Outcome::Delivered })
        }
    }

    fn record(store: &OutboxStore, id: &str, target: &str) -> anyhow::Result<Record> {
        let now = crate::time::now_ms();
        Ok(Record {
            seq: store.next_seq()?,
            id: id.into(),
            to: target.into(),
            transport: "friend".into(),
            target: target.into(),
            payload: Payload::Friend(FriendSend {
                friend: target.into(),
                kind: "message".into(),
                envelope: "cle1:x".into(),
            }),
            state: DeliveryState::Queued,
            attempts: 0,
            created_ms: now,
            deadline_ms: now + 3_600_000,
            done_ms: None,
            last_error: None,
        })
    }

    async fn delivered(rx: &mut broadcast::Receiver<Attempt>, id: &str) -> anyhow::Result<()> {
        loop {
            let a = rx.recv().await?;
            if a.id == id && a.state == DeliveryState::Delivered {
                return Ok(());
            }
        }
    }

    /// A lane with nothing to do ends after [`LANE_IDLE`] (the clock is tokio's paused one, so
    /// the idle minute passes without waiting), and the next record for its target starts a
    /// new lane that delivers it.
    #[tokio::test(start_paused = true)]
    async fn idle_lanes_are_retired_and_come_back_on_demand() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let db = crate::store::Db::open(&tmp.path().join("data"))?;
        let store = OutboxStore::open(&db)?;
        let taker = Arc::new(Taker::default());
        let mut registry = Registry::new();
        registry.add(taker.clone());
        let tracker = TaskTracker::new();
        let out = Outbound::new(store.clone(), registry, CancellationToken::new(), tracker);
        for (id, target) in [("a1", "alice"), ("b1", "bob")] {
            let mut rx = out.enqueue(record(&store, id, target)?).await?;
            delivered(&mut rx, id).await?;
        }
        assert_eq!(out.lane_count(), 2, "one lane per target");
        tokio::time::sleep(LANE_IDLE + Duration::from_secs(1)).await;
        // The retired lanes' tasks run once the clock has moved; they end on their own.
        for _ in 0..100 {
            if out.lane_count() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(out.lane_count(), 0, "idle lanes retired");
        let mut rx = out.enqueue(record(&store, "a2", "alice")?).await?;
        delivered(&mut rx, "a2").await?;
        assert_eq!(out.lane_count(), 1);
        assert_eq!(taker.0.load(Ordering::Relaxed), 3);
        Ok(())
    }
}
