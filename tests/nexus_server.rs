//! End-to-end tests of `clawlinkd nexus-server`: the real binary on a free port, driven by a
//! client that makes only the reference protocol's HTTP calls (as `nexus.sh` makes them).
//!
//! Covered: the whole flow (create with creator and greeting, pair, `/p/CODE` in markdown and
//! HTML, pair-status, claim, send both ways with text and json, cursors, members, renew,
//! leave, stats, health); every error code the server can produce, with its status; TTL
//! expiry, sliding on send and extension by renew; pairing-code expiry; durability across
//! `kill -9` in the middle of concurrent sends; long-poll latency; the per-IP rate limit; and
//! the same flow through `curl` as `nexus.sh` runs it.

use clawlink_tests::nexus::{expect, expect_err, field as f, NexusServer};
use clawlink_tests::wait_for;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn cursors(v: &Value) -> Vec<u64> {
    let msgs = v["messages"].as_array().cloned().unwrap_or_default();
    msgs.iter()
        .map(|m| f(m, "cursor").parse().expect("decimal cursor"))
        .collect()
}

fn cursor(v: &Value) -> u64 {
    f(v, "cursor").parse().expect("decimal cursor")
}

fn content_type(r: &reqwest::blocking::Response) -> String {
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    ct.unwrap_or("").to_string()
}

