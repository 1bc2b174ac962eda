//! The connection actor: one task per gateway (URL and token) that owns its WebSocket.
//!
//! Why an actor: requests from the outbox, `ping` and `status` arrive concurrently, but a
//! WebSocket has one reader and one writer. The task serializes writes, correlates answers
//! by request id (ids are per connection; a second answer for an id, as `agent` sends, is
//! ignored), keeps reading so tungstenite answers WebSocket pings, and owns reconnection.
//!
//! Lifecycle (the `state` shown in `status`):
//! - `idle`: no socket. The first request opens one (`connecting`).
//! - `connected`: requests are written as they come; several can be in flight.
//!   Silence for twice `policy.tickIntervalMs` (the gateway ticks every 30 s) is a dead link.
//!   After `idle_timeout` without requests the socket is closed (`idle`).
//! - `backoff`: the link broke or a connect failed with a retryable error. Reconnects follow
//!   the shared [`crate::util::Backoff`] (250 ms doubling to 30 s, reset after 60 s connected) that
//!   never undercuts the gateway's `retryAfterMs`, while the connection is still wanted (a
//!   request in the last `idle_timeout`). A request arriving during backoff does not wait for
//!   the whole backoff: it triggers an attempt at most one second after the previous one,
//!   and fails with the real reason (connection refused, ...) if that attempt fails.
//!   A `shutdown` event or close 1012 is a gateway restart: the backoff restarts at 250 ms and
//!   no error is recorded.
//! - `failed`: a non-retryable connect error (bad token, not paired, protocol). Nothing is
//!   retried until the next request, which tries again (the owner may have approved us).
//!
//! Requests queued while connecting fail with the connect error. Requests in flight when the
//! link breaks fail as `Unreachable` (retryable): the gateway may or may not have acted, and the
//! idempotency key makes the retry safe. Per-request deadlines are enforced by the caller.

use super::error::{display_url, GatewayError};
use super::handshake::{Connector, Hello};
use super::pool::Tuning;
use super::socket::Ws;
use super::Delivery;
use clawlink::Secret;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a caller wants sent.
pub(crate) enum Call {
    /// Any method with ready params.
    Raw { method: String, params: Value },
    /// A message delivery; params are built with the connection's main session key.
    Deliver(Delivery),
}

/// A call and where its answer goes.
pub(crate) struct Cmd {
    pub call: Call,
    pub reply: oneshot::Sender<Result<Value, GatewayError>>,
}

/// What `status` shows about one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    pub state: &'static str,
    pub hello: Option<Hello>,
    pub last_error: Option<String>,
    pub rtt: Option<Duration>,
    pub restarting: bool,
}

/// The pool's side of an actor.
pub(crate) struct Handle {
    pub tx: mpsc::Sender<Cmd>,
    pub status: Arc<Mutex<Status>>,
    pub url: String,
}

