//! The durable store: the only module that knows the data lives in sled.
//!
//! ## Layout on disk
//!
//! ```text
//! DATA_DIR/            0700
//!   lock               flock'd by the running process (holds its pid): one process per data dir
//!   db/                the sled database
//! ```
//!
//! Each role keeps its records in its own trees (see the submodules). The `meta` tree holds
//! `schema` = [`SCHEMA_VERSION`]; a store written by a newer clawlink is refused at start
//! rather than misread, and a store sled cannot open is reported, never wiped.
//!
//! ## Durability: group commit
//!
//! A record counts as stored only after [`Db::durable`] returns: that waits for an fsync
//! (`sled::Db::flush`) that *started after* the caller's write. One flusher task serves all
//! waiters: while one flush runs, new waiters queue, and the next flush covers all of them.
//! Under load a single fsync acknowledges hundreds of messages; alone, a message costs one.
//! The inbox, the busiest writer, does the same on a thread of its own, which writes a batch
//! and flushes it itself ([`inbox_writer`]): that saves the hand-offs to this task and to the
//! runtime's blocking pool on every batch.
//!
//! The flusher is owned: [`Db::close`] (called by every role once its other tasks are done)
//! answers the waiters still queued with one last flush and waits for the task to end, so
//! no task is left for the runtime to abandon at exit. Waiters after that get
//! [`StoreError::Closed`].

pub mod a2a;
pub mod audit;
pub mod contacts;
pub mod converse;
pub mod inbox;
pub mod inbox_counts;
pub mod inbox_writer;
pub mod kv;
pub mod nexus_client;
pub mod nexus_members;
pub mod nexus_server;
pub mod outbox;
pub mod policy;
pub mod relay_client;
pub mod relay_server;
pub mod trust;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// On-disk schema version this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

impl From<clawlink::paths::PrivateDirError> for StoreError {
    fn from(e: clawlink::paths::PrivateDirError) -> Self {
        StoreError::Dir(e)
    }
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data dir.
    #[error("another clawlinkd (pid {pid}) is already using the data directory {dir}; stop it first or choose another --data-dir")]
    Locked {
        /// The data dir.
        dir: PathBuf,
        /// Pid written by the holder, if readable.
        pid: String,
    },
    /// The data dir is unusable. (Not a `source`: the message already holds it, and `{:#}`
    /// would print it twice.)
    #[error("data directory: {0}")]
    Dir(clawlink::paths::PrivateDirError),
    /// The store was written by a newer version.
    #[error("the store in {dir} has schema version {found}, newer than this clawlinkd understands ({SCHEMA_VERSION}); upgrade clawlinkd or point --data-dir elsewhere (nothing was changed)")]
    FutureSchema {
        /// The data dir.
        dir: PathBuf,
        /// The version found.
        found: u64,
    },
    /// sled failed (I/O error, corruption, disk full).
    #[error("store I/O: {0}")]
    Sled(#[from] sled::Error),
    /// A file operation failed (the data dir must be writable by the daemon).
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause, shown in the message (not chained, so it is printed once).
        error: std::io::Error,
    },
    /// A record could not be decoded.
    #[error("corrupt record in tree {tree}: {detail}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// What failed.
        detail: String,
    },
    /// The flusher is gone (the process is shutting down).
    #[error("the store is shutting down")]
    Closed,
    /// The inbox has reached a cap (see [`inbox_counts::Caps`]): the message was not stored, and
    /// its source must keep it (not acknowledged).
    #[error("the inbox is full ({total} messages, {bytes} bytes; caps: {max_messages} messages, {max_bytes} bytes); delete messages with `clawlink inbox rm ID` or `clawlink inbox rm --read` (or raise [inbox] max_messages / max_bytes)")]
    InboxFull {
        /// Messages stored.
        total: u64,
        /// Bytes stored.
        bytes: u64,
        /// The message cap.
        max_messages: u64,
        /// The byte cap.
        max_bytes: u64,
    },
}

impl From<StoreError> for clawlink::proto::ApiError {
    /// A store failure as the control API reports it (the daemon stays up; the client learns why).
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        clawlink::proto::ApiError::new("store", format!("the store failed: {e}"))
            .with_hint("check free disk space and permissions of the data directory")
    }
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The open database. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    dir: PathBuf,
    flush_tx: mpsc::UnboundedSender<oneshot::Sender<Result<(), String>>>,
    broken: tokio_util::sync::CancellationToken,
    closing: tokio_util::sync::CancellationToken,
    flusher: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Tasks that write and wait for flushes (the inbox writer): stopped before the flusher.
    writers: tokio_util::task::TaskTracker,
    /// Tells the writers to finish what they hold and end.
    stopping: tokio_util::sync::CancellationToken,
    _lock: File,
}

