//! The task follower: after a peer accepted a message and answered with a task, poll
//! `GetTask` with backoff until the task is final (completed, failed, canceled, rejected) or
//! waits for us (input-required, auth-required), then put the outcome in the inbox.
//!
//! The backoff grows by a quarter per poll ([`POLL_GROWTH`]) from 100 ms to 15 s, so an answer
//! is seen at most about a quarter of its own time late (a 1 s answer about 0.1 s late, not the
//! 0.5 s a doubling backoff gives), at about 20 polls for the first minute of a task.
//!
//! The followed task is stored ([`crate::store::a2a::Follow`], keyed by the outbox id) before
//! the send counts as delivered, so a restart resumes following it. The outcome lands in the
//! inbox as a message from the contact, source `a2a`, de-duplicated by the peer's task id, with
//! `meta = {in_reply_to: OUTBOX_ID, a2a_task, context_id, state}`: the answer (the artifacts'
//! text) when completed, else `[STATE] reason`. A peer that no longer knows the task (-32001,
//! e.g. OpenClaw after a restart, which keeps tasks in memory only) ends it as failed, saying so.

use super::client::{self, CallError};
use super::wire::{Task, TaskState};
use crate::inbound::Ingest;
use crate::store::a2a::{A2aStore, Follow};
use crate::store::inbox::NewMessage;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// First poll delay.
const POLL_MIN: Duration = Duration::from_millis(100);
/// Longest poll delay.
const POLL_MAX: Duration = Duration::from_secs(15);
/// Each poll delay is the previous one times this.
const POLL_GROWTH: f64 = 1.25;

/// Follows outbound tasks. Cheap to clone.
#[derive(Clone)]
pub struct Follower {
    inner: Arc<Inner>,
}

struct Inner {
    store: A2aStore,
    ingest: Ingest,
    http: reqwest::Client,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    changed: broadcast::Sender<Follow>,
}

impl Follower {
    /// A follower writing outcomes through `ingest`.
    pub fn new(
        store: A2aStore,
        ingest: Ingest,
        http: reqwest::Client,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Follower {
        let (changed, _) = broadcast::channel(256);
        Follower {
            inner: Arc::new(Inner {
                store,
                ingest,
                http,
                shutdown,
                tracker,
                changed,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &A2aStore {
        &self.inner.store
    }

    /// Followed tasks as they end.
    pub fn subscribe(&self) -> broadcast::Receiver<Follow> {
        self.inner.changed.subscribe()
    }

    /// Starts following every task left open before a restart.
    pub fn resume(&self) -> crate::store::Result<usize> {
        let open = self.inner.store.open_follows()?;
        let n = open.len();
        for f in open {
            self.start(f);
        }
        Ok(n)
    }

    /// Follows `f` in the background.
    pub fn start(&self, f: Follow) {
        let this = self.clone();
        self.inner.tracker.spawn(async move { this.run(f).await });
    }

    async fn run(self, mut f: Follow) {
        let mut delay = POLL_MIN;
        loop {
            let jitter = rand::thread_rng().gen_range(0.8..1.2);
            tokio::select! {
                _ = tokio::time::sleep(delay.mul_f64(jitter)) => {}
                _ = self.inner.shutdown.cancelled() => return,
            }
            delay = delay.mul_f64(POLL_GROWTH).min(POLL_MAX);
            let i = &self.inner;
            let got =
                client::get_task(&i.http, &f.endpoint, f.token.expose(), f.legacy, &f.task_id)
                    .await;
            match got {
                Ok(task) => {
                    let s = task.status.state;
                    if s.is_terminal() || s.is_interrupted() {
                        self.finish(&mut f, &task).await;
                        return;
                    }
                    if s != f.state {
                        f.state = s;
                        let _ = i.store.put_follow(&f);
                    }
                }
                Err(CallError::Transient(e)) => {
                    tracing::debug!(task = %f.task_id, error = %e, "GetTask will be retried");
                }
                Err(e) => {
                    let gone = matches!(&e, CallError::Refused(m) if m.contains("-32001"));
                    let why = if gone {
                        format!("the peer no longer knows task {} (it may have restarted and lost it): {e}", f.task_id)
                    } else {
                        format!("the task can no longer be read: {e}")
                    };
                    self.end(&mut f, TaskState::Failed, why).await;
                    return;
                }
            }
        }
    }

    /// Records a task that is final or waits for us, and lands its outcome in the inbox.
    pub async fn finish(&self, f: &mut Follow, task: &Task) {
        let state = task.status.state;
        let text = if state == TaskState::Completed {
            let answer = task.answer();
            if answer.is_empty() {
                task.reason().unwrap_or_default()
            } else {
                answer
            }
        } else {
            format!(
                "[{}] {}",
                state.short(),
                task.reason().unwrap_or_else(|| "(no reason given)".into())
            )
        };
        self.end(f, state, text).await;
    }

    /// Ends following `f` in `state` with `text` (the answer, or why not).
    pub async fn end(&self, f: &mut Follow, state: TaskState, text: String) {
        let i = &self.inner;
        let mut meta = serde_json::Map::new();
        meta.insert("in_reply_to".into(), f.outbox_id.clone().into());
        meta.insert("a2a_task".into(), f.task_id.clone().into());
        meta.insert("context_id".into(), f.context_id.clone().into());
        meta.insert("state".into(), state.short().into());
        let msg = NewMessage {
            source: "a2a".into(),
            source_id: Some(format!("reply\0{}\0{}", f.endpoint, f.task_id)),
            from: f.contact.clone(),
            message: if text.is_empty() {
                "(no answer text)".into()
            } else {
                text.clone()
            },
            meta,
        };
        f.state = state;
        f.text = Some(text);
        match i.ingest.store(msg).await {
            Ok(stored) => f.inbox_id = Some(stored.id()),
            Err(e) => {
                tracing::error!(error = %e, task = %f.task_id, "A2A answer NOT stored; it is fetched again after a restart")
            }
        }
        if f.inbox_id.is_some() {
            if let Err(e) = i.store.put_follow(f) {
                tracing::error!(error = %e, "A2A follow record not updated");
            }
            let _ = i.store.durable().await;
        }
        tracing::info!(task = %f.task_id, contact = %f.contact, state = state.short(), "A2A task ended");
        let _ = i.changed.send(f.clone());
    }
}
