//! argon2 work on a fixed pool of threads with a bounded queue that sheds load.
//!
//! Each argon2 run takes 8 MiB and tens of milliseconds of CPU. Run on the shared blocking
//! pool, a brute-force burst spreads them over hundreds of threads whose allocator arenas each
//! keep their 8 MiB afterwards (RSS grew to half a gigabyte and stayed there), and waiters
//! pile up without bound. Here [`HASH_THREADS`] threads do all of it, so memory stays at a
//! few arenas; at most [`QUEUE`] runs wait, and a request beyond that gets **503** with
//! `Retry-After` at once instead of waiting.

use super::error::ApiError;
use axum::http::StatusCode;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// Threads running argon2.
pub const HASH_THREADS: usize = 2;
/// argon2 runs that may wait for a thread.
pub const QUEUE: usize = 16;

type Job = Box<dyn FnOnce() + Send>;

/// The pool.
pub(crate) struct Hasher {
    tx: SyncSender<Job>,
}

impl Hasher {
    /// Starts the threads.
    pub(crate) fn start() -> std::io::Result<Hasher> {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..HASH_THREADS {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&rx))?;
        }
        Ok(Hasher { tx })
    }

    /// Runs `f` on the pool, or refuses at once with 503 when the queue is full.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                ApiError::unavailable("the relay is busy checking secrets; retry in a moment", 1)
            }
            TrySendError::Disconnected(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
            }
        })?;
        result
            .await
            .map_err(|_| ApiError::internal("an argon2 worker stopped"))
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}
