//! Error paths a real gateway cannot be made to produce, against an in-process WebSocket
//! server that plays a scripted gateway: garbage frames, a silent peer, duplicate answers,
//! a tick gap, a restart, `retryAfterMs`. The real gateway is exercised by `tests/gateway.rs`.

use super::*;
use clawlink::Secret;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

mod mock;
use mock::*;

#[tokio::test]
async fn garbage_frames_are_skipped_and_the_answer_still_arrives() -> R {
    let m = mock(|mut ws, _| async move {
        handshake(&mut ws, 30_000).await;
        while let Some((id, _, _)) = recv_req(&mut ws).await {
            let _ = ws.send(Message::text("{not json")).await;
            let _ = ws.send(Message::binary(vec![1u8, 2, 3])).await;
            send(&mut ws, json!({"type":"res","ok":true})).await;
            send(&mut ws, json!({"type":"mystery","id":id})).await;
            send(
                &mut ws,
                json!({"type":"res","id":"999","ok":true,"payload":{}}),
            )
            .await;
            send(
                &mut ws,
                json!({"type":"res","id":id,"ok":true,"payload":{"fine":true}}),
            )
            .await;
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let p = pool(&dir);
    for _ in 0..3 {
        assert_eq!(
            p.request(&m.url, &tok(), "status", json!({})).await?,
            json!({"fine":true})
        );
    }
    assert_eq!(
        m.conns.load(Ordering::SeqCst),
        1,
        "garbage must not cost the connection"
    );
    Ok(())
}

#[tokio::test]
async fn a_peer_that_is_not_a_gateway_is_a_protocol_error() -> R {
    let m = mock(|mut ws, _| async move {
        let _ = ws.send(Message::text("hello, I am an echo server")).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let e = pool(&dir)
        .request(&m.url, &tok(), "status", json!({}))
        .await
        .err();
    assert!(
        matches!(e, Some(GatewayError::ProtocolMismatch { .. })),
        "{e:?}"
    );
    assert!(e.is_some_and(|e| !e.is_retryable()));
    Ok(())
}

#[tokio::test]
async fn a_silent_peer_hits_the_handshake_deadline() -> R {
    let m = mock(|ws, _| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(ws);
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let start = Instant::now();
    let e = pool(&dir)
        .request(&m.url, &tok(), "status", json!({}))
        .await
        .err();
    assert!(
        matches!(&e, Some(GatewayError::Timeout { what, .. }) if what == "connect"),
        "{e:?}"
    );
    assert!(e.is_some_and(|e| e.is_retryable()));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn a_second_answer_for_one_id_is_ignored() -> R {
    let m = mock(|mut ws, _| async move {
        handshake(&mut ws, 30_000).await;
        while let Some((id, _, _)) = recv_req(&mut ws).await {
            send(&mut ws, json!({"type":"res","id":id,"ok":true,"payload":{"status":"accepted","id":id}})).await;
            send(&mut ws, json!({"type":"res","id":id,"ok":false,"error":{"code":"UNAVAILABLE","message":"late"}})).await;
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let p = pool(&dir);
    let a = p.request(&m.url, &tok(), "agent", json!({})).await?;
    let b = p.request(&m.url, &tok(), "agent", json!({})).await?;
    assert_eq!(a["status"], "accepted");
    assert_ne!(a["id"], b["id"], "each request gets its own answer");
    assert_eq!(m.conns.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn a_tick_gap_is_a_dead_link_and_the_actor_reconnects() -> R {
    let m = mock(|mut ws, n| async move {
        handshake(&mut ws, 100).await;
        if n == 0 {
            // Swallow everything, say nothing: a half-open link.
            let _ = recv_req(&mut ws).await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        } else {
            echo(&mut ws).await;
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let p = pool(&dir);
    let start = Instant::now();
    let e = p.request(&m.url, &tok(), "status", json!({})).await.err();
    assert!(
        matches!(&e, Some(GatewayError::Unreachable { detail, .. }) if detail.contains("link is dead")),
        "{e:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "detected after {:?}",
        start.elapsed()
    );
    assert_eq!(
        p.request(&m.url, &tok(), "status", json!({})).await?,
        json!({"echo":"status"})
    );
    assert_eq!(m.conns.load(Ordering::SeqCst), 2);
    Ok(())
}

#[tokio::test]
async fn a_restart_is_reconnected_without_an_error() -> R {
    let m = mock(|mut ws, n| async move {
        handshake(&mut ws, 30_000).await;
        if n == 0 {
            if let Some((id, method, _)) = recv_req(&mut ws).await {
                send(
                    &mut ws,
                    json!({"type":"res","id":id,"ok":true,"payload":{"echo":method}}),
                )
                .await;
            }
            send(
                &mut ws,
                json!({"type":"event","event":"shutdown","payload":{"reason":"gateway stopping"}}),
            )
            .await;
            let _ = ws
                .close(Some(CloseFrame {
                    code: CloseCode::Restart,
                    reason: "service restart".into(),
                }))
                .await;
        } else {
            echo(&mut ws).await;
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let p = pool(&dir);
    p.request(&m.url, &tok(), "status", json!({})).await?;
    // The actor reconnects by itself (the connection is still wanted), with no error shown.
    wait_until("the reconnect", || {
        m.conns.load(Ordering::SeqCst) == 2
            && p.rows().first().is_some_and(|r| r.state == "connected")
    })
    .await;
    let row = p.rows().remove(0);
    assert_eq!(row.last_error, None);
    assert_eq!(row.info.get("protocol").map(String::as_str), Some("4"));
    assert_eq!(
        p.request(&m.url, &tok(), "status", json!({})).await?,
        json!({"echo":"status"})
    );
    Ok(())
}

#[tokio::test]
async fn unavailable_is_retryable_and_retry_after_is_honoured() -> R {
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let m = mock(move |mut ws, n| {
        let t = t.clone();
        async move {
            t.lock().map(|mut v| v.push(Instant::now())).ok();
            if n == 0 {
                send(&mut ws, json!({"type":"event","event":"connect.challenge","payload":{"nonce":"x"}})).await;
                if let Some((id, _, _)) = recv_req(&mut ws).await {
                    send(&mut ws, json!({"type":"res","id":id,"ok":false,"error":{"code":"UNAVAILABLE",
                        "message":"gateway starting; retry shortly","retryable":true,"retryAfterMs":400}})).await;
                    let _ = ws.close(Some(CloseFrame { code: CloseCode::Again, reason: "gateway starting".into() })).await;
                }
            } else {
                handshake(&mut ws, 30_000).await;
                echo(&mut ws).await;
            }
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let p = pool(&dir);
    let e = p.request(&m.url, &tok(), "status", json!({})).await.err();
    assert!(
        matches!(&e, Some(GatewayError::Unavailable { retry_after: Some(d), .. }) if *d == Duration::from_millis(400)),
        "{e:?}"
    );
    assert!(e.is_some_and(|e| e.is_retryable()));
    assert_eq!(
        p.request(&m.url, &tok(), "status", json!({})).await?,
        json!({"echo":"status"})
    );
    let v = times.lock().map(|v| v.clone()).unwrap_or_default();
    assert!(
        v.len() >= 2 && v[1] - v[0] >= Duration::from_millis(390),
        "reconnected after {:?}",
        v.get(1).map(|t| *t - v[0])
    );
    Ok(())
}

#[tokio::test]
async fn connect_is_signed_and_device_tokens_are_kept_and_reused() -> R {
    let seen = Arc::new(Mutex::new(Vec::<Value>::new()));
    let s = seen.clone();
    let m = mock(move |mut ws, _| {
        let s = s.clone();
        async move {
            send(&mut ws, json!({"type":"event","event":"connect.challenge","payload":{"nonce":"nonce-7"}})).await;
            let Some((id, _, params)) = recv_req(&mut ws).await else { return };
            s.lock().map(|mut v| v.push(params)).ok();
            let auth = json!({"role":"operator","scopes":["operator.admin"],"deviceToken":"issued-dt-secret","issuedAtMs":5});
            send(&mut ws, hello_ok(&id, 30_000, auth)).await;
            echo(&mut ws).await;
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let p = pool(&dir);
    p.request(&m.url, &tok(), "health", json!({})).await?;
    let stored = std::fs::read_to_string(dir.path().join("device-tokens.json"))?;
    assert!(stored.contains("issued-dt-secret"));
    assert!(
        !format!("{p:?}").contains("issued-dt-secret")
            && !format!("{p:?}").contains("mock-token-secret")
    );
    drop(p);
    // A new pool (a restarted daemon) without a configured token uses the issued device token.
    let p2 = pool(&dir);
    p2.request(&m.url, &Secret::default(), "health", json!({}))
        .await?;
    let v = seen.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(v.len(), 2);
    let mut keys: Vec<&str> = v[0]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "auth",
            "client",
            "device",
            "maxProtocol",
            "minProtocol",
            "role",
            "scopes"
        ]
    );
    assert_eq!(v[0]["auth"], json!({"token":"mock-token-secret"}));
    assert_eq!(v[0]["client"]["id"], "gateway-client");
    assert_eq!(v[0]["client"]["mode"], "backend");
    assert_eq!(
        (v[0]["minProtocol"].as_u64(), v[0]["maxProtocol"].as_u64()),
        (Some(3), Some(4))
    );
    assert_eq!(v[0]["device"]["id"].as_str(), Some(p2.device_id()));
    assert_eq!(v[0]["device"]["nonce"], "nonce-7");
    assert_eq!(v[1]["auth"], json!({"deviceToken":"issued-dt-secret"}));
    Ok(())
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_reopened_on_demand() -> R {
    let m = mock(|mut ws, _| async move {
        handshake(&mut ws, 30_000).await;
        echo(&mut ws).await;
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let mut o = PoolOptions::new(dir.path());
    o.idle_timeout = Duration::from_millis(150);
    let p = Pool::new(o)?;
    p.request(&m.url, &tok(), "status", json!({})).await?;
    wait_until("idle", || {
        p.rows().first().is_some_and(|r| r.state == "idle")
    })
    .await;
    p.request(&m.url, &tok(), "status", json!({})).await?;
    assert_eq!(m.conns.load(Ordering::SeqCst), 2);
    Ok(())
}

#[test]
fn deliveries_map_to_exactly_the_documented_params() -> R {
    let d = |method, session: Option<&str>| Delivery {
        method,
        session: session.map(str::to_string),
        text: "hello".into(),
        idempotency_key: "k1".into(),
    };
    let params = |d: Delivery| -> R<Value> {
        Ok(serde_json::from_str::<Value>(&d.frame("1", "agent:main:main")?)?["params"].clone())
    };
    assert_eq!(
        params(d(DeliveryMethod::SystemEvent, None))?,
        json!({"text":"hello","idempotencyKey":"k1"})
    );
    assert_eq!(
        params(d(DeliveryMethod::SystemEvent, Some("s")))?,
        json!({"text":"hello","sessionKey":"s","idempotencyKey":"k1"})
    );
    assert_eq!(
        params(d(DeliveryMethod::Wake, None))?,
        json!({"mode":"now","text":"hello"})
    );
    assert_eq!(
        params(d(DeliveryMethod::ChatSend, None))?,
        json!({"sessionKey":"agent:main:main","message":"hello","idempotencyKey":"k1"})
    );
    assert_eq!(
        params(d(DeliveryMethod::Agent, Some("s")))?,
        json!({"message":"hello","idempotencyKey":"k1","sessionKey":"s"})
    );
    assert_eq!(
        params(d(DeliveryMethod::Agent, None))?,
        json!({"message":"hello","idempotencyKey":"k1","sessionKey":"agent:main:main"})
    );
    assert!(!format!("{:?}", d(DeliveryMethod::Agent, None)).contains("hello"));
    assert_eq!(
        "chat.send".parse::<DeliveryMethod>()?,
        DeliveryMethod::ChatSend
    );
    assert!("system_event".parse::<DeliveryMethod>().is_err());
    Ok(())
}

#[test]
fn the_pool_is_a_send_sync_clonable_handle() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Pool>();
}

#[tokio::test]
async fn websocket_pings_are_answered_while_idle() -> R {
    let m = mock(|mut ws, _| async move {
        handshake(&mut ws, 30_000).await;
        let mut pong = false;
        let mut pinged = false;
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Pong(p) if p.as_ref() == b"are-you-there" => pong = true,
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or_default();
                    let id = v["id"].as_str().unwrap_or_default().to_string();
                    send(
                        &mut ws,
                        json!({"type":"res","id":id,"ok":true,"payload":{"pong":pong}}),
                    )
                    .await;
                    if !pinged {
                        pinged = true;
                        let _ = ws
                            .send(Message::Ping(b"are-you-there".to_vec().into()))
                            .await;
                    }
                }
                _ => {}
            }
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let p = pool(&dir);
    assert_eq!(
        p.request(&m.url, &tok(), "status", json!({})).await?,
        json!({"pong": false})
    );
    // No request in between: the actor keeps reading, so tungstenite answers the ping.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        p.request(&m.url, &tok(), "status", json!({})).await?,
        json!({"pong": true})
    );
    Ok(())
}

#[tokio::test]
async fn a_request_cut_off_by_shutdown_is_retryable() -> R {
    let asked = Arc::new(tokio::sync::Notify::new());
    let told = asked.clone();
    let m = mock(move |mut ws, _| {
        let told = told.clone();
        async move {
            handshake(&mut ws, 30_000).await;
            // Takes the request and never answers it.
            while recv_req(&mut ws).await.is_some() {
                told.notify_one();
            }
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut o = PoolOptions::new(dir.path());
    o.request_timeout = Duration::from_secs(10);
    o.shutdown = shutdown.clone();
    let p = Pool::new(o)?;
    let url = m.url.clone();
    let call = tokio::spawn(async move { p.request(&url, &tok(), "status", json!({})).await });
    asked.notified().await;
    shutdown.cancel();
    let e = call.await?.err();
    // A queued send must stay queued: the gateway never refused it.
    assert!(matches!(e, Some(GatewayError::Unavailable { .. })), "{e:?}");
    assert!(e.is_some_and(|e| e.is_retryable()));
    Ok(())
}