/// Starts the actor for `url` authenticated with `token`.
pub(crate) fn spawn(
    url: String,
    token: Secret,
    connector: Arc<Connector>,
    tuning: Tuning,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Handle {
    let (tx, rx) = mpsc::channel(1024);
    let status = Arc::new(Mutex::new(Status {
        state: "idle",
        ..Status::default()
    }));
    let actor = Actor {
        shown: display_url(&url),
        url: url.clone(),
        token,
        connector,
        rx,
        status: status.clone(),
        queue: VecDeque::new(),
        backoff: crate::util::Backoff::new(tuning.backoff_min, tuning.backoff_max),
        last_attempt: None,
        not_before: None,
        last_used: Instant::now(),
        restart_at: None,
        tuning,
    };
    tracker.spawn(actor.run(shutdown.clone()));
    Handle { tx, status, url }
}

enum Phase {
    Idle,
    Connect,
    Connected(Box<Ws>, Hello),
    Backoff(Instant, GatewayError),
    Failed(GatewayError),
    Exit,
}

struct Pending {
    reply: oneshot::Sender<Result<Value, GatewayError>>,
    method: String,
    sent_at: Instant,
}

struct Actor {
    url: String,
    shown: String,
    token: Secret,
    connector: Arc<Connector>,
    rx: mpsc::Receiver<Cmd>,
    status: Arc<Mutex<Status>>,
    queue: VecDeque<Cmd>,
    backoff: crate::util::Backoff,
    last_attempt: Option<Instant>,
    not_before: Option<Instant>,
    last_used: Instant,
    restart_at: Option<Instant>,
    tuning: Tuning,
}

impl Actor {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut phase = Phase::Idle;
        loop {
            let step = async {
                match phase {
                    Phase::Idle => self.idle().await,
                    Phase::Connect => self.connect().await,
                    Phase::Connected(ws, hello) => self.serve(*ws, hello).await,
                    Phase::Backoff(until, err) => self.backoff(until, err).await,
                    Phase::Failed(err) => self.failed(err).await,
                    Phase::Exit => Phase::Exit,
                }
            };
            phase = tokio::select! {
                p = step => p,
                _ = shutdown.cancelled() => Phase::Exit,
            };
            if matches!(phase, Phase::Exit) {
                self.set(|s| s.state = "closed");
                return;
            }
        }
    }

    fn set(&self, f: impl FnOnce(&mut Status)) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
    }

    fn enqueue(&mut self, cmd: Cmd) {
        self.last_used = Instant::now();
        self.queue.retain(|c| !c.reply.is_closed());
        self.queue.push_back(cmd);
    }

    fn wanted(&self) -> bool {
        !self.queue.is_empty() || self.last_used.elapsed() < self.tuning.idle_timeout
    }

    async fn idle(&mut self) -> Phase {
        self.set(|s| s.state = "idle");
        match self.rx.recv().await {
            None => Phase::Exit,
            Some(cmd) => {
                self.enqueue(cmd);
                Phase::Connect
            }
        }
    }

    async fn connect(&mut self) -> Phase {
        self.set(|s| s.state = "connecting");
        self.last_attempt = Some(Instant::now());
        let connector = self.connector.clone();
        let (url, token) = (self.url.clone(), self.token.clone());
        let attempt = connector.connect(&url, &token);
        tokio::pin!(attempt);
        let result = loop {
            tokio::select! {
                r = &mut attempt => break r,
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.enqueue(cmd),
                    None => return Phase::Exit,
                },
            }
        };
        match result {
            Ok((ws, hello)) => {
                tracing::info!(url = %self.shown, protocol = hello.protocol, server = %hello.server_version, "gateway connected");
                self.not_before = None;
                self.restart_at = None;
                self.set(|s| {
                    s.state = "connected";
                    s.hello = Some(hello.clone());
                    s.last_error = None;
                    s.restarting = false;
                });
                Phase::Connected(Box::new(ws), hello)
            }
            Err(e) => {
                tracing::warn!(url = %self.shown, "gateway connect failed: {e}");
                for cmd in self.queue.drain(..) {
                    let _ = cmd.reply.send(Err(e.clone()));
                }
                // While a gateway restarts, refused connections are expected for a while.
                let restarting = self
                    .restart_at
                    .is_some_and(|t| t.elapsed() < self.tuning.stable_after);
                self.set(|s| {
                    s.restarting = restarting;
                    s.last_error = (!restarting || !e.is_retryable()).then(|| e.to_string());
                });
                if e.is_retryable() {
                    self.schedule(e)
                } else {
                    Phase::Failed(e)
                }
            }
        }
    }

    /// The next attempt after a retryable failure: jittered exponential, never before `retryAfterMs`.
    fn schedule(&mut self, e: GatewayError) -> Phase {
        let now = Instant::now();
        self.not_before = e.retry_after().map(|d| now + d);
        let until = now + self.backoff.next_wait(e.retry_after());
        Phase::Backoff(until, e)
    }

    async fn backoff(&mut self, until: Instant, err: GatewayError) -> Phase {
        self.set(|s| s.state = "backoff");
        loop {
            let mut wake = until;
            if !self.queue.is_empty() {
                let gap = self
                    .last_attempt
                    .map_or(Instant::now(), |t| t + self.tuning.demand_gap);
                wake = wake.min(gap.max(self.not_before.unwrap_or(gap)));
            }
            tokio::select! {
                _ = sleep_until(wake) => {
                    return if self.wanted() { Phase::Connect } else { Phase::Idle };
                }
                cmd = self.rx.recv() => match cmd {
                    None => return Phase::Exit,
                    Some(cmd) => {
                        // The gateway asked for a longer pause than the caller can wait: say so now.
                        if self.not_before.is_some_and(|nb| nb > Instant::now() + self.tuning.request_timeout) {
                            let _ = cmd.reply.send(Err(err.clone()));
                        } else {
                            self.enqueue(cmd);
                        }
                    }
                },
            }
        }
    }

    async fn failed(&mut self, err: GatewayError) -> Phase {
        self.set(|s| s.state = "failed");
        loop {
            match self.rx.recv().await {
                None => return Phase::Exit,
                Some(cmd) => {
                    if self
                        .last_attempt
                        .is_some_and(|t| t.elapsed() < self.tuning.demand_gap)
                    {
                        let _ = cmd.reply.send(Err(err.clone()));
                        continue;
                    }
                    self.enqueue(cmd);
                    return Phase::Connect;
                }
            }
        }
    }
}

mod serve;
