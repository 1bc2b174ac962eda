//! The lanes: one task per `(transport, target)` delivering its records in order.

use super::{Outcome, Transport};
use crate::store::outbox::{Outbox, OutboxRecord};
use clawlink::proto::{ApiError, DeliveryState};
use rand::Rng;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// First retry delay.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

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
    store: Outbox,
    transports: HashMap<&'static str, Arc<dyn Transport>>,
    // Held only to look up or insert a sender; never across an await.
    lanes: Mutex<HashMap<(String, String), mpsc::UnboundedSender<OutboxRecord>>>,
    events: broadcast::Sender<Attempt>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Outbound {
    /// Builds the worker over `store` with the given transports.
    pub fn new(
        store: Outbox,
        transports: Vec<Arc<dyn Transport>>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Outbound {
        let (events, _) = broadcast::channel(1024);
        let transports = transports.into_iter().map(|t| (t.kind(), t)).collect();
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
    pub fn store(&self) -> &Outbox {
        &self.inner.store
    }

    /// Whether a transport of this kind is registered.
    pub fn has_transport(&self, kind: &str) -> bool {
        self.inner.transports.contains_key(kind)
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
        record: OutboxRecord,
    ) -> crate::store::Result<broadcast::Receiver<Attempt>> {
        let rx = self.subscribe();
        self.inner.store.put(&record)?;
        self.dispatch(record);
        self.inner.store.durable().await?;
        Ok(rx)
    }

    fn dispatch(&self, record: OutboxRecord) {
        let key = (record.transport.clone(), record.target.clone());
        let mut lanes = match self.inner.lanes.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
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
            .spawn(async move { this.run_lane(rx).await });
    }

    async fn run_lane(self, mut rx: mpsc::UnboundedReceiver<OutboxRecord>) {
        let mut queue: VecDeque<OutboxRecord> = VecDeque::new();
        loop {
            while let Ok(r) = rx.try_recv() {
                queue.push_back(r);
            }
            let Some(record) = queue.pop_front() else {
                tokio::select! {
                    r = rx.recv() => match r { Some(r) => { queue.push_back(r); continue } None => return },
                    _ = self.inner.shutdown.cancelled() => return,
                }
            };
            if !self.deliver_one(record).await {
                return;
            }
        }
    }

    /// Runs one record to a final state. Returns false on shutdown.
    async fn deliver_one(&self, mut record: OutboxRecord) -> bool {
        let Some(transport) = self
            .inner
            .transports
            .get(record.transport.as_str())
            .cloned()
        else {
            let err = ApiError::new(
                "no_transport",
                format!("no transport {:?} in this daemon", record.transport),
            );
            self.finish(&mut record, DeliveryState::Failed, Some(err))
                .await;
            return true;
        };
        let mut delay = BACKOFF_MIN;
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
                    let jitter = rand::thread_rng().gen_range(0.75..1.25);
                    let wait = after.unwrap_or(delay).mul_f64(jitter).min(BACKOFF_MAX);
                    let until_deadline = Duration::from_millis(
                        record.deadline_ms.saturating_sub(crate::time::now_ms()) + 1,
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait.min(until_deadline)) => {}
                        _ = self.inner.shutdown.cancelled() => return false,
                    }
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn finish(
        &self,
        record: &mut OutboxRecord,
        state: DeliveryState,
        error: Option<ApiError>,
    ) {
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
