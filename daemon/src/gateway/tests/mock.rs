//! A scripted gateway for the unit tests: a tokio-tungstenite server whose handler plays one
//! connection, plus the pool and wait helpers the tests share.

use crate::gateway::{Pool, PoolOptions};
use clawlink::Secret;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub(super) type Sw = WebSocketStream<TcpStream>;
pub(super) type R<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A scripted gateway: `handler(ws, n)` runs for the n-th accepted connection (from 0).
pub(super) struct Mock {
    pub(super) url: String,
    pub(super) conns: Arc<AtomicUsize>,
}

pub(super) async fn mock<F, Fut>(handler: F) -> R<Mock>
where
    F: Fn(Sw, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let conns = Arc::new(AtomicUsize::new(0));
    let counter = conns.clone();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                    handler(ws, n).await;
                }
            });
        }
    });
    Ok(Mock {
        url: format!("ws://{addr}"),
        conns,
    })
}

pub(super) async fn send(ws: &mut Sw, v: Value) {
    let _ = ws.send(Message::text(v.to_string())).await;
}

/// The next request frame: (id, method, params).
pub(super) async fn recv_req(ws: &mut Sw) -> Option<(String, String, Value)> {
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).ok()?;
            return Some((
                v["id"].as_str()?.to_string(),
                v["method"].as_str()?.to_string(),
                v["params"].clone(),
            ));
        }
    }
    None
}

pub(super) fn hello_ok(id: &str, tick_ms: u64, auth: Value) -> Value {
    json!({"type":"res","id":id,"ok":true,"payload":{"type":"hello-ok","protocol":4,
        "server":{"version":"mock-1","connId":"c"},"auth":auth,
        "policy":{"tickIntervalMs":tick_ms,"maxPayload":1048576},
        "snapshot":{"sessionDefaults":{"mainSessionKey":"agent:mock:main"}}}})
}

/// Challenge, connect, hello-ok; returns the connect params.
pub(super) async fn handshake(ws: &mut Sw, tick_ms: u64) -> Option<Value> {
    send(
        ws,
        json!({"type":"event","event":"connect.challenge","payload":{"nonce":"nonce-1","ts":1}}),
    )
    .await;
    let (id, method, params) = recv_req(ws).await?;
    assert_eq!(method, "connect");
    send(
        ws,
        hello_ok(
            &id,
            tick_ms,
            json!({"role":"operator","scopes":["operator.admin"],"method":"token"}),
        ),
    )
    .await;
    Some(params)
}

/// Answers every request with `{"echo": method}` until the peer goes.
pub(super) async fn echo(ws: &mut Sw) {
    while let Some((id, method, _)) = recv_req(ws).await {
        send(
            ws,
            json!({"type":"res","id":id,"ok":true,"payload":{"echo":method}}),
        )
        .await;
    }
}

pub(super) fn pool(dir: &tempfile::TempDir) -> Pool {
    let mut o = PoolOptions::new(dir.path());
    o.request_timeout = Duration::from_secs(3);
    o.connect_timeout = Duration::from_millis(500);
    o.tuning.backoff_min = Duration::from_millis(20);
    o.tuning.backoff_max = Duration::from_millis(200);
    o.tuning.demand_gap = Duration::from_millis(50);
    Pool::new(o).unwrap_or_else(|e| panic!("pool: {e}"))
}

pub(super) fn tok() -> Secret {
    Secret::new("mock-token-secret")
}

pub(super) async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
