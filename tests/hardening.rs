//! The agent daemon's client side against bad or old peers: relay secrets stay out of URLs,
//! the daemon's own Nexus messages never come back to it, the outbox can be cancelled and
//! expires what is stuck, and relay commands explain an unset relay. Real binaries throughout;
//! a fake peer only where it stands in for the seed's relay server, which reads the secret only
//! from the query string.

use clawlink_tests::daemon::Daemon;
use clawlink_tests::proxy::Proxy;
use clawlink_tests::relay::RelayServer;
use clawlink_tests::wait_for;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "never-in-a-url-7Qx";

fn register(d: &Daemon, relay: &str, id: &str) -> serde_json::Value {
    d.ctl_json(&[
        "relay", "register", "--relay", relay, "--id", id, "--name", id, "--secret", SECRET,
    ])
}

/// Request lines (`GET /path?query HTTP/1.1`) in raw client bytes, which interleave several
/// connections (a request may follow a body without a line break).
fn request_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = Vec::new();
    for verb in ["GET /", "POST /"] {
        for (at, _) in text.match_indices(verb) {
            let rest = &text[at..];
            lines.push(rest[..rest.find("\r\n").unwrap_or(rest.len())].to_string());
        }
    }
    lines
}

#[test]
fn relay_secret_travels_in_the_header_never_in_a_url() {
    let relay = RelayServer::start(&[]);
    let proxy = Proxy::start(relay.addr);
    let base = format!("http://{}", proxy.addr);
    let d = Daemon::start();
    register(&d, &base, "carol");
    wait_for("relay connected", Duration::from_secs(20), || {
        let s = d.ctl_json(&["status"]);
        s["connections"]
            .as_array()?
            .iter()
            .find(|c| c["kind"] == "relay" && c["state"] == "connected")
            .cloned()
    });
    let polled = d.ctl_json(&["relay", "poll"]);
    assert!(polled.is_object() || polled.is_array(), "{polled}");
    let lines = request_lines(&proxy.sent());
    assert!(
        lines.iter().any(|l| l.starts_with("GET /ws?")),
        "no WebSocket request seen: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("GET /poll?")),
        "no poll request seen: {lines:?}"
    );
    for l in &lines {
        assert!(!l.contains(SECRET), "the secret is in a URL: {l}");
        assert!(
            !l.contains("secret="),
            "a secret parameter is in a URL: {l}"
        );
    }
}

