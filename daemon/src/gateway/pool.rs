//! [`Pool`]: the daemon's handle on every gateway it talks to.
//!
//! One connection actor per (gateway URL, token), opened on first use, kept warm while used,
//! closed after `idle_timeout` without requests. The handle is cheap to clone, `Send + Sync`,
//! and every method is safe to call concurrently. The actors are tasks of
//! [`PoolOptions::tracker`] and stop when [`PoolOptions::shutdown`] is cancelled (or when the
//! last clone of the pool is dropped).

use super::conn::{self, Call, Cmd, Handle};
use super::device::DeviceIdentity;
use super::error::{display_url, GatewayError};
use super::handshake::Connector;
use super::session::Session;
use super::tokens::DeviceTokens;
use super::Delivery;
use crate::util::hex;
use clawlink::proto::ConnectionRow;
use clawlink::Secret;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the pool behaves. Start from [`PoolOptions::new`] and change fields as needed.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// The device key file (created on first use, mode 0600), e.g. `DATA_DIR/device.key`.
    pub device_key_path: PathBuf,
    /// Device tokens issued by gateways (mode 0600), e.g. `DATA_DIR/device-tokens.json`.
    pub token_store_path: PathBuf,
    /// Deadline of one request, including connecting when needed.
    pub request_timeout: Duration,
    /// Deadline of TCP + TLS + WebSocket + `connect` handshake.
    pub connect_timeout: Duration,
    /// A connection without requests for this long is closed.
    pub idle_timeout: Duration,
    /// Scopes asked for. `system-event` needs `operator.admin`.
    pub scopes: Vec<String>,
    /// Stops every connection actor (the daemon's shutdown token).
    pub shutdown: CancellationToken,
    /// Owns the connection actors, so shutdown waits for them.
    pub tracker: TaskTracker,
    /// HTTP client for the `/healthz` probe of `ping` (the daemon passes its shared one).
    pub http: reqwest::Client,
    pub(crate) tuning: Tuning,
}

/// Internal timings, adjustable by the unit tests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub stable_after: Duration,
    pub demand_gap: Duration,
    pub max_frame: usize,
}

impl PoolOptions {
    /// Defaults with the key and token files in `data_dir`: 15 s requests, 10 s connects,
    /// 10 min idle, scope `operator.admin`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            device_key_path: data_dir.join("device.key"),
            token_store_path: data_dir.join("device-tokens.json"),
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            scopes: vec!["operator.admin".to_string()],
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            http: crate::util::http_client::build(),
            tuning: Tuning {
                idle_timeout: Duration::ZERO,
                request_timeout: Duration::ZERO,
                backoff_min: Duration::from_millis(250),
                backoff_max: Duration::from_secs(30),
                stable_after: Duration::from_secs(60),
                demand_gap: Duration::from_secs(1),
                max_frame: super::frame::MAX_INBOUND_FRAME,
            },
        }
    }
}

/// The gateway client pool. See the module docs.
#[derive(Clone)]
pub struct Pool {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) connector: Arc<Connector>,
    pub(super) opts: PoolOptions,
    conns: Mutex<HashMap<(String, String), Handle>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("device", &self.inner.connector.device)
            .field("connections", &self.rows().len())
            .finish()
    }
}

