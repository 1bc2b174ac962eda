//! Inbound tasks: how an accepted `SendMessage` becomes a durable task whose state tells the
//! truth, and how that state moves.
//!
//! ```text
//! SendMessage ─► inbox (fsync) ─► task SUBMITTED (fsync) ─► answer the caller
//!                                   │ handed to the local agent (left its queue) or read by the user
//!                                   ▼
//!                                 WORKING
//!                                   │ `clawlink a2a reply` (the agent's answer) │ `clawlink a2a reject` (policy)
//!                                   ▼                                          ▼
//!                                 COMPLETED (answer as an artifact)          REJECTED (reason)
//! ```
//!
//! The inbox message is stored first, with the peer's `messageId` as its de-duplication key;
//! the task second. A crash between the two leaves a message the caller was never told about;
//! its retry (same `messageId`) finds the message and creates the missing task, so the task
//! exists once and the message is stored once. "Working" is derived when the task is read:
//! the message has left the local agent's durable queue, or someone read it in the inbox.
//! A final state with a push-notification config goes to the outbox as an `a2a-push` record,
//! so it is delivered at least once, with retries, across restarts.

use super::rpc::{code, RpcError, Send};
use super::wire::{Artifact, Message, Part, Task, TaskState, TaskStatus};
use crate::inbound::Ingest;
use crate::store::a2a::{A2aStore, TaskRecord};
use crate::store::inbox::{Inbox, NewMessage};
use crate::store::StoreError;
use crate::transport::Outbound;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The inbound task service. Cheap to clone.
#[derive(Clone)]
pub struct Tasks {
    inner: Arc<Inner>,
}

struct Inner {
    store: A2aStore,
    ingest: Ingest,
    inbox: Inbox,
    changed: broadcast::Sender<String>,
}

fn store_error(e: StoreError) -> RpcError {
    tracing::error!(error = %e, "A2A task NOT stored");
    RpcError::new(
        code::SERVER,
        "the message could not be stored (not accepted); retry later",
    )
}

fn status(state: TaskState, message: Option<Message>) -> TaskStatus {
    TaskStatus {
        state,
        message,
        timestamp: Some(crate::time::now_rfc3339()),
    }
}