/// A stand-in for the seed's relay server: it accepts registrations and answers `/poll` only
/// when the secret is in the query, as the seed's server does.
fn seed_style_relay() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length.min(1 << 16)];
            let _ = reader.read_exact(&mut body);
            log.lock().expect("log").push(line.trim().to_string());
            let (status, body) = if line.starts_with("POST /register") {
                ("201 Created", r#"{"ok":true}"#)
            } else if line.starts_with("GET /poll") && line.contains("secret=") {
                ("200 OK", r#"{"count":0,"messages":[]}"#)
            } else if line.starts_with("GET /poll") || line.starts_with("GET /ws") {
                ("401 Unauthorized", r#"{"error":"bad secret"}"#)
            } else {
                ("404 Not Found", r#"{"error":"not found"}"#)
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), seen)
}

#[test]
fn a_seed_relay_that_reads_only_the_query_still_works() {
    let (base, seen) = seed_style_relay();
    let d = Daemon::start();
    register(&d, &base, "dave");
    let polled = d.ctl_json(&["relay", "poll"]);
    assert_eq!(polled, serde_json::json!([]), "{polled}");
    let lines = seen.lock().expect("log").clone();
    let polls: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("GET /poll"))
        .collect();
    assert!(
        polls.len() >= 2 && !polls[0].contains("secret=") && polls[1].contains("secret="),
        "expected a bearer-only poll, then one with the secret in the query: {lines:?}"
    );
}

#[test]
fn relay_commands_before_setup_say_what_to_do() {
    let d = Daemon::start();
    for args in [
        &["relay", "send", "--to", "bob", "--message", "hi"][..],
        &["relay", "poll"][..],
        &["relay", "users"][..],
        &["relay", "listen"][..],
    ] {
        let out = d.ctl(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded without a relay");
        assert!(
            err.contains("relay setup") || err.contains("relay register"),
            "{args:?}: the error does not say what to do: {err}"
        );
    }
}

/// `clawlink nexus ARGS` on `d`, which must succeed; its JSON.
fn nexus_ok(d: &Daemon, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["nexus"];
    all.extend_from_slice(args);
    let out = d.ctl(&all);
    assert!(
        out.status.success(),
        "nexus {args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("nexus prints JSON")
}

/// The Nexus texts in `d`'s inbox, without the member key announces (see `nexus_signing.rs`).
fn inbox_texts(d: &Daemon, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["inbox", "--source", "nexus"];
    args.extend_from_slice(extra);
    d.ctl_json(&args)
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["meta"]["announce"] != true)
                .filter_map(|m| m["message"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn own_nexus_messages_and_greeting_are_never_unread_nor_given_to_the_agent() {
    use clawlink_tests::gateway::Gateway;
    use clawlink_tests::nexus::NexusServer;
    let srv = NexusServer::start(&[]);
    let gw = Gateway::start();
    let mut a = Daemon::new();
    a.write_config(&format!(
        "[nexus]\nurl = \"{}\"\npoll_interval_secs = 1\n\n[local_gateway]\nurl = \"{}\"\ntoken = \"{}\"\nmethod = \"system-event\"\n",
        srv.url(),
        gw.url,
        gw.token
    ));
    a.spawn();
    // Nexus members are unverified (held for review by default): let them notify the agent,
    // so that what reaches it can be seen.
    let set = a.ctl(&["policy", "set", "nexus:*", "notify"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let mut b = Daemon::new();
    b.write_config(&format!(
        "[nexus]\nurl = \"{}\"\npoll_interval_secs = 1\n",
        srv.url()
    ));
    b.spawn();

    let created = nexus_ok(
        &a,
        &[
            "create",
            "--creator-agent-id",
            "alice",
            "--greeting",
            "welcome-own-7",
        ],
    );
    let sid = created["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_string();
    let code = nexus_ok(&a, &["pair", &sid])["code"]
        .as_str()
        .expect("code")
        .to_string();
    nexus_ok(&b, &["claim", &code, "--agent-id", "bob"]);
    nexus_ok(&a, &["send", &sid, "mine-1"]);
    nexus_ok(&b, &["send", &sid, "theirs-1"]);

    // "theirs-1" is the end marker: everything A wrote precedes it in the session.
    wait_for("A stored every message", Duration::from_secs(15), || {
        let all = inbox_texts(&a, &[]);
        ["welcome-own-7", "mine-1", "theirs-1"]
            .iter()
            .all(|t| all.iter().any(|m| m == t))
            .then_some(())
    });
    assert_eq!(inbox_texts(&a, &["--unread"]), ["theirs-1"]);
    let s = a.ctl_json(&["status"]);
    assert_eq!(s["inbox"]["unread"], 1, "{s}");

    // The agent gets messages in inbox order, so once bob's notice is there, anything of ours
    // that had been let through would be there too.
    wait_for(
        "bob's notice reached the agent",
        Duration::from_secs(30),
        || {
            gw.queued()
                .iter()
                .any(|q| q.contains("from \"bob\""))
                .then_some(())
        },
    );
    let queued = gw.queued().join("\n");
    assert!(
        !queued.contains("from \"alice\""),
        "our own message reached our agent: {queued}"
    );
    assert!(
        !queued.contains("from \"system\""),
        "our own greeting reached our agent: {queued}"
    );

    // B joined: the greeting and A's message are B's to read; its own are not.
    wait_for("B stored every message", Duration::from_secs(15), || {
        (inbox_texts(&b, &[]).len() >= 3).then_some(())
    });
    assert_eq!(inbox_texts(&b, &["--unread"]), ["welcome-own-7", "mine-1"]);
}

/// A loopback address where nothing listens (connections are refused at once).
fn refused_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("ws://{addr}")
}

fn outbox_state(d: &Daemon, id: &str) -> String {
    d.ctl_json(&["outbox"])
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == id).cloned())
        .map(|e| e["state"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

fn send_json(d: &Daemon, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = d.ctl(&all);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), v)
}

#[test]
fn the_outbox_expires_behind_a_stuck_message_cancels_and_refuses_bad_hosts() {
    let mut d = Daemon::start();
    let dead = refused_url();

    // A head that can never be delivered holds its lane.
    let (code, head) = send_json(&d, &["--url", &dead, "--token", "t", "--message", "stuck"]);
    assert_eq!(code, Some(3), "{head}");
    let head_id = head["id"].as_str().expect("id").to_string();

    // Behind it, a short-lived message expires on time instead of waiting for the head.
    let (code, short) = send_json(
        &d,
        &[
            "--url",
            &dead,
            "--token",
            "t",
            "--message",
            "short",
            "--ttl",
            "2",
            "--wait",
        ],
    );
    assert_eq!(code, Some(1), "{short}");
    assert_eq!(short["state"], "expired", "{short}");
    let short_id = short["id"].as_str().expect("id").to_string();

    // Another target is not held up: a relay message is delivered meanwhile.
    let relay = RelayServer::start(&[]);
    register(&d, &relay.base(), "erin");
    let sent = d.ctl_json(&["relay", "send", "--to", "erin", "--message", "unblocked"]);
    assert_eq!(sent["state"], "delivered", "{sent}");

    // Cancel the head by id; it ends as cancelled, and both outcomes survive a restart.
    let ended = d.ctl_json(&["outbox", "cancel", &head_id]);
    assert_eq!(
        ended,
        serde_json::json!([{"id": head_id, "state": "cancelled"}])
    );
    assert!(d.stop(), "clean stop:\n{}", d.logs());
    d.spawn();
    assert_eq!(outbox_state(&d, &head_id), "cancelled");
    assert_eq!(outbox_state(&d, &short_id), "expired");

    // --to and --all cancel what is pending; an unknown id is a clear error.
    let (code, a) = send_json(&d, &["--url", &dead, "--token", "t", "--message", "a"]);
    assert_eq!(code, Some(3), "{a}");
    let ended = d.ctl_json(&["outbox", "cancel", "--to", &dead]);
    assert_eq!(ended[0]["state"], "cancelled", "{ended}");
    send_json(&d, &["--url", &dead, "--token", "t", "--message", "b"]);
    let ended = d.ctl_json(&["outbox", "cancel", "--all"]);
    assert_eq!(ended.as_array().map(Vec::len), Some(1), "{ended}");
    let unknown = d.ctl(&["outbox", "cancel", "no-such-id"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("clawlink outbox"));

    // An address that can never work fails at once and is never queued.
    let before = d.ctl_json(&["outbox"]).as_array().map(Vec::len);
    for bad in ["ws://a b:1", "ws://", "ws://:1"] {
        let (code, v) = send_json(&d, &["--url", bad, "--token", "t", "--message", "x"]);
        assert_eq!(code, Some(1), "{bad}: {v}");
    }
    assert_eq!(d.ctl_json(&["outbox"]).as_array().map(Vec::len), before);
}

/// `status --json`'s inbox object.
fn inbox_status(d: &Daemon) -> serde_json::Value {
    d.ctl_json(&["status"])["inbox"].clone()
}

/// Inbox ids, oldest first.
fn inbox_ids(d: &Daemon) -> Vec<String> {
    d.ctl_json(&["inbox"])
        .as_array()
        .map(|a| a.iter().map(|m| m["id"].to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn a_full_inbox_refuses_keeps_relay_messages_queued_and_resumes_after_deletes() {
    let relay = RelayServer::start(&[]);
    let mut d = Daemon::new();
    d.write_config("[inbox]\nmax_messages = 3\n");
    d.spawn();
    register(&d, &relay.base(), "alice");
    for i in 0..3 {
        let r = d.post_message(&serde_json::json!({"from": "w", "message": format!("hook {i}")}));
        assert_eq!(r.status(), 200, "message {i} within the cap");
    }
    // The webhook's sender learns that nothing was stored, and why.
    let r = d.post_message(&serde_json::json!({"from": "w", "message": "one too many"}));
    assert_eq!(r.status(), 507);
    let body: serde_json::Value = r.json().expect("a JSON error");
    assert_eq!(body["ok"], false);
    let err = body["error"].as_str().unwrap_or_default();
    assert!(err.contains("inbox is full"), "{err}");
    let s = inbox_status(&d);
    assert_eq!(
        (s["total"].as_u64(), s["full"].as_bool()),
        (Some(3), Some(true))
    );
    let text = String::from_utf8_lossy(&d.ctl(&["status"]).stdout).to_string();
    assert!(
        text.contains("FULL"),
        "status does not say the inbox is full:\n{text}"
    );

    // Relay messages to a full inbox are not acknowledged: they stay queued on the relay.
    let bob = relay.client("bob", "bob", "bob-secret-123");
    assert_eq!(bob.register().0, 201);
    for i in 0..2 {
        assert_eq!(bob.send("alice", &format!("relay {i}")).0, 200);
    }
    wait_for(
        "the relay link to report the full inbox",
        Duration::from_secs(20),
        || {
            let rows = d.ctl_json(&["status"])["connections"].clone();
            rows.as_array()?
                .iter()
                .any(|r| {
                    r["kind"] == "relay"
                        && r["last_error"]
                            .as_str()
                            .is_some_and(|e| e.contains("inbox is full"))
                })
                .then_some(())
        },
    );
    assert!(d.logs().contains("inbox full"), "no warning in the log");
    let alice = relay.client("alice", "alice", SECRET);
    let (status, held) = alice.peek();
    assert_eq!(status, 200);
    assert_eq!(held["messages"].as_array().map(Vec::len), Some(2), "{held}");
    assert_eq!(inbox_status(&d)["total"], 3);

    // Reading frees nothing; deleting does, and the relay messages come in at once.
    let ids = inbox_ids(&d);
    assert_eq!(d.ctl_json(&["inbox", "ack", "--all"])["count"], 3);
    for id in &ids[..2] {
        assert!(d.ctl(&["inbox", "rm", id]).status.success());
    }
    wait_for(
        "the relay messages once there is room",
        Duration::from_secs(10),
        || {
            let texts: Vec<String> = d
                .ctl_json(&["inbox", "--source", "relay"])
                .as_array()?
                .iter()
                .filter_map(|m| m["message"].as_str().map(str::to_string))
                .collect();
            (texts == ["relay 0", "relay 1"]).then_some(())
        },
    );
    wait_for("the relay to release them", Duration::from_secs(10), || {
        let (_, held) = alice.peek();
        (held["messages"].as_array()?.is_empty()).then_some(())
    });
    let s = inbox_status(&d);
    assert_eq!(
        (s["total"].as_u64(), s["unread"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(s["full"], true);
    // The one read message goes with `rm --read`; the unread ones stay.
    assert_eq!(d.ctl_json(&["inbox", "rm", "--read"])["count"], 1);
    let r = d.post_message(&serde_json::json!({"from": "w", "message": "after the delete"}));
    assert_eq!(r.status(), 200, "the webhook takes messages again");

    // The totals are on disk: a restart finds the same, and the cap still holds.
    let before = inbox_status(&d);
    assert!(d.stop(), "clean stop");
    d.spawn();
    let after = inbox_status(&d);
    for k in ["total", "unread", "bytes", "full"] {
        assert_eq!(before[k], after[k], "{k} after a restart");
    }
    assert_eq!(after["total"], 3);
    let r = d.post_message(&serde_json::json!({"from": "w", "message": "still full"}));
    assert_eq!(r.status(), 507);
}

/// The status of `GET /health` on a fresh connection (0 when the server closed it unanswered).
fn health_status(base: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let Ok(mut tcp) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if tcp.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut head = String::new();
    let _ = BufReader::new(tcp).read_line(&mut head);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn upgraded_websockets_hold_their_connection_slot_until_they_close() {
    const CAP: usize = 3;
    let relay = RelayServer::start(&["--max-connections", &CAP.to_string()]);
    let urls: Vec<String> = (0..CAP)
        .map(|i| {
            let c = relay.client(&format!("ws{i}"), "ws", "ws-secret-123");
            assert_eq!(c.register().0, 201);
            c.ws_url("")
        })
        .collect();
    // (Each client, dropped, closes its pooled connection; until the relay sees that, it holds
    // a slot: open each WebSocket once one is free.)
    let mut sockets = Vec::new();
    for url in &urls {
        sockets.push(wait_for(
            "a WebSocket slot",
            Duration::from_secs(20),
            || clawlink_tests::relay::WsClient::connect(url).ok(),
        ));
    }
    // Every slot is held by an open WebSocket: the next connection is refused.
    // (503 when the refusal is read before the close, 0 when the close wins.)
    let over = health_status(&relay.base());
    assert!(
        matches!(over, 503 | 0),
        "a connection over the cap got {over}"
    );
    wait_for("the refusal in the log", Duration::from_secs(10), || {
        relay.logs().contains("connection limit").then_some(())
    });
    if let Some(ws) = sockets.pop() {
        ws.abort();
    }
    wait_for(
        "the closed WebSocket's slot to be free",
        Duration::from_secs(10),
        || (health_status(&relay.base()) == 200).then_some(()),
    );
    assert_eq!(sockets.len(), CAP - 1);
}

#[test]
fn a_full_inbox_leaves_nexus_messages_on_the_server_until_there_is_room() {
    use clawlink_tests::nexus::NexusServer;
    let srv = NexusServer::start(&[]);
    let mut a = Daemon::new();
    // Short polls: a long poll fetches the next page while storing one, and reports a refused
    // page only once that fetch returns (nothing is lost either way, it only takes longer).
    // Room for our own member key announce and one message.
    a.write_config(&format!(
        "[inbox]\nmax_messages = 2\n\n[nexus]\nurl = \"{}\"\npoll_interval_secs = 1\nlong_poll = false\n",
        srv.url()
    ));
    a.spawn();
    let sid = nexus_ok(&a, &["create", "--creator-agent-id", "alice"])["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_string();
    let key = srv.join(&sid, "bob");
    let post = |text: &str| {
        let ans = srv.post_message(
            &sid,
            "bob",
            Some(&key),
            &serde_json::json!({ "text": text }),
        );
        assert_eq!(ans.0, 201, "{}", ans.1);
    };
    post("n-1");
    wait_for("the first message", Duration::from_secs(15), || {
        (inbox_texts(&a, &[]) == ["n-1"]).then_some(())
    });
    post("n-2");
    wait_for(
        "the session row to report the full inbox",
        Duration::from_secs(15),
        || {
            let rows = a.ctl_json(&["status"])["connections"].clone();
            rows.as_array()?
                .iter()
                .any(|r| {
                    r["kind"] == "nexus"
                        && r["last_error"]
                            .as_str()
                            .is_some_and(|e| e.contains("inbox is full"))
                })
                .then_some(())
        },
    );
    assert_eq!(inbox_status(&a)["full"], true);
    // The cursor stayed before n-2: once n-1 is deleted, the poller fetches it again.
    let n1 = a
        .ctl_json(&["inbox"])
        .as_array()
        .and_then(|all| all.iter().find(|m| m["message"] == "n-1").cloned())
        .map(|m| m["id"].to_string())
        .expect("n-1 in the inbox");
    assert!(a.ctl(&["inbox", "rm", &n1]).status.success());
    wait_for("n-2 once there is room", Duration::from_secs(10), || {
        (inbox_texts(&a, &[]) == ["n-2"]).then_some(())
    });
}
