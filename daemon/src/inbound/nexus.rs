//! The Nexus poller: every joined session is polled for as long as the daemon runs.
//!
//! One task per joined session ([`NexusClient::start`]):
//!
//! ```text
//! loop:
//!   renew if due        POST /v1/sessions/SID/renew  {}        (at 2/3 of the TTL)
//!   poll                GET  /v1/sessions/SID/messages?after=CURSOR[&wait=S]
//!   store the page      inbox (source "nexus", source_id "SID/CURSOR"), one group-committed fsync
//!   advance the cursor  only after the page is durable
//!   short poll: sleep [nexus] poll_interval_secs; long poll: ask again at once
//! ```
//!
//! Long-poll (`wait=S`) is used when the server's `/health` has `capabilities.longPoll: true`
//! (the clawlink nexus-server does); `S` is the server's `longPollMaxWait`, shortened so a
//! renewal is never late. Errors back off exponentially (1 s … 60 s); 429 waits for
//! `Retry-After`. 404 `session_not_found` marks the session expired and ends its task;
//! 403 `agent_not_in_session` (we were removed) does the same with state `removed`.
//!
//! Each stored message carries `meta: {session, agent_id (ours), verified, cursor, own, system,
//! server, id}`. A crash between the inbox write and the cursor write re-fetches that page;
//! the inbox's dedup key stores it once.

use crate::agent::StatusSource;
use crate::inbound::Ingest;
use crate::outbound::nexus::{seg, Answer, Identity, NexusHttp};
use crate::store::inbox::NewMessage;
use crate::store::nexus_client::{JoinedSession, NexusSessions};
use crate::time::now_ms;
use clawlink::proto::ConnectionRow;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a server's `/health` capabilities are trusted.
const CAPS_TTL: Duration = Duration::from_secs(300);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Default, Clone)]
struct Live {
    state: String,
    last_error: Option<String>,
}

struct Inner {
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
}

/// The Nexus client side of the daemon: joined sessions, their pollers, their status rows.
#[derive(Clone)]
pub struct NexusClient {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn parse_ms(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(s.trim()).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
}

impl NexusClient {
    /// Builds the client; nothing runs until [`resume`](Self::resume) or [`start`](Self::start).
    pub fn new(
        store: NexusSessions,
        http: NexusHttp,
        ingest: Ingest,
        shutdown: CancellationToken,
        tracker: TaskTracker,
        cfg: &crate::config::NexusConfig,
    ) -> NexusClient {
        NexusClient {
            inner: Arc::new(Inner {
                store,
                http,
                ingest,
                shutdown,
                tracker,
                interval_secs: AtomicU64::new(cfg.poll_interval_secs.max(1)),
                long_poll: AtomicBool::new(cfg.long_poll),
                tasks: Mutex::default(),
                live: Mutex::default(),
                caps: Mutex::default(),
            }),
        }
    }

    /// The joined-sessions store.
    pub fn store(&self) -> &NexusSessions {
        &self.inner.store
    }

    /// The HTTP client.
    pub fn http(&self) -> &NexusHttp {
        &self.inner.http
    }

    /// Applies a (re)loaded `[nexus]` section (poll interval, long-poll switch).
    pub fn configure(&self, cfg: &crate::config::NexusConfig) {
        let i = &self.inner;
        i.interval_secs
            .store(cfg.poll_interval_secs.max(1), Ordering::Relaxed);
        i.long_poll.store(cfg.long_poll, Ordering::Relaxed);
    }

    /// Starts a poller for every active stored session; returns how many.
    pub fn resume(&self) -> crate::store::Result<usize> {
        let mut n = 0;
        for s in self.inner.store.list()? {
            if s.state == "active" {
                self.start(&s.sid);
                n += 1;
            }
        }
        Ok(n)
    }

    /// (Re)starts the poller of `sid`.
    pub fn start(&self, sid: &str) {
        self.stop(sid);
        let token = self.inner.shutdown.child_token();
        lock(&self.inner.tasks).insert(sid.to_string(), token.clone());
        self.set_live(sid, "polling", None);
        let me = self.clone();
        let sid = sid.to_string();
        self.inner
            .tracker
            .spawn(async move { me.run(sid, token).await });
    }

