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
//! A lane with nothing to do for [`LANE_IDLE`] ends and is forgotten; the next record for
//! its target starts a new one. The check that it is empty and its removal happen under the
//! lanes lock, the same lock a record is handed over under, so no record is left behind.

use super::{OutboxStore, Outcome, Record, Registry};
use crate::util::Backoff;
use clawlink::proto::{ApiError, DeliveryState};
use std::collections::{HashMap, VecDeque};
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
                events,
                shutdown,
                tracker,
            }),
        }
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

    async fn run_lane(self, key: (String, String), mut rx: mpsc::UnboundedReceiver<Record>) {
        let mut queue: VecDeque<Record> = VecDeque::new();
        loop {
            while let Ok(r) = rx.try_recv() {
                queue.push_back(r);
            }
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
            if !self.deliver_one(record).await {
                return;
            }
        }
    }

    /// Runs one record to a final state. Returns false on shutdown.
    async fn deliver_one(&self, mut record: Record) -> bool {
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
            if crate::time::now_ms() > record.deadline_ms {
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
                self.finish(&mut record, DeliveryState::Expired, Some(err))
                    .await;
                return true;
            }
            let outcome = tokio::select! {
                o = transport.deliver(&record) => o,
                _ = self.inner.shutdown.cancelled() => return false,
            };
            record.attempts += 1;
            match outcome {
                Outcome::Delivered => {
                    self.finish(&mut record, DeliveryState::Delivered, None)
                        .await;
                    return true;
                }
                Outcome::Failed(err) => {
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
                    tokio::select! {
                        _ = tokio::time::sleep(wait.min(until_deadline)) => {}
                        _ = self.inner.shutdown.cancelled() => return false,
                    }
                }
            }
        }
    }

    async fn finish(&self, record: &mut Record, state: DeliveryState, error: Option<ApiError>) {
        record.state = state;
        record.done_ms = Some(crate::time::now_ms());
        if let Some(e) = &error {
            record.last_error = Some(e.to_string());
        }
        // The outcome is announced before it is fsynced: the waiting `send` answers one fsync
        // sooner. A crash in between only means a redelivery with the same idempotency key.
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
        if let Err(e) = self.inner.store.durable().await {
            tracing::warn!(error = %e, id = %record.id, "could not flush the outcome; it will be retried after a restart");
        }
    }
}
