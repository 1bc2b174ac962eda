//! The gateway client (`clawlinkd::gateway`) against a REAL OpenClaw gateway (the pinned
//! `openclaw` package, see `scripts/gateway-env.sh`): ping, auth errors, `system-event`
//! delivery checked through the gateway's own `status`, device identity and pairing, device
//! tokens, restarts, and secrets kept out of `Debug`.

use clawlink::proto::ApiError;
use clawlink::Secret;
use clawlink_tests::gateway::Gateway;
use clawlinkd::gateway::{ping_reply, Delivery, DeliveryMethod, GatewayError, Pool, PoolOptions};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

type R = Result<(), Box<dyn std::error::Error>>;

fn pool(dir: &Path) -> Pool {
    Pool::new(PoolOptions::new(dir)).unwrap_or_else(|e| panic!("pool: {e}"))
}

fn system_event(text: &str, key: &str) -> Delivery {
    Delivery {
        method: DeliveryMethod::SystemEvent,
        session: None,
        text: text.into(),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn ping_reports_protocol_version_and_scopes() -> R {
    let gw = Gateway::shared();
    let dir = tempfile::tempdir()?;
    let p = pool(dir.path());
    let info = p.ping(&gw.url, &Secret::new(gw.token.clone())).await?;
    assert!(info.authenticated);
    assert_eq!(info.protocol, Some(4));
    assert_eq!(info.server_version.as_deref(), Some("2026.9.6"));
    assert!(
        info.scopes.iter().any(|s| s == "operator.admin"),
        "{:?}",
        info.scopes
    );
    assert!(info.rtt > Duration::ZERO && info.rtt < Duration::from_secs(5));
    assert_eq!(info.main_session_key.as_deref(), Some("agent:main:main"));
    let reply = ping_reply(&gw.url, &Ok(info));
    assert!(reply.reachable && reply.auth_ok == Some(true) && reply.error.is_none());

    // Without credentials only reachability is checked, over HTTP /healthz on the same port.
    let bare = p.ping(&gw.url, &Secret::default()).await?;
    assert!(!bare.authenticated && bare.protocol.is_none());
    Ok(())
}

#[tokio::test]
async fn a_wrong_token_is_a_clear_auth_error() -> R {
    let gw = Gateway::shared();
    let dir = tempfile::tempdir()?;
    let p = pool(dir.path());
    let wrong = Secret::new("definitely-not-the-token");
    let e = p
        .ping(&gw.url, &wrong)
        .await
        .err()
        .ok_or("ping with a wrong token succeeded")?;
    assert!(
        matches!(&e, GatewayError::Auth { code, .. } if code == "AUTH_TOKEN_MISMATCH"),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    let api = ApiError::from(&e);
    assert_eq!(api.code, "gateway_auth_failed");
    assert!(api.hint.unwrap_or_default().contains("check the token"));
    let reply = ping_reply(&gw.url, &Err(e));
    assert!(reply.reachable && reply.auth_ok == Some(false));

    // The same through the pool, and the row says what went wrong.
    let e = p
        .send_message(&gw.url, &wrong, &system_event("never", "k-wrong"))
        .await
        .err()
        .ok_or("send succeeded")?;
    assert!(matches!(e, GatewayError::Auth { .. }), "{e:?}");
    let row = p.rows().into_iter().next().ok_or("no row")?;
    assert_eq!(row.state, "failed");
    assert!(row
        .last_error
        .unwrap_or_default()
        .contains("token mismatch"));
    assert!(!gw.queued().iter().any(|t| t == "never"));
    Ok(())
}

#[tokio::test]
async fn a_system_event_lands_in_the_session_queue() -> R {
    let gw = Gateway::shared();
    let dir = tempfile::tempdir()?;
    let p = pool(dir.path());
    let token = Secret::new(gw.token.clone());
    let text = format!("hello from clawlink {}", std::process::id());
    let answer = p
        .send_message(&gw.url, &token, &system_event(&text, "idem-1"))
        .await?;
    assert_eq!(answer, json!({"ok": true}));
    assert!(gw.queued().contains(&text), "not queued: {:?}", gw.queued());

    // The connection stays warm: a second send reuses it, and the row shows it.
    let text2 = format!("{text} (2)");
    p.send_message(&gw.url, &token, &system_event(&text2, "idem-2"))
        .await?;
    assert!(gw.queued().contains(&text2));
    let rows = p.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, "connected");
    assert_eq!(rows[0].info.get("protocol").map(String::as_str), Some("4"));
    assert_eq!(
        rows[0].info.get("server_version").map(String::as_str),
        Some("2026.9.6")
    );
    assert!(rows[0].rtt_ms.is_some() && rows[0].last_error.is_none());

    // A request the gateway refuses is reported as rejected, not retried.
    let e = p
        .request(
            &gw.url,
            &token,
            "system-event",
            json!({"text": "x", "bogus": 1}),
        )
        .await
        .err()
        .ok_or("accepted")?;
    assert!(
        matches!(&e, GatewayError::Rejected { code, .. } if code == "INVALID_REQUEST")
            && !e.is_retryable(),
        "{e:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_device_identity_is_signed_private_and_stable() -> R {
    let gw = Gateway::shared();
    let dir = tempfile::tempdir()?;
    let token = Secret::new(gw.token.clone());
    let p = pool(dir.path());
    // Every connect carries the signed device; a bad signature would be refused even on loopback.
    p.request(&gw.url, &token, "health", json!({})).await?;
    let key = dir.path().join("device.key");
    assert_eq!(std::fs::metadata(&key)?.permissions().mode() & 0o777, 0o600);
    let id = p.device_id().to_string();
    assert_eq!(id.len(), 64);
    drop(p);
    let again = pool(dir.path());
    assert_eq!(
        again.device_id(),
        id,
        "the key is reused across pool instances"
    );
    again.request(&gw.url, &token, "health", json!({})).await?;
    Ok(())
}

#[tokio::test]
async fn a_remote_device_is_paired_once_then_its_device_token_is_used() -> R {
    let gw = Gateway::shared();
    let url = gw
        .lan_url()
        .ok_or("this machine has no non-loopback IPv4 address to test remote pairing through")?;
    let dir = tempfile::tempdir()?;
    let token = Secret::new(gw.token.clone());
    let p = pool(dir.path());

    // Not loopback: the gateway wants the owner to approve this device first.
    let e = p
        .request(&url, &token, "health", json!({}))
        .await
        .err()
        .ok_or("an unknown remote device was admitted")?;
    let GatewayError::NotPaired {
        device_id,
        request_id,
        ..
    } = &e
    else {
        panic!("expected NotPaired, got {e:?}")
    };
    assert_eq!(device_id, p.device_id());
    let rid = request_id.clone().ok_or("no request id")?;
    let hint = e.hint().unwrap_or_default();
    assert!(
        e.to_string().contains(p.device_id())
            && hint.contains(&format!("openclaw devices approve {rid}")),
        "{e} / {hint}"
    );
    assert!(!e.is_retryable());

    let out = gw.openclaw(&["devices", "approve", &rid]);
    assert!(
        out.status.success(),
        "approve failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Approved: the next request connects, and the gateway issues a device token we keep.
    let answer = p.request(&url, &token, "health", json!({})).await?;
    assert_eq!(answer["ok"], json!(true));
    let tokens = dir.path().join("device-tokens.json");
    assert_eq!(
        std::fs::metadata(&tokens)?.permissions().mode() & 0o777,
        0o600
    );
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&tokens)?)?;
    let entry = &stored["tokens"][url.as_str()];
    assert_eq!(entry["deviceId"].as_str(), Some(p.device_id()));
    assert!(entry["token"]
        .as_str()
        .is_some_and(|t| !t.is_empty() && t != gw.token));
    drop(p);

    // A restarted daemon with no token configured for this gateway gets in with the device token.
    let p2 = pool(dir.path());
    let sent = format!("via device token {}", std::process::id());
    p2.send_message(&url, &Secret::default(), &system_event(&sent, "idem-dev"))
        .await?;
    assert!(gw.queued().contains(&sent));
    let row = p2.rows().into_iter().next().ok_or("no row")?;
    assert_eq!(
        row.info.get("auth").map(String::as_str),
        Some("device-token")
    );
    Ok(())
}

#[tokio::test]
async fn secrets_never_show_in_debug_output() -> R {
    let gw = Gateway::shared();
    let dir = tempfile::tempdir()?;
    let opts = PoolOptions::new(dir.path());
    let p = Pool::new(opts.clone())?;
    let token = Secret::new(gw.token.clone());
    p.request(&gw.url, &token, "health", json!({})).await?;
    let wrong = p.ping(&gw.url, &Secret::new("wrong-token-xyz")).await.err();
    let key_file = std::fs::read_to_string(dir.path().join("device.key"))?;
    let key: Value = serde_json::from_str(&key_file)?;
    let secret_key = key["secretKey"].as_str().ok_or("no secretKey")?.to_string();
    let dump = format!(
        "{p:?} {opts:?} {wrong:?} {token:?} {:?} {:?}",
        p.rows(),
        system_event("body text", "k")
    );
    for secret in [
        gw.token.as_str(),
        "wrong-token-xyz",
        secret_key.as_str(),
        "body text",
    ] {
        assert!(
            !dump.contains(secret),
            "a secret leaked into Debug output: {dump}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_is_reconnected_and_a_send_while_down_is_retryable() -> R {
    let mut gw = Gateway::start();
    let dir = tempfile::tempdir()?;
    let p = pool(dir.path());
    let token = Secret::new(gw.token.clone());
    p.send_message(&gw.url, &token, &system_event("before restart", "r-1"))
        .await?;

    gw.stop();
    let e = p
        .send_message(&gw.url, &token, &system_event("while down", "r-2"))
        .await
        .err()
        .ok_or("sent to a stopped gateway")?;
    assert!(e.is_retryable(), "{e:?}");
    assert!(
        matches!(
            e,
            GatewayError::Unreachable { .. } | GatewayError::Unavailable { .. }
        ),
        "{e:?}"
    );

    gw.spawn();
    // The warm connection comes back by itself, no request needed.
    let start = Instant::now();
    while p.rows().first().is_none_or(|r| r.state != "connected") {
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "no reconnect: {:?}",
            p.rows()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(p.rows()[0].last_error, None);
    p.send_message(&gw.url, &token, &system_event("after restart", "r-3"))
        .await?;
    assert!(gw.queued().contains(&"after restart".to_string()));

    // A restart under a warm connection (shutdown event + close 1012) is not an error state.
    gw.restart();
    p.send_message(
        &gw.url,
        &token,
        &system_event("after second restart", "r-4"),
    )
    .await?;
    assert!(gw.queued().contains(&"after second restart".to_string()));
    Ok(())
}
