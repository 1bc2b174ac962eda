//! The poller: one task per joined session ([`Nexus::start`]), for as long as the daemon runs.
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
//! renewal is never late. Errors back off with the shared [`Backoff`] (1 s … 60 s); 429 waits
//! for `Retry-After`. 404 `session_not_found` marks the session expired and ends its task;
//! 403 `agent_not_in_session` (we were removed) does the same with state `removed`.
//!
//! A crash between the inbox write and the cursor write re-fetches that page; the inbox's
//! dedup key stores it once.

use super::ingest::{cursor_of, parse_ms};
use super::wire::{PollAnswer, RenewAnswer};
use super::{lock, Answer, Nexus, Page};
use crate::store::nexus_client::JoinedSession;
use crate::time::now_ms;
use crate::util::Backoff;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a server's `/health` capabilities are trusted.
const CAPS_TTL: Duration = Duration::from_secs(300);
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Deadline of a renewal.
const RENEW_DEADLINE: Duration = Duration::from_secs(15);

/// When to renew: at 2/3 of the TTL, i.e. `expiresAt - ttl/3` (`None`: unknown, renew now).
fn renew_due(s: &JoinedSession) -> Option<u64> {
    let exp = parse_ms(s.expires_at.as_deref()?)?;
    let ttl_ms = s.ttl?.saturating_mul(1000);
    Some(exp.saturating_sub(ttl_ms / 3))
}

impl Nexus {
    async fn caps(&self, server: &str) -> Option<u64> {
        if !self.long_poll.load(Ordering::Relaxed) {
            return None;
        }
        if let Some((at, v)) = lock(&self.caps).get(server) {
            if at.elapsed() < CAPS_TTL {
                return *v;
            }
        }
        let v = self.http.long_poll(server).await;
        lock(&self.caps).insert(server.to_string(), (Instant::now(), v));
        v
    }

    /// Marks `sid` as no longer pollable (`expired` or `removed`).
    async fn end(&self, sid: &str, state: &str, why: &str) {
        tracing::info!(state, "nexus session ended: {why}");
        let _ = self.store.update(sid, |s| s.state = state.into());
        // No more messages will come: the member keys of the session are not needed.
        self.forget_members(sid);
        let _ = self.store.db().durable().await;
        self.set_live(sid, state, Some(why.into()));
    }

    async fn renew(&self, s: &JoinedSession) -> Answer {
        let a = self.http.renew(s, None, RENEW_DEADLINE).await;
        if a.ok() {
            let r: RenewAnswer = a.read();
            self.note_expiry(&s.sid, r.ttl, r.expires_at).await;
        }
        a
    }

    /// `GET .../messages?after=C[&wait=S]` as our agent.
    async fn fetch(&self, s: &JoinedSession, after: Option<&str>, wait: Option<u64>) -> Answer {
        let page = Page {
            after,
            wait,
            members: false,
        };
        let timeout = Duration::from_secs(wait.unwrap_or(0) + 20);
        self.http.messages(s, page, timeout).await
    }

    pub(super) async fn run(self: Arc<Self>, sid: String, cancel: CancellationToken) {
        let mut backoff = Backoff::new(MIN_BACKOFF, MAX_BACKOFF).with_jitter(0.0);
        let mut renew_retry_at = 0u64;
        let mut prefetched: Option<(String, Answer, Instant)> = None;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let s = match self.store.get(&sid) {
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
            let long =
                tokio::select! { l = self.caps(&s.server) => l, _ = cancel.cancelled() => return };
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
                let page: PollAnswer = a.read();
                let n = page.messages.len();
                let next = cursor_of(page.next_cursor.as_ref());
                // Fetch the next page while this one is being stored (its cursor is saved only
                // once this page is durable, so a crash still re-fetches from the old cursor).
                let ahead = next.filter(|_| n > 0 && (long.is_some() || n >= 1000));
                let stored = tokio::select! {
                    r = async {
                        match &ahead {
                            Some(c) => {
                                let t = Instant::now();
                                let (r, pre) = tokio::join!(self.on_page(&s, &page), self.fetch(&s, Some(c), wait));
                                prefetched = Some((c.clone(), pre, t));
                                r
                            }
                            None => self.on_page(&s, &page).await,
                        }
                    } => r,
                    _ = cancel.cancelled() => return,
                };
                match stored {
                    Ok(n) => {
                        backoff.reset();
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
                                self.interval_secs.load(Ordering::Relaxed),
                            ))
                        }
                    }
                    Err(e) => {
                        prefetched = None;
                        tracing::error!(error = %e, "nexus: cannot store polled messages; retrying");
                        self.set_live(&sid, "backoff", Some(format!("store: {e}")));
                        Some(backoff.next_wait(None))
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
                // A full inbox that gets room again ends the wait (the page is fetched again).
                tokio::select! {
                    _ = tokio::time::sleep(d) => {},
                    _ = self.ingest.inbox().room() => {},
                    _ = cancel.cancelled() => return,
                }
            }
        }
    }

    /// Handles a failed call: `None` when the session has ended, else how long to wait.
    async fn failure(&self, sid: &str, a: &Answer, backoff: &mut Backoff) -> Option<Duration> {
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
        Some(backoff.next_wait(None))
    }
}