    /// Stops the poller of `sid` (if any) and drops its status row.
    pub fn stop(&self, sid: &str) {
        if let Some(t) = lock(&self.inner.tasks).remove(sid) {
            t.cancel();
        }
        lock(&self.inner.live).remove(sid);
    }

    fn live_state(&self, sid: &str) -> Option<String> {
        lock(&self.inner.live).get(sid).map(|l| l.state.clone())
    }

    fn set_live(&self, sid: &str, state: &str, err: Option<String>) {
        lock(&self.inner.live).insert(
            sid.to_string(),
            Live {
                state: state.into(),
                last_error: err,
            },
        );
    }

    /// Stores one page of messages in the inbox (durably, deduplicated). Returns how many were new.
    pub async fn ingest_page(
        &self,
        s: &JoinedSession,
        messages: &[Value],
    ) -> crate::store::Result<usize> {
        let stores = messages.iter().map(|m| {
            let text = m.get("text").and_then(Value::as_str);
            let body = match (text, m.get("json")) {
                (Some(t), _) => t.to_string(),
                (None, Some(j)) if !j.is_null() => j.to_string(),
                _ => String::new(),
            };
            let from = m.get("agentId").and_then(Value::as_str).unwrap_or("");
            let cursor = m
                .get("cursor")
                .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string));
            let id = m.get("id").and_then(Value::as_str);
            let key = cursor.clone().or(id.map(str::to_string));
            let mut meta = serde_json::Map::new();
            meta.insert("session".into(), json!(s.sid));
            meta.insert("server".into(), json!(s.server));
            meta.insert("agent_id".into(), json!(s.agent_id));
            meta.insert(
                "verified".into(),
                json!(m.get("verified") == Some(&json!(true))),
            );
            meta.insert("cursor".into(), json!(cursor));
            meta.insert("own".into(), json!(from == s.agent_id));
            meta.insert("system".into(), json!(from == "system"));
            if let Some(id) = id {
                meta.insert("id".into(), json!(id));
            }
            if let Some(j) = m.get("json").filter(|j| !j.is_null()) {
                meta.insert("json".into(), j.clone());
            }
            self.inner.ingest.store(NewMessage {
                source: "nexus".into(),
                source_id: key.map(|k| format!("{}/{k}", s.sid)),
                from: from.to_string(),
                message: body,
                meta,
            })
        });
        let mut new = 0;
        for r in futures_util::future::join_all(stores).await {
            if matches!(r?, crate::store::inbox::Stored::New(_)) {
                new += 1;
            }
        }
        Ok(new)
    }

    async fn caps(&self, server: &str) -> Option<u64> {
        if !self.inner.long_poll.load(Ordering::Relaxed) {
            return None;
        }
        if let Some((at, v)) = lock(&self.inner.caps).get(server) {
            if at.elapsed() < CAPS_TTL {
                return *v;
            }
        }
        let v = self.inner.http.long_poll(server).await;
        lock(&self.inner.caps).insert(server.to_string(), (Instant::now(), v));
        v
    }

    /// Marks `sid` as no longer pollable (`expired` or `removed`).
    async fn end(&self, sid: &str, state: &str, why: &str) {
        tracing::info!(state, "nexus session ended: {why}");
        let _ = self.inner.store.update(sid, |s| s.state = state.into());
        let _ = self.inner.store.db().durable().await;
        self.set_live(sid, state, Some(why.into()));
    }

    async fn renew(&self, s: &JoinedSession) -> Answer {
        let path = format!("/v1/sessions/{}/renew", seg(&s.sid));
        let who = Identity {
            agent: Some(&s.agent_id),
            key: Some(&s.key),
        };
        let a = self
            .inner
            .http
            .call(
                reqwest::Method::POST,
                &s.server,
                &path,
                who,
                Some(&json!({})),
                Duration::from_secs(15),
            )
            .await;
        if a.ok() {
            self.note_expiry(&s.sid, &a.body).await;
        }
        a
    }

    /// Saves `ttl` / `expiresAt` from a server answer.
    pub async fn note_expiry(&self, sid: &str, body: &Value) {
        let ttl = body.get("ttl").and_then(Value::as_u64);
        let exp = body
            .get("expiresAt")
            .and_then(Value::as_str)
            .map(str::to_string);
        let _ = self.inner.store.update(sid, |s| {
            if ttl.is_some() {
                s.ttl = ttl;
            }
            if exp.is_some() {
                s.expires_at = exp.clone();
            }
        });
    }

    async fn run(self, sid: String, cancel: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        let mut renew_retry_at = 0u64;
        let mut prefetched: Option<(String, Answer, Instant)> = None;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let s = match self.inner.store.get(&sid) {
                Ok(Some(s)) if s.state == "active" => s,
                _ => return,
            };
            let now = now_ms();
            let renew_at = renew_due(&s);
            if renew_at.is_none_or(|t| now >= t) && now >= renew_retry_at {
                let a =
                    tokio::select! { a = self.renew(&s) => a, _ = cancel.cancelled() => return };
                if !a.ok() {
                    renew_retry_at = now + 5_000;
                    let Some(d) = self.failure(&sid, &a, &mut backoff).await else {
                        return;
                    };
                    tokio::select! { _ = tokio::time::sleep(d) => {}, _ = cancel.cancelled() => return }
                    continue;
                }
            }
            let long = self.caps(&s.server).await;
            let wait = long.map(|max| {
                let to_renew = renew_at.map_or(max, |t| t.saturating_sub(now) / 1000);
                max.min(to_renew).max(1)
            });
            if long.is_some() && self.live_state(&sid).as_deref() == Some("polling") {
                // A long poll may hold for its whole wait: say so while it does.
                self.set_live(&sid, "long-poll", None);
            }
            let (a, started) = match prefetched.take() {
                Some((after, a, t)) if Some(&after) == s.cursor.as_ref() => (a, t),
                _ => {
                    let t = Instant::now();
                    let a = tokio::select! {
                        a = self.fetch(&s, s.cursor.as_deref(), wait) => a,
                        _ = cancel.cancelled() => return,
                    };
                    (a, t)
                }
            };
            let sleep = if a.ok() {
                let n = a
                    .body
                    .get("messages")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let next = cursor_of(a.body.get("nextCursor"));
                // Fetch the next page while this one is being stored (its cursor is saved only
                // once this page is durable, so a crash still re-fetches from the old cursor).
                let ahead = next.filter(|_| n > 0 && (long.is_some() || n >= 1000));
                let stored = tokio::select! {
                    r = async {
                        match &ahead {
                            Some(c) => {
                                let t = Instant::now();
                                let (r, pre) = tokio::join!(self.on_page(&s, &a.body), self.fetch(&s, Some(c), wait));
                                prefetched = Some((c.clone(), pre, t));
                                r
                            }
                            None => self.on_page(&s, &a.body).await,
                        }
                    } => r,
                    _ = cancel.cancelled() => return,
                };
                match stored {
                    Ok(n) => {
                        backoff = Duration::from_secs(1);
                        let state = if long.is_some() {
                            "long-poll"
                        } else {
                            "polling"
                        };
                        self.set_live(&sid, state, None);
                        let held = started.elapsed() > Duration::from_millis(300);
                        if n >= 1000 || (long.is_some() && (n > 0 || held)) {
                            None
                        } else if long.is_some() {
                            // A long poll answered empty at once: do not spin.
                            Some(Duration::from_secs(1))
                        } else {
                            Some(Duration::from_secs(
                                self.inner.interval_secs.load(Ordering::Relaxed),
                            ))
                        }
                    }
                    Err(e) => {
                        prefetched = None;
                        tracing::error!(error = %e, "nexus: cannot store polled messages; retrying");
                        self.set_live(&sid, "backoff", Some(format!("store: {e}")));
                        Some(next_backoff(&mut backoff))
                    }
                }
            } else {
                let p = self.failure(&sid, &a, &mut backoff).await;
                if p.is_none() {
                    return;
                }
                p
            };
            // Never sleep through a renewal.
            let sleep = sleep.map(|d| match renew_at {
                Some(t) => d.min(Duration::from_millis(t.saturating_sub(now_ms()).max(50))),
                None => d,
            });
            if let Some(d) = sleep {
                tokio::select! { _ = tokio::time::sleep(d) => {}, _ = cancel.cancelled() => return }
            }
        }
    }

    /// `GET .../messages?after=C[&wait=S]` as our agent.
    async fn fetch(&self, s: &JoinedSession, after: Option<&str>, wait: Option<u64>) -> Answer {
        let mut q = Vec::new();
        if let Some(c) = after {
            q.push(format!("after={}", seg(c)));
        }
        if let Some(w) = wait {
            q.push(format!("wait={w}"));
        }
        let mut path = format!("/v1/sessions/{}/messages", seg(&s.sid));
        if !q.is_empty() {
            path = format!("{path}?{}", q.join("&"));
        }
        let who = Identity {
            agent: Some(&s.agent_id),
            key: None,
        };
        let timeout = Duration::from_secs(wait.unwrap_or(0) + 20);
        let get = reqwest::Method::GET;
        self.inner
            .http
            .call(get, &s.server, &path, who, None, timeout)
            .await
    }

    /// Stores a page and advances the cursor; returns how many messages the page held.
    async fn on_page(&self, s: &JoinedSession, body: &Value) -> crate::store::Result<usize> {
        let empty = Vec::new();
        let msgs = body
            .get("messages")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        self.ingest_page(s, msgs).await?;
        if let Some(c) = cursor_of(body.get("nextCursor")) {
            self.inner.store.advance(&s.sid, &c, false)?;
        }
        if let Some(exp) = msgs
            .last()
            .and_then(|m| m.get("expiresAt"))
            .and_then(Value::as_str)
        {
            let newer = s
                .expires_at
                .as_deref()
                .and_then(parse_ms)
                .is_none_or(|old| parse_ms(exp).is_some_and(|n| n > old));
            if newer {
                let exp = exp.to_string();
                self.inner
                    .store
                    .update(&s.sid, |r| r.expires_at = Some(exp.clone()))?;
            }
        }
        Ok(msgs.len())
    }

    /// Handles a failed call: `None` when the session has ended, else how long to wait.
    async fn failure(&self, sid: &str, a: &Answer, backoff: &mut Duration) -> Option<Duration> {
        let code = a.code().unwrap_or("").to_string();
        if a.status == 404 && code == "session_not_found" {
            self.end(sid, "expired", "session_not_found").await;
            return None;
        }
        if a.status == 403 && code == "agent_not_in_session" {
            self.end(sid, "removed", "agent_not_in_session").await;
            return None;
        }
        let why = if a.status == 0 {
            code
        } else {
            format!("HTTP {} {code}", a.status)
        };
        tracing::debug!(status = a.status, "nexus poll failed; backing off");
        self.set_live(sid, "backoff", Some(why));
        if a.status == 429 {
            return Some(Duration::from_secs(
                a.retry_after.unwrap_or(5).clamp(1, 600),
            ));
        }
        Some(next_backoff(backoff))
    }
}