/// sled's page cache. Its default (1 GiB) lets a daemon's memory grow with everything it has
/// ever stored (the inbox keeps every message); the hour-long soak showed RSS rising by the
/// size of the data. Reads beyond the cache come from the OS page cache instead.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

impl Db {
    /// Opens (creating if needed) the store in `dir`, taking the data-dir lock.
    /// Must be called inside a tokio runtime (it starts the flusher task).
    pub fn open(dir: &Path) -> Result<Db> {
        clawlink::paths::ensure_private_dir(dir)?;
        let lock = take_lock(dir)?;
        let db = sled::Config::new()
            .path(dir.join("db"))
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema")? {
            Some(v) => {
                let found = decode_u64(&v).ok_or(StoreError::Corrupt {
                    tree: "meta",
                    detail: "schema version".into(),
                })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::FutureSchema {
                        dir: dir.to_path_buf(),
                        found,
                    });
                }
            }
            None => {
                meta.insert("schema", &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
            }
        }
        let (flush_tx, flush_rx) = mpsc::unbounded_channel();
        let broken = tokio_util::sync::CancellationToken::new();
        let closing = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(flusher(
            db.clone(),
            flush_rx,
            broken.clone(),
            closing.clone(),
        ));
        Ok(Db {
            inner: Arc::new(Inner {
                db,
                dir: dir.to_path_buf(),
                flush_tx,
                broken,
                closing,
                flusher: std::sync::Mutex::new(Some(task)),
                writers: tokio_util::task::TaskTracker::new(),
                stopping: tokio_util::sync::CancellationToken::new(),
                _lock: lock,
            }),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Opens a tree. For the submodules of `store` only.
    pub(crate) fn tree(&self, name: &'static str) -> Result<sled::Tree> {
        Ok(self.inner.db.open_tree(name)?)
    }

    /// The raw sled handle, for transactions across trees inside `store`.
    pub(crate) fn sled(&self) -> &sled::Db {
        &self.inner.db
    }

    /// Waits until everything written before this call is on disk (group commit).
    pub async fn durable(&self) -> Result<()> {
        self.flush_ticket()?.await
    }

    /// Asks for a flush of everything written before this call without waiting for it. Its
    /// failure is logged and breaks the store, as every flush's does.
    pub fn flush_soon(&self) -> Result<()> {
        // The request is queued before `flush_ticket` returns; the answer is not needed.
        self.flush_ticket().map(drop)
    }

    /// Asks for a flush covering everything written before this call, now, and returns what
    /// to await for its outcome. Unlike [`Db::durable`], the request is queued before the
    /// first poll, so a writer can go on with its next batch while this one is flushed.
    pub fn flush_ticket(&self) -> Result<impl std::future::Future<Output = Result<()>> + use<>> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .flush_tx
            .send(tx)
            .map_err(|_| StoreError::Closed)?;
        Ok(async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(e)))),
                Err(_) => Err(StoreError::Closed),
            }
        })
    }

    /// Starts a task that writes to the store and waits for flushes. It is given a token that
    /// is cancelled when the store closes: it must then finish what it holds and end, and
    /// [`Db::close`] waits for it before the last flush.
    pub(crate) fn spawn_writer<F, Fut>(&self, task: F)
    where
        F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.writers.spawn(task(self.inner.stopping.clone()));
    }

    /// Cancelled when a flush has failed (disk full, read-only, I/O error). sled refuses every
    /// write after its first I/O error, so the process must stop and be restarted (systemd
    /// `Restart=on-failure`) to continue once the disk is usable again. Nothing acknowledged is
    /// lost: acknowledgements wait for a successful flush.
    pub fn broken(&self) -> tokio_util::sync::CancellationToken {
        self.inner.broken.clone()
    }

    /// Cancels `shutdown` when the store breaks (see [`Db::broken`]): a server role then stops
    /// answering instead of refusing every write, and its service manager restarts it.
    pub fn stop_on_failure(&self, shutdown: tokio_util::sync::CancellationToken) {
        let broken = self.broken();
        tokio::spawn(async move {
            tokio::select! {
                _ = broken.cancelled() => {
                    tracing::error!("the store cannot write (disk full, read-only or failing); stopping");
                    shutdown.cancel();
                }
                _ = shutdown.cancelled() => {}
            }
        });
    }

    /// Stops the writers (each finishes the batch it holds), then the flusher: waiters already
    /// queued get one last flush, later ones [`StoreError::Closed`]. Returns once every one of
    /// those tasks has ended.
    pub async fn close(&self) {
        self.inner.stopping.cancel();
        self.inner.writers.close();
        self.inner.writers.wait().await;
        self.inner.closing.cancel();
        let task = self
            .inner
            .flusher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// Flushes on the calling thread, for a writer that runs on its own thread (the inbox
    /// writer). A failure breaks the store as a failed group flush does (see [`Db::broken`]).
    pub(crate) fn flush_blocking(&self) -> Result<()> {
        flush_or_break(&self.inner.db, &self.inner.broken)
            .map_err(|e| StoreError::Sled(sled::Error::Io(std::io::Error::other(e))))
    }

    /// Flushes synchronously; used once at shutdown.
    pub fn flush_now(&self) -> Result<()> {
        self.inner.db.flush()?;
        Ok(())
    }
}

