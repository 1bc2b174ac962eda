//! One writer for the inbox: concurrent durable inserts share a transaction and a flush.
//!
//! Every inbound path (webhook, relay, Nexus, friends, A2A) stores through
//! [`Inbox::insert_durable_with`], which queues the message here and waits for its answer.
//! The writer task takes everything queued (up to [`MAX_BATCH`]) as one batch, writes it in
//! one sled transaction ([`Inbox::insert_batch`]: one write of the totals, one lock taken),
//! asks the flusher for a flush, and goes on with the next batch while that flush runs. Each
//! caller is answered once the flush covering its message has succeeded, so the rule stays
//! "acknowledged only after the fsync".
//!
//! Why: with one transaction per request, concurrent requests took turns on the inbox lock and
//! each woke the flusher, so under load the daemon spent its time handing work between threads
//! rather than storing. A batch pays those costs once.
//!
//! A message refused by the caps is answered at once (nothing to wait for). A storage failure
//! fails the whole batch, and every caller in it gets the error: none was acknowledged. The
//! task is owned by the store ([`Db::spawn_writer`]): when the store closes it stores what is
//! already queued, waits for those flushes, and ends; later callers get
//! [`StoreError::Closed`].

use super::inbox::{Inbox, NewMessage, Stored};
use super::{Result, StoreError};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};

/// Most messages in one transaction.
pub const MAX_BATCH: usize = 512;

type Answer = oneshot::Sender<Result<Stored>>;

/// One queued insert.
pub struct Job {
    msg: NewMessage,
    capped: bool,
    answer: Answer,
}

/// The writer's queue.
pub type Queue = mpsc::UnboundedSender<Job>;

/// Starts the writer task for `inbox`; returns its queue.
pub fn start(inbox: Inbox) -> Queue {
    let (tx, rx) = mpsc::unbounded_channel();
    let db = inbox.db().clone();
    db.spawn_writer(move |stop| run(inbox, rx, stop));
    tx
}

/// Queues `msg` and waits until it is durable (or refused).
pub async fn submit(queue: &Queue, msg: NewMessage, capped: bool) -> Result<Stored> {
    let (answer, rx) = oneshot::channel();
    queue
        .send(Job {
            msg,
            capped,
            answer,
        })
        .map_err(|_| StoreError::Closed)?;
    rx.await.map_err(|_| StoreError::Closed)?
}

async fn run(
    inbox: Inbox,
    mut rx: mpsc::UnboundedReceiver<Job>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut flushing = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            job = rx.recv() => {
                let Some(first) = job else { break };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
                if let Some(wait) = write(&inbox, batch) {
                    flushing.push(wait);
                }
            }
            Some(()) = flushing.next(), if !flushing.is_empty() => {}
            _ = stop.cancelled(), if open => {
                // Nothing new is taken; what is queued is still stored and answered.
                rx.close();
                open = false;
            }
        }
    }
    while flushing.next().await.is_some() {}
}

/// Writes one batch; returns the future that answers its callers once flushed (`None` when
/// every caller was already answered).
fn write(inbox: &Inbox, batch: Vec<Job>) -> Option<impl std::future::Future<Output = ()> + use<>> {
    let (items, answers): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|j| ((j.msg, j.capped), j.answer))
        .unzip();
    let results = match inbox.insert_batch(items) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, messages = answers.len(), "inbox write failed; not acknowledged");
            for a in answers {
                let _ = a.send(Err(again(&e)));
            }
            return None;
        }
    };
    let mut waiting = Vec::with_capacity(results.len());
    for (res, answer) in results.into_iter().zip(answers) {
        match res {
            // Refused by the caps: nothing was written for it.
            Err(e) => {
                let _ = answer.send(Err(e));
            }
            // New, or a duplicate whose original may still be in an unfinished flush.
            Ok(stored) => waiting.push((stored, answer)),
        }
    }
    if waiting.is_empty() {
        return None;
    }
    let ticket = inbox.db().flush_ticket();
    Some(async move {
        let flushed = match ticket {
            Ok(t) => t.await,
            Err(e) => Err(e),
        };
        for (stored, answer) in waiting {
            let _ = answer.send(match &flushed {
                Ok(()) => Ok(stored),
                Err(e) => Err(again(e)),
            });
        }
    })
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
