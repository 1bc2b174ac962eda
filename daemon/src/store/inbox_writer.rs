//! One writer for the inbox: concurrent durable inserts share a transaction and a flush.
//!
//! Every inbound path (webhook, relay, Nexus, friends, A2A) stores through
//! [`Inbox::insert_durable_with`], which queues the message here and waits for its answer.
//! The writer is one thread. It takes everything queued (up to [`MAX_BATCH`]) as one batch,
//! writes it in one sled transaction ([`Inbox::insert_batch`]: one write of the totals, one
//! lock taken), flushes, and answers each caller once that flush has succeeded, so the rule
//! stays "acknowledged only after the fsync". Whatever arrives during a flush is the next
//! batch: the busier the inbox, the more messages share one flush.
//!
//! Why a thread of its own: a flush blocks, and every hand-off between an async task, the
//! runtime's blocking pool and back is a thread wake-up. With one transaction per request,
//! then with a writer task that handed each flush to a flusher task, the daemon spent more
//! time waking threads than storing (`perf stat` counted over 4 context switches per message
//! of a webhook load; BENCHMARKS.md "Durable ingest"). Here a batch costs one wake-up of this
//! thread and one of each caller.
//!
//! A message refused by the caps is answered at once (nothing to wait for). A storage failure
//! fails the whole batch, and every caller in it gets the error: none was acknowledged; a
//! failed flush also breaks the store ([`super::Db::broken`]). The thread is owned by the
//! store ([`super::Db::spawn_writer`]): when the store closes, it stores and flushes what is
//! already queued, answers it, and ends; later callers get [`StoreError::Closed`].

use super::inbox::{Inbox, NewMessage, Stored};
use super::{Result, StoreError};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most messages in one transaction.
pub const MAX_BATCH: usize = 512;

type Answer = oneshot::Sender<Result<Stored>>;

/// What the writer thread is sent.
pub enum Job {
    /// One insert.
    Insert {
        /// The message.
        msg: NewMessage,
        /// Whether the inbox caps apply.
        capped: bool,
        /// Where its outcome goes.
        answer: Answer,
    },
    /// The store is closing: store what is queued, then end.
    Stop,
}

/// The writer's queue.
pub type Queue = mpsc::Sender<Job>;

/// Starts the writer thread for `inbox`; returns its queue.
pub fn start(inbox: Inbox) -> Queue {
    let (tx, rx) = mpsc::channel();
    let stop_tx = tx.clone();
    let db = inbox.db().clone();
    db.spawn_writer(move |stop| async move {
        let (done_tx, done) = oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("inbox-writer".into())
            .spawn(move || {
                run(&inbox, rx);
                // The store's handles go before the close is told the writer has ended.
                drop(inbox);
                let _ = done_tx.send(());
            });
        if let Err(e) = spawned {
            // The receiver went with the closure: every caller gets `Closed`, nothing is
            // acknowledged.
            tracing::error!(error = %e, "cannot start the inbox writer; inbound messages are refused");
            return;
        }
        stop.cancelled().await;
        let _ = stop_tx.send(Job::Stop);
        let _ = done.await;
    });
    tx
}

/// Queues `msg` and waits until it is durable (or refused).
pub async fn submit(queue: &Queue, msg: NewMessage, capped: bool) -> Result<Stored> {
    let (answer, rx) = oneshot::channel();
    queue
        .send(Job::Insert {
            msg,
            capped,
            answer,
        })
        .map_err(|_| StoreError::Closed)?;
    rx.await.map_err(|_| StoreError::Closed)?
}

/// The writer thread: one batch at a time until [`Job::Stop`] (or every sender is gone).
fn run(inbox: &Inbox, rx: mpsc::Receiver<Job>) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = rx.recv() else { return };
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Insert {
                    msg,
                    capped,
                    answer,
                } => batch.push((msg, capped, answer)),
                // What is already queued is still stored and answered; later callers find
                // the queue gone (`Closed`) once this thread returns.
                Job::Stop => stopping = true,
            }
            next = if batch.len() < MAX_BATCH || stopping {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(MAX_BATCH));
            write(inbox, std::mem::replace(&mut batch, rest));
        }
    }
}

/// Writes one batch, flushes, and answers its callers.
fn write(inbox: &Inbox, batch: Vec<(NewMessage, bool, Answer)>) {
    let (items, answers): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|(msg, capped, answer)| ((msg, capped), answer))
        .unzip();
    let results = match inbox.insert_batch(items) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, messages = answers.len(), "inbox write failed; not acknowledged");
            for a in answers {
                let _ = a.send(Err(again(&e)));
            }
            return;
        }
    };
    let mut waiting = Vec::with_capacity(results.len());
    for (res, answer) in results.into_iter().zip(answers) {
        match res {
            // Refused by the caps: nothing was written for it.
            Err(e) => {
                let _ = answer.send(Err(e));
            }
            // New, or a duplicate whose original may not be flushed yet.
            Ok(stored) => waiting.push((stored, answer)),
        }
    }
    if waiting.is_empty() {
        return;
    }
    let flushed = inbox.db().flush_blocking();
    for (stored, answer) in waiting {
        let _ = answer.send(match &flushed {
            Ok(()) => Ok(stored),
            Err(e) => Err(again(e)),
        });
    }
}

/// The same failure for another caller of the batch (store errors are not `Clone`).
fn again(e: &StoreError) -> StoreError {
    match e {
        StoreError::Closed => StoreError::Closed,
        StoreError::InboxFull {
            total,
            bytes,
            max_messages,
            max_bytes,
        } => StoreError::InboxFull {
            total: *total,
            bytes: *bytes,
            max_messages: *max_messages,
            max_bytes: *max_bytes,
        },
        other => StoreError::Sled(sled::Error::Io(std::io::Error::other(other.to_string()))),
    }
}