/// A cursor as servers send it: a decimal string (or a bare number).
fn cursor_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn next_backoff(b: &mut Duration) -> Duration {
    let d = *b;
    *b = (*b * 2).min(MAX_BACKOFF);
    d
}

/// When to renew: at 2/3 of the TTL, i.e. `expiresAt - ttl/3` (`None`: unknown, renew now).
fn renew_due(s: &JoinedSession) -> Option<u64> {
    let exp = parse_ms(s.expires_at.as_deref()?)?;
    let ttl_ms = s.ttl?.saturating_mul(1000);
    Some(exp.saturating_sub(ttl_ms / 3))
}

impl StatusSource for NexusClient {
    fn rows(&self) -> Vec<ConnectionRow> {
        let live = lock(&self.inner.live).clone();
        let Ok(list) = self.inner.store.list() else {
            return Vec::new();
        };
        list.into_iter()
            .map(|s| {
                let l = live.get(&s.sid).cloned().unwrap_or_else(|| Live {
                    state: if s.state == "active" {
                        "stopped".into()
                    } else {
                        s.state.clone()
                    },
                    last_error: None,
                });
                let mut info = std::collections::BTreeMap::new();
                info.insert("server".into(), s.server.clone());
                info.insert("agent_id".into(), s.agent_id.clone());
                info.insert("cursor".into(), s.cursor.clone().unwrap_or_default());
                info.insert("expires".into(), s.expires_at.clone().unwrap_or_default());
                ConnectionRow {
                    kind: "nexus".into(),
                    target: s.sid,
                    state: l.state,
                    last_error: l.last_error,
                    rtt_ms: None,
                    info,
                }
            })
            .collect()
    }
}
