//! The Nexus transport: every joined NexusMessaging session, polled for as long as the daemon
//! runs, and the typed client the `clawlink nexus ...` commands go through.
//!
//! Why one folder: the protocol's messages ([`wire`], shared with the server role
//! [`crate::nexus_server`]), the typed HTTP [`client`] (every URL of the protocol is built
//! there), the background [`poller`], the page [`ingest`] (messages → inbox, cursor parsing),
//! the `status` rows ([`status`]) and its [`Transport`](crate::transport::Transport) entry
//! ([`transport`]) are one protocol. The control handler is a thin adapter over [`Nexus`].
//!
//! Plain messages we send carry a member signature, and each member's key is pinned per
//! session on first announce ([`members`]): the server's `verified` flag only says "knew the
//! session key".
//!
//! Nexus sends do not go through the outbox (the protocol's CLI prints the server's reply at
//! once), so the transport accepts no outbox address; it is in the registry for its start,
//! its status rows and its handle.

pub mod client;
pub mod ingest;
pub mod members;
pub mod poller;
pub mod status;
pub mod transport;
pub mod wire;

pub use client::{Answer, Identity, NexusHttp, Page, DEFAULT_SERVER};

use crate::inbound::Ingest;
use crate::store::nexus_client::{JoinedSession, NexusSessions};
use crate::store::nexus_members::NexusMembers;
use crate::transport::Context;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Default, Clone)]
struct Live {
    state: String,
    last_error: Option<String>,
}

/// The Nexus client side of the daemon: joined sessions, their pollers, their status rows.
pub struct Nexus {
    store: NexusSessions,
    http: NexusHttp,
    ingest: Ingest,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    interval_secs: AtomicU64,
    long_poll: AtomicBool,
    tasks: Mutex<HashMap<String, CancellationToken>>,
    live: Mutex<HashMap<String, Live>>,
    caps: Mutex<HashMap<String, (Instant, Option<u64>)>>,
    /// Our identity, which signs what we send.
    trust: Arc<crate::trust::Trust>,
    /// Member keys pinned per session.
    members: NexusMembers,
    /// Signed and forged counts per session (since start).
    sig_counts: Mutex<HashMap<String, members::SigCounts>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens the joined sessions and resumes polling every active one; `trust` holds the
/// identity that signs our messages.
pub fn start(ctx: &Context, trust: Arc<crate::trust::Trust>) -> anyhow::Result<Arc<Nexus>> {
    let cfg = ctx.config.get();
    let nexus = Arc::new(Nexus {
        store: NexusSessions::open(&ctx.db)?,
        http: NexusHttp::new(ctx.http.clone()),
        ingest: ctx.ingest.clone(),
        shutdown: ctx.shutdown.clone(),
        tracker: ctx.tracker.clone(),
        interval_secs: AtomicU64::new(cfg.nexus.poll_interval_secs.max(1)),
        long_poll: AtomicBool::new(cfg.nexus.long_poll),
        tasks: Mutex::default(),
        live: Mutex::default(),
        caps: Mutex::default(),
        trust,
        members: NexusMembers::open(&ctx.db)?,
        sig_counts: Mutex::default(),
    });
    let polled = nexus.resume()?;
    tracing::info!(sessions = polled, "nexus sessions resumed");
    Ok(nexus)
}

impl Nexus {
    /// The joined-sessions store.
    pub fn store(&self) -> &NexusSessions {
        &self.store
    }

    /// The HTTP client.
    pub fn http(&self) -> &NexusHttp {
        &self.http
    }

    /// Applies a (re)loaded `[nexus]` section (poll interval, long-poll switch).
    pub fn configure(&self, cfg: &crate::config::NexusConfig) {
        self.interval_secs
            .store(cfg.poll_interval_secs.max(1), Ordering::Relaxed);
        self.long_poll.store(cfg.long_poll, Ordering::Relaxed);
    }

    /// Starts a poller for every active stored session; returns how many.
    pub fn resume(self: &Arc<Self>) -> crate::store::Result<usize> {
        let mut n = 0;
        for s in self.store.list()? {
            if s.state == "active" {
                self.start(&s.sid);
                n += 1;
            }
        }
        Ok(n)
    }

    /// (Re)starts the poller of `sid`.
    pub fn start(self: &Arc<Self>, sid: &str) {
        self.stop(sid);
        let token = self.shutdown.child_token();
        lock(&self.tasks).insert(sid.to_string(), token.clone());
        self.set_live(sid, "polling", None);
        let me = self.clone();
        let sid = sid.to_string();
        self.tracker.spawn(async move { me.run(sid, token).await });
    }

    /// Stops the poller of `sid` (if any) and drops its status row.
    pub fn stop(&self, sid: &str) {
        if let Some(t) = lock(&self.tasks).remove(sid) {
            t.cancel();
        }
        lock(&self.live).remove(sid);
    }

    fn live_state(&self, sid: &str) -> Option<String> {
        lock(&self.live).get(sid).map(|l| l.state.clone())
    }

    fn set_live(&self, sid: &str, state: &str, err: Option<String>) {
        lock(&self.live).insert(
            sid.to_string(),
            Live {
                state: state.into(),
                last_error: err,
            },
        );
    }

    /// Saves the `ttl` / `expiresAt` of a server answer (create, renew, send), where given.
    pub async fn note_expiry(&self, sid: &str, ttl: Option<u64>, exp: Option<String>) {
        let _ = self.store.update(sid, |s| {
            if ttl.is_some() {
                s.ttl = ttl;
            }
            if exp.is_some() {
                s.expires_at = exp.clone();
            }
        });
    }

    /// `clawlink nexus poll`: one page from `after` (default: the saved read cursor), stored
    /// in the inbox; the read cursor advances only when no `after` was given.
    pub async fn poll_once(
        &self,
        s: &JoinedSession,
        after: Option<String>,
        members: bool,
    ) -> crate::store::Result<Answer> {
        let saved = after.is_none();
        let from = after.or_else(|| s.read_cursor.clone());
        let page = Page {
            after: from.as_deref(),
            wait: None,
            members,
        };
        let a = self.http.messages(s, page, client::CLI_DEADLINE).await;
        if a.ok() {
            let got: wire::PollAnswer = a.read();
            self.ingest_page(s, &got.messages).await?;
            if let (true, Some(c)) = (saved, ingest::cursor_of(got.next_cursor.as_ref())) {
                self.store.advance(&s.sid, &c, true)?;
                self.store.db().durable().await?;
            }
        }
        Ok(a)
    }
}