impl Pool {
    /// Loads (or creates) the device key and the token store.
    pub fn new(opts: PoolOptions) -> Result<Self, GatewayError> {
        let device = DeviceIdentity::load_or_create(&opts.device_key_path)?;
        let tokens = DeviceTokens::load(&opts.token_store_path);
        let mut opts = opts;
        opts.tuning.idle_timeout = opts.idle_timeout;
        opts.tuning.request_timeout = opts.request_timeout;
        let connector = Connector {
            device,
            tokens,
            scopes: opts.scopes.clone(),
            handshake_timeout: opts.connect_timeout,
            max_frame: opts.tuning.max_frame,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                connector: Arc::new(connector),
                opts,
                conns: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// This machine's device id (what a gateway owner approves).
    pub fn device_id(&self) -> &str {
        self.inner.connector.device.id()
    }

    /// Calls `method` with `params` through the warm connection to `url` and returns the
    /// answer's payload. An empty `token` means: use the device token this gateway issued, if any.
    /// A method answered twice (`agent`: an acknowledgement, then the result) returns the first.
    pub async fn request(
        &self,
        url: &str,
        token: &Secret,
        method: &str,
        params: Value,
    ) -> Result<Value, GatewayError> {
        self.call(
            url,
            token,
            method,
            Call::Raw {
                method: method.to_string(),
                params,
            },
        )
        .await
    }

    /// Delivers a message into the gateway's agent session (see [`Delivery`]).
    pub async fn send_message(
        &self,
        url: &str,
        token: &Secret,
        delivery: &Delivery,
    ) -> Result<Value, GatewayError> {
        self.call(
            url,
            token,
            delivery.method.as_str(),
            Call::Deliver(delivery.clone()),
        )
        .await
    }

    async fn call(
        &self,
        url: &str,
        token: &Secret,
        what: &str,
        call: Call,
    ) -> Result<Value, GatewayError> {
        check_url(url)?;
        let timeout = self.inner.opts.request_timeout;
        let timed_out = || GatewayError::Timeout {
            url: display_url(url),
            what: what.to_string(),
            after: timeout,
        };
        let (reply, answer) = oneshot::channel();
        let tx = self.actor(url, token);
        let deadline = tokio::time::Instant::now() + timeout;
        match tokio::time::timeout_at(deadline, tx.send(Cmd { call, reply })).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(stopped(url)),
            Err(_) => return Err(timed_out()),
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(stopped(url)),
            Err(_) => Err(timed_out()),
        }
    }

    fn actor(&self, url: &str, token: &Secret) -> tokio::sync::mpsc::Sender<Cmd> {
        let key = (
            url.trim().to_string(),
            hex(&Sha256::digest(token.expose().as_bytes())),
        );
        let mut conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = conns.get(&key).filter(|h| !h.tx.is_closed()) {
            return h.tx.clone();
        }
        let h = conn::spawn(
            key.0.clone(),
            token.clone(),
            self.inner.connector.clone(),
            self.inner.opts.tuning,
            &self.inner.opts.shutdown,
            &self.inner.opts.tracker,
        );
        let tx = h.tx.clone();
        conns.insert(key, h);
        tx
    }

    /// One request over a fresh connection that is closed afterwards (not pooled).
    pub async fn request_once(
        &self,
        url: &str,
        token: &Secret,
        method: &str,
        params: Value,
    ) -> Result<Value, GatewayError> {
        check_url(url)?;
        let mut s = Session::open(&self.inner.connector, url, token).await?;
        let r = s
            .call(method, &params, self.inner.opts.request_timeout)
            .await;
        s.close().await;
        r
    }

    /// One row per connection, for `status`.
    pub fn rows(&self) -> Vec<ConnectionRow> {
        let conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<ConnectionRow> =
            conns.values().map(|h| row(h, self.device_id())).collect();
        rows.sort_by(|a, b| a.target.cmp(&b.target));
        rows
    }
}

impl crate::status::StatusSource for Pool {
    fn rows(&self) -> Vec<ConnectionRow> {
        Pool::rows(self)
    }
}

fn row(h: &Handle, device_id: &str) -> ConnectionRow {
    let s = h.status.lock().map(|s| s.clone()).unwrap_or_default();
    let mut info = BTreeMap::new();
    info.insert("device_id".to_string(), device_id.to_string());
    if let Some(hello) = &s.hello {
        info.insert("protocol".into(), hello.protocol.to_string());
        info.insert("server_version".into(), hello.server_version.clone());
        info.insert("scopes".into(), hello.scopes.join(","));
        if let Some(m) = &hello.auth_method {
            info.insert("auth".into(), m.clone());
        }
    }
    if s.restarting {
        info.insert("restarting".into(), "true".into());
    }
    ConnectionRow {
        kind: "gateway".into(),
        target: display_url(&h.url),
        state: s.state.to_string(),
        last_error: s.last_error,
        rtt_ms: s.rtt.map(|d| d.as_secs_f64() * 1000.0),
        info,
    }
}

pub(crate) fn check_url(url: &str) -> Result<reqwest::Url, GatewayError> {
    let bad = |why: &str| {
        GatewayError::local(format!(
            "bad gateway URL {}: {why} (expected ws://HOST:PORT or wss://HOST)",
            display_url(url)
        ))
    };
    let u = reqwest::Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(u.scheme(), "ws" | "wss") {
        return Err(bad("the scheme must be ws or wss"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(u)
}

/// The connection task ended before answering (the daemon is shutting down, or the
/// connection was retired). Nothing says the gateway refused the request, so it is retryable:
/// a queued send stays queued and is tried again by the next connection.
fn stopped(url: &str) -> GatewayError {
    GatewayError::Unavailable {
        url: display_url(url),
        detail: "the connection task stopped before answering".into(),
        retry_after: None,
    }
}