impl Tasks {
    /// The service over its store and the ingest path.
    pub fn new(store: A2aStore, ingest: Ingest) -> Tasks {
        let inbox = ingest.inbox().clone();
        let (changed, _) = broadcast::channel(256);
        Tasks {
            inner: Arc::new(Inner {
                store,
                ingest,
                inbox,
                changed,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &A2aStore {
        &self.inner.store
    }

    /// Ids of tasks as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.inner.changed.subscribe()
    }

    /// Stores a message from `peer` and its task; returns once both are on disk. A message
    /// seen before (same `messageId` from the same peer) returns its existing task.
    pub async fn accept(&self, peer: &str, send: &Send) -> Result<TaskRecord, RpcError> {
        let s = &self.inner.store;
        let message_id = if send.message.message_id.is_empty() {
            super::new_id()
        } else {
            send.message.message_id.clone()
        };
        if let Some(r) = s.task_for_message(peer, &message_id).map_err(store_error)? {
            return Ok(r);
        }
        let task_id = super::new_id();
        let context_id = send
            .message
            .context_id
            .clone()
            .unwrap_or_else(|| format!("ctx-{}", super::new_id()));
        let mut meta = serde_json::Map::new();
        meta.insert("a2a_task".into(), task_id.clone().into());
        meta.insert("context_id".into(), context_id.clone().into());
        meta.insert("message_id".into(), message_id.clone().into());
        let stored = self
            .inner
            .ingest
            .store(NewMessage {
                source: "a2a".into(),
                source_id: Some(format!("{peer}\0{message_id}")),
                from: peer.to_string(),
                message: send.text.clone(),
                meta,
            })
            .await
            .map_err(store_error)?;
        let mut history_msg = send.message.clone();
        history_msg.message_id = message_id.clone();
        history_msg.context_id = Some(context_id.clone());
        history_msg.task_id = Some(task_id.clone());
        let record = TaskRecord {
            task: Task {
                id: task_id,
                context_id,
                status: status(TaskState::Submitted, None),
                artifacts: Vec::new(),
                history: vec![history_msg],
            },
            peer: peer.to_string(),
            inbox_id: stored.id(),
            agent_tracked: self.inner.inbox.tracks_agent(),
            push: send.push.clone(),
        };
        s.put_task(&record, &message_id).map_err(store_error)?;
        s.durable().await.map_err(store_error)?;
        tracing::info!(task = %record.task.id, peer, inbox = record.inbox_id, "A2A task accepted");
        Ok(record)
    }

    /// The task `id` if `peer` owns it, with its state brought up to date.
    pub fn get(&self, peer: &str, id: &str) -> Result<Option<Task>, RpcError> {
        let Some(r) = self.inner.store.task(id).map_err(store_error)? else {
            return Ok(None);
        };
        if r.peer != peer {
            return Ok(None);
        }
        Ok(Some(self.refresh(r).map_err(store_error)?.task))
    }

    /// Moves a submitted task to working once its message was handed on.
    fn refresh(&self, mut r: TaskRecord) -> crate::store::Result<TaskRecord> {
        if r.task.status.state != TaskState::Submitted {
            return Ok(r);
        }
        let read = self.inner.inbox.get(r.inbox_id)?.is_some_and(|m| m.read);
        let handed = r.agent_tracked && !self.inner.inbox.is_agent_pending(r.inbox_id)?;
        if read || handed {
            r.task.status = status(TaskState::Working, None);
            self.inner.store.update_task(&r)?;
            let _ = self.inner.changed.send(r.task.id.clone());
        }
        Ok(r)
    }

    /// Finds the task of `task_or_inbox`: a task id, or the id of the inbox message it holds.
    pub fn find(&self, task_or_inbox: &str) -> crate::store::Result<Option<TaskRecord>> {
        if let Some(r) = self.inner.store.task(task_or_inbox)? {
            return Ok(Some(r));
        }
        match task_or_inbox.parse::<u64>() {
            Ok(id) => self.inner.store.task_for_inbox(id),
            Err(_) => Ok(None),
        }
    }

    /// Completes a task with `answer` as its artifact (a push notification, if asked for,
    /// goes to `outbound`).
    pub async fn complete(
        &self,
        outbound: &Outbound,
        r: TaskRecord,
        answer: &str,
    ) -> Result<Task, String> {
        let artifact = Artifact {
            artifact_id: super::new_id(),
            name: Some("answer".into()),
            parts: vec![Part::text(answer)],
        };
        self.finish(outbound, r, TaskState::Completed, Some(artifact), None)
            .await
    }

    /// Rejects a task, with `reason`.
    pub async fn reject(
        &self,
        outbound: &Outbound,
        r: TaskRecord,
        reason: &str,
    ) -> Result<Task, String> {
        let msg = Message::agent(&r.task.context_id, reason);
        self.finish(outbound, r, TaskState::Rejected, None, Some(msg))
            .await
    }

    async fn finish(
        &self,
        outbound: &Outbound,
        mut r: TaskRecord,
        state: TaskState,
        artifact: Option<Artifact>,
        message: Option<Message>,
    ) -> Result<Task, String> {
        if r.task.status.state.is_terminal() {
            return Err(format!(
                "task {} is already {}",
                r.task.id,
                r.task.status.state.short()
            ));
        }
        if let Some(a) = artifact {
            r.task.artifacts.push(a);
        }
        r.task.status = status(state, message);
        let store = &self.inner.store;
        store.update_task(&r).map_err(|e| e.to_string())?;
        if let Some(push) = &r.push {
            super::push::enqueue(outbound, &r.task, push)
                .await
                .map_err(|e| format!("the push notification could not be queued: {e}"))?;
        }
        store.durable().await.map_err(|e| e.to_string())?;
        tracing::info!(task = %r.task.id, state = state.short(), "A2A task finished");
        let _ = self.inner.changed.send(r.task.id.clone());
        Ok(r.task)
    }

    /// Waits until task `id` is final or interrupted, or `wait` passes; returns it as it is then.
    pub async fn wait(
        &self,
        peer: &str,
        id: &str,
        wait: std::time::Duration,
    ) -> Result<Option<Task>, RpcError> {
        let mut rx = self.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let task = self.get(peer, id)?;
            match &task {
                Some(t) if !(t.status.state.is_terminal() || t.status.state.is_interrupted()) => {}
                _ => return Ok(task),
            }
            tokio::select! {
                r = rx.recv() => if let Err(broadcast::error::RecvError::Closed) = r { return Ok(task) },
                _ = tokio::time::sleep_until(deadline) => return Ok(task),
                // The local agent's queue is not announced here: look again now and then.
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }
}