async fn flusher(
    db: sled::Db,
    mut rx: mpsc::UnboundedReceiver<oneshot::Sender<Result<(), String>>>,
    broken: tokio_util::sync::CancellationToken,
    closing: tokio_util::sync::CancellationToken,
) {
    let mut closed = false;
    loop {
        let next = if closed {
            rx.recv().await
        } else {
            tokio::select! {
                w = rx.recv() => w,
                _ = closing.cancelled() => {
                    // No new waiters; the ones queued are answered below, then recv ends.
                    rx.close();
                    closed = true;
                    continue;
                }
            }
        };
        let Some(first) = next else { return };
        let mut waiters = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let (db2, broken2) = (db.clone(), broken.clone());
        let res = tokio::task::spawn_blocking(move || flush_or_break(&db2, &broken2))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "store flush failed; writes are not acknowledged");
                broken.cancel();
                Err(e.to_string())
            });
        for w in waiters {
            let _ = w.send(res.clone());
        }
    }
}

/// Flushes `db`. A failure is logged and breaks the store (see [`Db::broken`]): sled refuses
/// every write after its first I/O error.
fn flush_or_break(
    db: &sled::Db,
    broken: &tokio_util::sync::CancellationToken,
) -> std::result::Result<(), String> {
    db.flush().map(drop).map_err(|e| {
        tracing::error!(error = %e, "store flush failed; writes are not acknowledged");
        broken.cancel();
        e.to_string()
    })
}

fn take_lock(dir: &Path) -> Result<File> {
    let path = dir.join("lock");
    let io = |error| StoreError::Io {
        path: path.clone(),
        error,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(StoreError::Locked {
                dir: dir.to_path_buf(),
                pid: pid.trim().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

/// Decodes a big-endian u64.
pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// JSON-encodes a record.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
        tree: "encode",
        detail: e.to_string(),
    })
}

/// JSON-decodes a record of `tree`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens `dir` again in this process after its last handle was dropped. sled's own
    /// background thread lets go of its file lock just after the last handle, not with it, so
    /// a clash with that lock (a sled I/O error, which nothing else here returns) is retried
    /// until it is free, for at most 10 s.
    pub(crate) async fn reopen(dir: &Path) -> Result<Db> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Db::open(dir) {
                Err(StoreError::Sled(sled::Error::Io(e)))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    #[tokio::test]
    async fn second_open_is_refused_and_future_schema_is_an_error() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        // A fresh subdirectory: the temp dir itself may be 0755, which Db::open rightly refuses.
        let dir = tmp.path().join("data");
        let db = Db::open(&dir)?;
        db.durable().await?;
        assert!(matches!(Db::open(&dir), Err(StoreError::Locked { .. })));
        db.tree("meta")?.insert("schema", &99u64.to_be_bytes())?;
        db.flush_now()?;
        // sled keeps its own flock until every handle is gone: end the flusher (which holds
        // one) before dropping ours.
        db.close().await;
        assert!(matches!(db.durable().await, Err(StoreError::Closed)));
        drop(db);
        let again = reopen(&dir).await;
        assert!(
            matches!(again, Err(StoreError::FutureSchema { found: 99, .. })),
            "{:?}",
            again.err()
        );
        Ok(())
    }
}