#[test]
fn full_flow_with_the_reference_calls() {
    let srv = NexusServer::start(&[]);
    let url = srv.url();
    let health = expect(srv.call("GET", "/health", &[], None), 200);
    assert_eq!(
        health["capabilities"]["messageFormat"],
        json!(["text", "json"])
    );
    assert_eq!(health["capabilities"]["longPoll"], json!(true));
    assert!(health["version"].is_string() && health["uptime"].is_u64());

    let body = r#"{"ttl":600,"maxAgents":3,"greeting":"welcome","creatorAgentId":"alice"}"#;
    let created = expect(srv.call("PUT", "/v1/sessions", &[], Some(body)), 201);
    let (sid, alice_key) = (f(&created, "sessionId"), f(&created, "sessionKey"));
    assert_eq!(
        (created["ttl"].as_u64(), created["maxAgents"].as_u64()),
        (Some(600), Some(3))
    );
    assert_eq!(
        (f(&created, "state"), f(&created, "creatorAgentId")),
        ("active".into(), "alice".into())
    );
    assert!(
        sid.len() == 48 && sid.bytes().all(|b| b.is_ascii_hexdigit()),
        "{sid}"
    );
    assert!(alice_key.len() >= 43, "a 256-bit key is expected");
    let status = expect(
        srv.call("GET", &format!("/v1/sessions/{sid}"), &[], None),
        200,
    );
    assert_eq!(
        (&status["agents"], f(&status, "creatorAgentId")),
        (&json!(["alice"]), "alice".into())
    );

    // Pairing: the code, its self-documenting page, its status, the claim.
    let pair_body = json!({ "sessionId": sid }).to_string();
    let pair = expect(srv.call("PUT", "/v1/pair", &[], Some(&pair_body)), 201);
    let code = f(&pair, "code");
    let parts: Vec<&str> = code.split('-').collect();
    assert!(
        parts.len() == 3 && parts[2].len() == 5 && !code.contains(&sid[..8]),
        "{code}"
    );
    assert_eq!(f(&pair, "url"), format!("{url}/p/{code}"));
    let claim_url = format!("{url}/v1/pair/{code}/claim");
    let page = srv
        .send("GET", &format!("/p/{code}"), &[], None)
        .expect("GET /p");
    assert!(content_type(&page).starts_with("text/markdown"));
    let text = page.text().expect("page text");
    assert!(
        text.contains(&claim_url) && text.contains("X-Agent-Id") && !text.contains(&sid),
        "{text}"
    );
    let browser = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let html = srv
        .send("GET", &format!("/p/{code}"), &browser, None)
        .expect("GET /p as HTML");
    assert!(content_type(&html).starts_with("text/html"));
    assert!(html.text().unwrap_or_default().contains(&claim_url));
    let pair_status = format!("/v1/pair/{code}/status");
    assert_eq!(
        expect(srv.call("GET", &pair_status, &[], None), 200)["state"],
        "pending"
    );
    let lower = format!("/v1/pair/{}/claim", code.to_lowercase());
    let claimed = expect(
        srv.call("POST", &lower, &[("X-Agent-Id", "bob")], None),
        200,
    );
    assert_eq!(
        (f(&claimed, "sessionId"), f(&claimed, "status")),
        (sid.clone(), "claimed".into())
    );
    let bob_key = f(&claimed, "sessionKey");
    assert_ne!(bob_key, alice_key);
    assert_eq!(
        expect(srv.call("GET", &pair_status, &[], None), 200)["state"],
        "claimed"
    );

    // Messages both ways: text, text + json, json only; with and without a key.
    let first = expect(
        srv.post_message(
            &sid,
            "alice",
            Some(&alice_key),
            &json!({ "text": "hello bob" }),
        ),
        201,
    );
    assert!(f(&first, "id").starts_with("msg_") && first["expiresAt"].is_string());
    let second = expect(
        srv.post_message(
            &sid,
            "bob",
            None,
            &json!({ "text": "hi alice", "json": { "n": 1 } }),
        ),
        201,
    );
    let third = expect(
        srv.post_message(
            &sid,
            "bob",
            Some(&bob_key),
            &json!({ "json": ["only", "json"] }),
        ),
        201,
    );
    let c = [cursor(&first), cursor(&second), cursor(&third)];
    assert!(c[0] < c[1] && c[1] < c[2], "{c:?}");

    let all = expect(srv.poll(&sid, "bob", "?members=true"), 200);
    assert_eq!(cursors(&all), vec![0, c[0], c[1], c[2]]);
    let m = &all["messages"];
    assert_eq!(
        (f(&m[0], "agentId"), f(&m[0], "text")),
        ("system".into(), "welcome".into())
    );
    assert_eq!(
        (f(&m[1], "agentId"), f(&m[1], "text")),
        ("alice".into(), "hello bob".into())
    );
    assert_eq!(
        (&m[1]["verified"], &m[2]["verified"], &m[3]["verified"]),
        (&json!(true), &json!(false), &json!(true))
    );
    assert_eq!(
        (&m[2]["json"], &m[3]["json"]),
        (&json!({ "n": 1 }), &json!(["only", "json"]))
    );
    assert!(m[1]["sentAt"].is_string() && m[1]["expiresAt"].is_string());
    assert_eq!(f(&all, "nextCursor"), c[2].to_string());
    let members: Vec<String> = all["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|x| f(x, "agentId"))
        .collect();
    assert_eq!(members, vec!["alice", "bob"]);
    assert!(all["members"][0]["lastSeenAt"].is_string());
    let after = expect(srv.poll(&sid, "alice", &format!("?after={}", c[0])), 200);
    assert_eq!(cursors(&after), vec![c[1], c[2]]);
    assert!(after.get("members").is_none());
    let empty = expect(srv.poll(&sid, "alice", &format!("?after={}", c[2])), 200);
    assert_eq!(
        (cursors(&empty).len(), f(&empty, "nextCursor")),
        (0, c[2].to_string())
    );

    // Renew, leave, stats; and nothing identifying in the log.
    let renew = format!("/v1/sessions/{sid}/renew");
    let renewed = expect(
        srv.call(
            "POST",
            &renew,
            &[("X-Agent-Id", "bob")],
            Some(r#"{"ttl":1200}"#),
        ),
        200,
    );
    assert_eq!(
        (renewed["ttl"].as_u64(), &renewed["agents"]),
        (Some(1200), &json!(["alice", "bob"]))
    );
    assert_eq!(f(&renewed, "state"), "active");
    expect(
        srv.call("POST", &renew, &[("X-Agent-Id", "alice")], Some("{}")),
        200,
    );
    let leave = format!("/v1/sessions/{sid}/agents/bob");
    let left = expect(
        srv.call(
            "DELETE",
            &leave,
            &[("X-Agent-Id", "bob"), ("X-Session-Key", &bob_key)],
            None,
        ),
        200,
    );
    assert_eq!(
        (&left["ok"], f(&left, "agentId"), f(&left, "sessionId")),
        (&json!(true), "bob".into(), sid.clone())
    );
    assert_eq!(
        expect(
            srv.call("GET", &format!("/v1/sessions/{sid}"), &[], None),
            200
        )["agents"],
        json!(["alice"])
    );
    let stats = expect(srv.call("GET", "/v1/stats", &[], None), 200);
    let counts = [
        &stats["activeSessions"],
        &stats["totalAgents"],
        &stats["totalMessages"],
    ];
    assert_eq!(counts, [&json!(1), &json!(1), &json!(4)], "{stats}");
    let logs = srv.logs();
    for secret in [&sid, &alice_key, &bob_key, &code, &"hello bob".to_string()] {
        assert!(
            !logs.contains(secret.as_str()),
            "the log leaks {secret}: {logs}"
        );
    }
}

type BadRequest = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
    u16,
    &'static str,
);

/// Requests that fail the same way in any state of the session:
/// (method, path, headers, body, status, code). `SID`, `GHOST`, `AKEY` are filled in.
#[rustfmt::skip]
const BAD_REQUESTS: &[BadRequest] = &[
    ("PUT", "/v1/sessions", &[], Some("{not json"), 400, "invalid_body"),
    ("PUT", "/v1/sessions", &[], Some(r#"{"ttl":"long"}"#), 400, "invalid_body"),
    ("PUT", "/v1/sessions", &[], Some(r#"{"ttl":10}"#), 400, "invalid_request"),
    ("PUT", "/v1/sessions", &[], Some(r#"{"ttl":86401}"#), 400, "invalid_request"),
    ("PUT", "/v1/sessions", &[], Some(r#"{"maxAgents":1}"#), 400, "invalid_request"),
    ("PUT", "/v1/sessions", &[], Some(r#"{"maxAgents":51}"#), 400, "invalid_request"),
    ("PUT", "/v1/sessions", &[], Some(r#"{"creatorAgentId":"no spaces"}"#), 400, "invalid_request"),
    ("PUT", "/v1/pair", &[], Some("{}"), 400, "invalid_request"),
    ("POST", "/v1/sessions/SID/join", &[], None, 400, "missing_agent_id"),
    ("POST", "/v1/sessions/SID/join", &[("X-Agent-Id", "bad/id")], None, 400, "invalid_request"),
    ("POST", "/v1/sessions/SID/messages", &[], Some(r#"{"text":"x"}"#), 400, "missing_agent_id"),
    ("POST", "/v1/sessions/SID/messages", &[("X-Agent-Id", "alice")], Some(r#"{"text":""}"#), 400, "invalid_request"),
    ("POST", "/v1/sessions/SID/messages", &[("X-Agent-Id", "alice")], Some(r#"{"text":5}"#), 400, "invalid_body"),
    ("GET", "/v1/sessions/SID/messages", &[], None, 400, "missing_agent_id"),
    ("GET", "/v1/sessions/SID/messages?after=abc", &[("X-Agent-Id", "alice")], None, 400, "invalid_request"),
    ("POST", "/v1/sessions/SID/renew", &[], Some("{}"), 400, "missing_agent_id"),
    ("POST", "/v1/sessions/SID/renew", &[("X-Agent-Id", "alice")], Some(r#"{"ttl":5}"#), 400, "invalid_request"),
    ("POST", "/v1/pair/ANY-CODE-AAAAA/claim", &[], None, 400, "missing_agent_id"),
    ("DELETE", "/v1/sessions/SID/agents/alice", &[("X-Agent-Id", "alice")], None, 401, "missing_session_key"),
    ("DELETE", "/v1/sessions/SID/agents/bob", &[("X-Agent-Id", "bob"), ("X-Session-Key", "AKEY")], None, 401, "invalid_session_key"),
    ("POST", "/v1/sessions/SID/messages", &[("X-Agent-Id", "bob"), ("X-Session-Key", "AKEY")], Some(r#"{"text":"x"}"#), 403, "invalid_session_key"),
    ("POST", "/v1/sessions/SID/messages", &[("X-Agent-Id", "mallory")], Some(r#"{"text":"x"}"#), 403, "forbidden"),
    ("POST", "/v1/sessions/SID/renew", &[("X-Agent-Id", "mallory")], Some("{}"), 403, "forbidden"),
    ("DELETE", "/v1/sessions/SID/agents/alice", &[("X-Agent-Id", "alice"), ("X-Session-Key", "AKEY")], None, 403, "forbidden"),
    ("GET", "/v1/sessions/SID/messages", &[("X-Agent-Id", "mallory")], None, 403, "agent_not_in_session"),
    ("GET", "/v1/sessions/GHOST", &[], None, 404, "session_not_found"),
    ("GET", "/v1/sessions/not-even-hex", &[], None, 404, "session_not_found"),
    ("POST", "/v1/sessions/GHOST/join", &[("X-Agent-Id", "bob")], None, 404, "session_not_found"),
    ("POST", "/v1/sessions/GHOST/messages", &[("X-Agent-Id", "bob")], Some(r#"{"text":"x"}"#), 404, "session_not_found"),
    ("PUT", "/v1/pair", &[], Some(r#"{"sessionId":"GHOST"}"#), 404, "session_not_found"),
    ("POST", "/v1/pair/NOPE-NOPE-AAAAA/claim", &[("X-Agent-Id", "carol")], None, 404, "code_not_found"),
    ("GET", "/v1/pair/NOPE-NOPE-AAAAA/status", &[], None, 404, "code_not_found"),
    ("DELETE", "/v1/sessions/SID/agents/nobody", &[("X-Agent-Id", "nobody"), ("X-Session-Key", "AKEY")], None, 404, "agent_not_found"),
    ("POST", "/v1/sessions/SID/join", &[("X-Agent-Id", "bob")], None, 409, "agent_id_taken"),
    ("GET", "/v1/nothing", &[], None, 404, "not_found"),
    ("PATCH", "/v1/sessions/SID", &[], None, 405, "method_not_allowed"),
];

#[test]
fn every_error_code_with_its_status() {
    let srv = NexusServer::start(&["--max-body-bytes", "4096", "--max-message-bytes", "1000"]);
    let (sid, alice_key) =
        srv.create(&json!({ "ttl": 600, "maxAgents": 2, "creatorAgentId": "alice" }));
    let bob_key = srv.join(&sid, "bob");
    let ghost = "0".repeat(48);
    let fill = |s: &str| {
        s.replace("SID", &sid)
            .replace("GHOST", &ghost)
            .replace("AKEY", &alice_key)
    };
    for (method, path, headers, body, status, code) in BAD_REQUESTS {
        let headers: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, fill(v))).collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let ans = srv.call(method, &fill(path), &headers, body.map(fill).as_deref());
        assert_eq!(
            ans.1["error"].as_str(),
            Some(*code),
            "{method} {path} -> {}",
            ans.1
        );
        expect_err(ans, *status, code);
    }
    let long_id = "x".repeat(129);
    let join = format!("/v1/sessions/{sid}/join");
    expect_err(
        srv.call("POST", &join, &[("X-Agent-Id", &long_id)], None),
        400,
        "invalid_request",
    );
    // 409 session_full: alice and bob fill maxAgents 2; a failed claim leaves the code usable.
    let pair = expect(
        srv.call(
            "PUT",
            "/v1/pair",
            &[],
            Some(&json!({ "sessionId": sid }).to_string()),
        ),
        201,
    );
    let claim = format!("/v1/pair/{}/claim", f(&pair, "code"));
    expect_err(
        srv.call("POST", &join, &[("X-Agent-Id", "carol")], None),
        409,
        "session_full",
    );
    expect_err(
        srv.call("POST", &claim, &[("X-Agent-Id", "carol")], None),
        409,
        "session_full",
    );
    let leave = format!("/v1/sessions/{sid}/agents/bob");
    expect(
        srv.call(
            "DELETE",
            &leave,
            &[("X-Agent-Id", "bob"), ("X-Session-Key", &bob_key)],
            None,
        ),
        200,
    );
    expect(
        srv.call("POST", &claim, &[("X-Agent-Id", "carol")], None),
        200,
    );
    expect_err(
        srv.call("POST", &claim, &[("X-Agent-Id", "dave")], None),
        404,
        "code_expired_or_used",
    );
    // 413: the body cap (4096) and the message cap (1000).
    let big = json!({ "text": "y".repeat(5000) });
    expect_err(
        srv.post_message(&sid, "alice", None, &big),
        413,
        "payload_too_large",
    );
    let long = json!({ "text": "z".repeat(1001) });
    expect_err(
        srv.post_message(&sid, "alice", None, &long),
        413,
        "payload_too_large",
    );
}

#[test]
fn sessions_expire_and_renew_or_sending_extends_them() {
    let args = [
        "--min-ttl-secs",
        "1",
        "--sweep-interval-secs",
        "1",
        "--pair-code-expiry-secs",
        "1",
    ];
    let srv = NexusServer::start(&args);
    let (idle, _) = srv.create(&json!({ "ttl": 2, "creatorAgentId": "a", "greeting": "g" }));
    let (renewed, _) = srv.create(&json!({ "ttl": 2, "creatorAgentId": "a" }));
    let (active, key) = srv.create(&json!({ "ttl": 2, "creatorAgentId": "a" }));
    let pair = expect(
        srv.call(
            "PUT",
            "/v1/pair",
            &[],
            Some(&json!({ "sessionId": renewed }).to_string()),
        ),
        201,
    );
    let code = f(&pair, "code");
    let renew = format!("/v1/sessions/{renewed}/renew");
    expect(
        srv.call(
            "POST",
            &renew,
            &[("X-Agent-Id", "a")],
            Some(r#"{"ttl":60}"#),
        ),
        200,
    );
    let start = Instant::now();
    let idle_path = format!("/v1/sessions/{idle}");
    wait_for(
        "the idle session to expire",
        Duration::from_secs(10),
        || {
            // Meanwhile `active` keeps sending: each send slides its expiry.
            expect(
                srv.post_message(&active, "a", Some(&key), &json!({ "text": "still here" })),
                201,
            );
            (srv.call("GET", &idle_path, &[], None).0 == 404).then_some(())
        },
    );
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "expired too early"
    );
    expect_err(
        srv.call("GET", &idle_path, &[], None),
        404,
        "session_not_found",
    );
    expect_err(srv.poll(&idle, "a", ""), 404, "session_not_found");
    let idle_renew = format!("/v1/sessions/{idle}/renew");
    expect_err(
        srv.call("POST", &idle_renew, &[("X-Agent-Id", "a")], Some("{}")),
        404,
        "session_not_found",
    );
    expect(
        srv.call("GET", &format!("/v1/sessions/{renewed}"), &[], None),
        200,
    );
    expect(
        srv.call("GET", &format!("/v1/sessions/{active}"), &[], None),
        200,
    );
    // The pairing code expired too (1 s).
    let status = format!("/v1/pair/{code}/status");
    wait_for(
        "the pairing code to expire",
        Duration::from_secs(10),
        || (expect(srv.call("GET", &status, &[], None), 200)["state"] == "expired").then_some(()),
    );
    let claim = format!("/v1/pair/{code}/claim");
    expect_err(
        srv.call("POST", &claim, &[("X-Agent-Id", "b")], None),
        404,
        "code_expired_or_used",
    );
    // The sweep deletes the expired session and its messages (the greeting).
    wait_for("the sweep", Duration::from_secs(10), || {
        srv.logs().contains("swept expired sessions").then_some(())
    });
    let stats = expect(srv.call("GET", "/v1/stats", &[], None), 200);
    assert_eq!(stats["activeSessions"].as_u64(), Some(2), "{stats}");
}

/// Sends as alice until the server stops answering 201, recording each acknowledged send.
fn send_until_dead(
    url: &str,
    sid: &str,
    key: &str,
    acked: &Arc<Mutex<Vec<(u64, String)>>>,
    t: usize,
) {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    for i in 0.. {
        let text = format!("t{t}-m{i}");
        let req = http
            .post(format!("{url}/v1/sessions/{sid}/messages"))
            .header("X-Agent-Id", "alice")
            .header("X-Session-Key", key)
            .header("Content-Type", "application/json")
            .body(json!({ "text": text }).to_string());
        let Ok(r) = req.send() else { return };
        if r.status().as_u16() != 201 {
            return;
        }
        let Ok(v) = r.json::<Value>() else { return };
        acked.lock().expect("lock").push((cursor(&v), text));
    }
}

#[test]
fn acknowledged_messages_survive_kill_9() {
    let mut srv = NexusServer::start(&[]);
    let (sid, alice_key) =
        srv.create(&json!({ "ttl": 3600, "maxAgents": 5, "creatorAgentId": "alice" }));
    let bob_key = srv.join(&sid, "bob");
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (acked, url, sid, key) = (acked.clone(), srv.url(), sid.clone(), alice_key.clone());
            std::thread::spawn(move || send_until_dead(&url, &sid, &key, &acked, t))
        })
        .collect();
    wait_for("300 acknowledged sends", Duration::from_secs(60), || {
        (acked.lock().expect("lock").len() >= 300).then_some(())
    });
    srv.kill9();
    for h in senders {
        h.join().expect("sender thread");
    }
    srv.spawn();
    let mut seen: Vec<(u64, String)> = Vec::new();
    let mut after = String::new();
    loop {
        let q = if after.is_empty() {
            String::new()
        } else {
            format!("?after={after}")
        };
        let page = expect(srv.poll(&sid, "bob", &q), 200);
        let msgs = page["messages"].as_array().expect("messages").clone();
        if msgs.is_empty() {
            break;
        }
        seen.extend(msgs.iter().map(|m| (cursor(m), f(m, "text"))));
        after = f(&page, "nextCursor");
    }
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "cursors not strictly increasing"
    );
    let texts: HashSet<&String> = seen.iter().map(|(_, t)| t).collect();
    assert_eq!(texts.len(), seen.len(), "a message is doubled");
    let stored: HashSet<&(u64, String)> = seen.iter().collect();
    let acked = acked.lock().expect("lock").clone();
    let lost: Vec<_> = acked.iter().filter(|a| !stored.contains(a)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost or moved, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    // Keys, members and the cursor sequence survive too.
    let last = seen.last().map(|(c, _)| *c).unwrap_or(0);
    let next = expect(
        srv.post_message(
            &sid,
            "bob",
            Some(&bob_key),
            &json!({ "text": "after restart" }),
        ),
        201,
    );
    assert!(cursor(&next) > last);
    let wrong = srv.post_message(&sid, "bob", Some(&alice_key), &json!({ "text": "x" }));
    expect_err(wrong, 403, "invalid_session_key");
    assert!(srv.stop(), "graceful stop failed:\n{}", srv.logs());
}

#[test]
fn long_poll_answers_as_soon_as_a_message_is_sent() {
    let srv = Arc::new(NexusServer::start(&[]));
    let (sid, key) = srv.create(&json!({ "ttl": 600, "creatorAgentId": "alice" }));
    srv.join(&sid, "bob");
    let t0 = Instant::now();
    let idle = expect(srv.poll(&sid, "bob", "?after=0&wait=1"), 200);
    assert!(cursors(&idle).is_empty(), "{idle}");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "wait=1 should hold about a second"
    );
    // Bob's last-seen time moves when a poll of his has looked and found nothing (the server
    // arms its wake-up before looking): the positive signal that the long poll is parked.
    let bob_seen = || {
        let v = expect(srv.poll(&sid, "alice", "?after=0&members=true"), 200);
        v["members"]
            .as_array()
            .and_then(|m| m.iter().find(|a| a["agentId"] == "bob"))
            .map(|a| f(a, "lastSeenAt"))
            .unwrap_or_default()
    };
    let before = bob_seen();
    let poller = {
        let (srv, sid) = (srv.clone(), sid.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            let v = expect(srv.poll(&sid, "bob", "?after=0&wait=20"), 200);
            (v, Instant::now(), t.elapsed())
        })
    };
    wait_for("bob's long poll to park", Duration::from_secs(10), || {
        (bob_seen() != before).then_some(())
    });
    let sent_at = Instant::now();
    expect(
        srv.post_message(&sid, "alice", Some(&key), &json!({ "text": "ping" })),
        201,
    );
    let (v, returned_at, total) = poller.join().expect("poller");
    assert_eq!(f(&v["messages"][0], "text"), "ping");
    let latency = returned_at.saturating_duration_since(sent_at);
    let prompt = latency < Duration::from_secs(2) && total < Duration::from_secs(5);
    assert!(
        prompt,
        "long-poll too slow: {latency:?} after the send, {total:?} in all"
    );
}

#[test]
fn the_rate_limit_answers_429() {
    let srv = NexusServer::start_exact(&[
        "--rate-limit-requests",
        "5",
        "--rate-limit-window-secs",
        "60",
    ]);
    for _ in 0..5 {
        expect(srv.call("GET", "/v1/stats", &[], None), 200);
    }
    let r = srv.send("GET", "/v1/stats", &[], None).expect("request");
    assert!(r.headers().contains_key("retry-after"));
    expect_err(
        (r.status().as_u16(), r.json().unwrap_or(Value::Null)),
        429,
        "rate_limit_exceeded",
    );
    expect_err(
        srv.call("PUT", "/v1/sessions", &[], Some("{}")),
        429,
        "rate_limit_exceeded",
    );
    expect(srv.call("GET", "/health", &[], None), 200);
}

/// Runs curl as nexus.sh does; returns (exit success, stdout JSON).
fn curl(args: &[&str]) -> (bool, Value) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--fail-with-body", "--max-time", "20"])
        .args(args);
    let out = clawlink_tests::run(&mut cmd);
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
    )
}

#[test]
fn nexus_sh_style_curl_calls_work() {
    let srv = NexusServer::start(&[]);
    let u = srv.url();
    let ct = "Content-Type: application/json";
    let body = r#"{"ttl":3660,"maxAgents":2,"creatorAgentId":"a1"}"#;
    let (ok, created) = curl(&[
        "-X",
        "PUT",
        &format!("{u}/v1/sessions"),
        "-H",
        ct,
        "-d",
        body,
    ]);
    assert!(ok, "{created}");
    let (sid, key) = (f(&created, "sessionId"), f(&created, "sessionKey"));
    let pair_body = json!({ "sessionId": sid }).to_string();
    let (_, pair) = curl(&[
        "-X",
        "PUT",
        &format!("{u}/v1/pair"),
        "-H",
        ct,
        "-d",
        &pair_body,
    ]);
    let claim = format!("{u}/v1/pair/{}/claim", f(&pair, "code"));
    let (ok, claimed) = curl(&["-X", "POST", &claim, "-H", "X-Agent-Id: a2"]);
    assert!(ok && f(&claimed, "sessionId") == sid, "{claimed}");
    let messages = format!("{u}/v1/sessions/{sid}/messages");
    let key_header = format!("X-Session-Key: {key}");
    let send = [
        "-X",
        "POST",
        &messages,
        "-H",
        ct,
        "-H",
        "X-Agent-Id: a1",
        "-H",
        &key_header,
        "-d",
        r#"{"text":"hi"}"#,
    ];
    let (ok, sent) = curl(&send);
    assert!(ok, "{sent}");
    let (ok, polled) = curl(&[
        &format!("{messages}?after=0&members=true"),
        "-H",
        "X-Agent-Id: a2",
    ]);
    assert!(ok && f(&polled["messages"][0], "text") == "hi", "{polled}");
    let renew = format!("{u}/v1/sessions/{sid}/renew");
    let (ok, renewed) = curl(&[
        "-X",
        "POST",
        &renew,
        "-H",
        ct,
        "-H",
        "X-Agent-Id: a2",
        "-d",
        "{}",
    ]);
    assert!(ok, "{renewed}");
    // An HTTP error: exit status non-zero, the error JSON still on stdout.
    let join = format!("{u}/v1/sessions/{sid}/join");
    let (ok, err) = curl(&["-X", "POST", &join, "-H", "X-Agent-Id: a2"]);
    assert!(!ok && err["error"] == "agent_id_taken", "{err}");
}
