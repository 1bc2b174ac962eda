//! End-to-end tests of the daemon's Nexus client: real `clawlinkd nexus-server`, real agent
//! daemons configured with `[nexus] url = ...`, driven by `clawlink nexus ...`.
//!
//! Covered: pairing between two daemons (create with creator, pair, claim, send both ways,
//! both inboxes fed by the always-on long-poll within about a second); `poll` cursor rules;
//! every error code the server produces, passed through with exit code 1; TTL expiry, manual
//! renew and the daemon's auto-renew; `kill -9` of a polling daemon and of the server in the
//! middle of a stream (nothing lost, nothing doubled); session keys never in logs or status;
//! `import --from-nexus` of a `nexus.sh` sessions directory.

use clawlink_tests::nexus::nexus_row;
use clawlink_tests::nexus::{field as f, NexusServer};
use clawlink_tests::{wait_for, Daemon};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn daemon_for(srv: &NexusServer) -> Daemon {
    let mut d = Daemon::new();
    d.write_config(&format!(
        "[nexus]\nurl = \"{}\"\npoll_interval_secs = 1\n",
        srv.url()
    ));
    d.spawn();
    d
}

/// `clawlink nexus ARGS` → (exit code, stdout JSON).
fn nx(d: &Daemon, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["nexus"];
    all.extend_from_slice(args);
    let out = d.ctl(&all);
    let body = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "nexus {args:?}: stdout is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), body)
}

fn ok(d: &Daemon, args: &[&str]) -> Value {
    let (code, body) = nx(d, args);
    assert_eq!(code, 0, "nexus {args:?}: {body}");
    body
}

fn fails(d: &Daemon, args: &[&str], code: &str) -> Value {
    let (exit, body) = nx(d, args);
    assert_eq!(
        (exit, body["error"].as_str()),
        (1, Some(code)),
        "nexus {args:?}: {body}"
    );
    body
}

fn nexus_inbox(d: &Daemon) -> Vec<Value> {
    let v = d.ctl_json(&["inbox", "--source", "nexus"]);
    v.as_array().cloned().unwrap_or_default()
}

/// The texts `from` wrote, without its member key announce (see `nexus_signing.rs`).
fn texts_from(d: &Daemon, from: &str) -> Vec<String> {
    nexus_inbox(d)
        .iter()
        .filter(|m| m["from"] == from && m["meta"]["announce"] != true)
        .map(|m| f(m, "message"))
        .collect()
}

fn wait_text(d: &Daemon, from: &str, text: &str, within: Duration) {
    wait_for(&format!("{text:?} in the inbox"), within, || {
        texts_from(d, from).iter().any(|t| t == text).then_some(())
    });
}

#[test]
fn pairing_and_messages_between_two_daemons() {
    let srv = NexusServer::start(&[]);
    let a = daemon_for(&srv);
    let b = daemon_for(&srv);
    let created = ok(
        &a,
        &[
            "create",
            "--creator-agent-id",
            "alice",
            "--greeting",
            "welcome",
        ],
    );
    let sid = f(&created, "sessionId");
    let key_a = f(&created, "sessionKey");
    let pair = ok(&a, &["pair", &sid]);
    let code = f(&pair, "code");
    assert_eq!(ok(&b, &["pair-status", &code])["state"], "pending");
    let claimed = ok(&b, &["claim", &code, "--agent-id", "bob"]);
    assert_eq!(f(&claimed, "sessionId"), sid);
    let key_b = f(&claimed, "sessionKey");
    assert_eq!(ok(&a, &["pair-status", &code])["state"], "claimed");
    let st = ok(&a, &["status", &sid]);
    let agents = st["agents"].to_string();
    assert!(agents.contains("alice") && agents.contains("bob"), "{st}");

    // Both pollers are long-polling before we measure.
    for (d, who) in [(&a, "alice"), (&b, "bob")] {
        wait_for("long-poll row", Duration::from_secs(10), || {
            (nexus_row(d, &sid)["state"] == "long-poll").then_some(())
        });
        let row = nexus_row(d, &sid);
        assert_eq!(row["info"]["agent_id"], who, "{row}");
        assert_eq!(row["info"]["server"], srv.url(), "{row}");
    }
    wait_text(&a, "system", "welcome", Duration::from_secs(5));
    let t0 = Instant::now();
    let sent = ok(&a, &["send", &sid, "hello bob"]);
    assert!(sent["cursor"].is_string(), "{sent}");
    wait_text(&b, "alice", "hello bob", Duration::from_secs(5));
    let one_way = t0.elapsed();
    let t1 = Instant::now();
    ok(&b, &["send", &sid, "hello alice"]);
    wait_text(&a, "bob", "hello alice", Duration::from_secs(5));
    let other_way = t1.elapsed();
    assert!(
        one_way < Duration::from_millis(1500) && other_way < Duration::from_millis(1500),
        "long-poll delivery took {one_way:?} / {other_way:?}"
    );
    // The stored message says what it is.
    let m = nexus_inbox(&a)
        .into_iter()
        .find(|m| m["message"] == "hello alice")
        .unwrap_or(Value::Null);
    assert_eq!(m["meta"]["session"], sid.as_str(), "{m}");
    assert_eq!(m["meta"]["verified"], true, "{m}");
    assert_eq!(m["meta"]["own"], false, "{m}");
    assert_eq!(m["meta"]["agent_id"], "alice", "{m}");
    let own = nexus_inbox(&a)
        .into_iter()
        .find(|m| m["message"] == "hello bob")
        .unwrap_or(Value::Null);
    assert_eq!(own["meta"]["own"], true, "{own}");

    // poll: from the read cursor, which advances; --after neither uses nor saves it. The
    // session holds the greeting, both member key announces and the two messages.
    let p1 = ok(&b, &["poll", &sid]);
    assert_eq!(p1["messages"].as_array().map(Vec::len), Some(5), "{p1}");
    let p2 = ok(&b, &["poll", &sid, "--members"]);
    assert_eq!(p2["messages"].as_array().map(Vec::len), Some(0), "{p2}");
    assert!(p2["members"].is_array(), "{p2}");
    let p3 = ok(&b, &["poll", &sid, "--after", "0"]);
    assert_eq!(p3["messages"].as_array().map(Vec::len), Some(4), "{p3}");
    ok(&a, &["send", &sid, "third"]);
    let p4 = ok(&b, &["poll", &sid]);
    assert_eq!(p4["messages"][0]["text"], "third", "{p4}");
    // Each message is in each inbox exactly once despite the extra polls.
    wait_text(&b, "alice", "third", Duration::from_secs(5));
    assert_eq!(texts_from(&b, "alice"), ["hello bob", "third"]);

    // sessions lists without keys; rejoin with the key on file counts as "already in".
    let sessions = ok(&b, &["sessions"]);
    assert_eq!(sessions[0]["sessionId"], sid.as_str(), "{sessions}");
    assert_eq!(sessions[0]["agentId"], "bob");
    let again = ok(&b, &["join", &sid, "--agent-id", "bob"]);
    assert_eq!(again["status"], "joined", "{again}");

    // Keys never in logs, status or listings.
    for d in [&a, &b] {
        let status = d.ctl_json(&["status"]).to_string();
        let listed = ok(d, &["sessions"]).to_string();
        for key in [&key_a, &key_b] {
            assert!(!d.logs().contains(key.as_str()), "a session key was logged");
            assert!(!status.contains(key.as_str()) && !listed.contains(key.as_str()));
        }
    }

    // leave frees the slot and forgets the session.
    let left = ok(&b, &["leave", &sid]);
    assert_eq!(left["ok"], true, "{left}");
    assert_eq!(ok(&b, &["sessions"]), json!([]));
    assert!(nexus_row(&b, &sid).is_null());
    let (exit, body) = nx(&b, &["send", &sid, "x"]);
    let msg = body["error"].as_str().unwrap_or("");
    assert!(
        exit == 1 && msg.starts_with("no session key found"),
        "{body}"
    );
}

/// Writes a `nexus.sh`-style session dir: `DIR/SID/{files}`.
fn session_dir(root: &std::path::Path, sid: &str, files: &[(&str, &str)]) {
    let dir = root.join(sid);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (name, text) in files {
        std::fs::write(dir.join(name), format!("{text}\n")).expect("write");
    }
}

fn import(d: &Daemon, dir: &std::path::Path) -> Value {
    let p = dir.to_string_lossy().to_string();
    d.ctl_json(&["import", "--from-nexus", &p])
}

#[test]
fn every_server_error_comes_back_with_exit_1() {
    // Room for a signed message and the two member key announces (see `nexus_signing.rs`).
    let srv = NexusServer::start(&[
        "--max-message-bytes",
        "1000",
        "--max-messages-per-session",
        "5",
    ]);
    let a = daemon_for(&srv);
    let b = daemon_for(&srv);
    let c = daemon_for(&srv);
    fails(&a, &["create", "--ttl", "1"], "invalid_request");
    fails(&a, &["create", "--max-agents", "1"], "invalid_request");
    fails(
        &a,
        &["status", "0123456789abcdef0123456789abcdef0123456789abcdef"],
        "session_not_found",
    );
    fails(
        &a,
        &["claim", "PEARL-FOCAL-S5SJV", "--agent-id", "x"],
        "code_not_found",
    );
    fails(&a, &["pair-status", "PEARL-FOCAL-S5SJV"], "code_not_found");
    let sid = f(
        &ok(&a, &["create", "--creator-agent-id", "alice"]),
        "sessionId",
    );
    let code = f(&ok(&a, &["pair", &sid]), "code");
    ok(&b, &["claim", &code, "--agent-id", "bob"]);
    fails(
        &c,
        &["claim", &code, "--agent-id", "carol"],
        "code_expired_or_used",
    );
    fails(&c, &["join", &sid, "--agent-id", "carol"], "session_full");
    fails(&c, &["join", &sid, "--agent-id", "bob"], "agent_id_taken");
    fails(&a, &["leave", &sid], "forbidden");
    let big = "x".repeat(2000);
    fails(&a, &["send", &sid, &big], "payload_too_large");
    ok(&a, &["send", &sid, "1"]);
    ok(&a, &["send", &sid, "2"]);
    ok(&a, &["send", &sid, "3"]);
    fails(&a, &["send", &sid, "4"], "storage_limit_reached");

    // A wrong key and a non-member, taken over from a nexus.sh directory.
    let (sid2, _) = srv.create(&json!({ "maxAgents": 3, "creatorAgentId": "owner" }));
    srv.join(&sid2, "dave");
    let dir = tempfile::tempdir().expect("tempdir");
    session_dir(
        dir.path(),
        &sid2,
        &[
            ("agent-id", "dave"),
            ("session-key", "wrong"),
            ("url", &srv.url()),
        ],
    );
    assert_eq!(import(&c, dir.path())["nexus_sessions"], 1);
    fails(&c, &["send", &sid2, "hi"], "invalid_session_key");
    fails(&c, &["renew", &sid2], "invalid_session_key");
    fails(&c, &["leave", &sid2], "invalid_session_key");
    let dir2 = tempfile::tempdir().expect("tempdir");
    session_dir(
        dir2.path(),
        &sid2,
        &[("agent_id", "eve"), ("key", "k"), ("server", &srv.url())],
    );
    assert_eq!(import(&b, dir2.path())["nexus_sessions"], 1);
    fails(&b, &["poll", &sid2, "--after", "0"], "agent_not_in_session");
    fails(&b, &["renew", &sid2], "forbidden");
    fails(&b, &["leave", &sid2], "agent_not_found");
    // The poller saw it too and stopped.
    wait_for("removed row", Duration::from_secs(10), || {
        (nexus_row(&b, &sid2)["state"] == "removed").then_some(())
    });

    // Rate limit: 429 with the server's JSON.
    let tight = NexusServer::start_exact(&[
        "--rate-limit-requests",
        "2",
        "--rate-limit-window-secs",
        "600",
    ]);
    let mut hit = false;
    for _ in 0..5 {
        let (exit, body) = nx(&a, &["status", "nope", "--url", &tight.url()]);
        assert_eq!(exit, 1, "{body}");
        if body["error"] == "rate_limit_exceeded" {
            hit = true;
            break;
        }
    }
    assert!(hit, "no 429 from the rate-limited server");
    // Unreachable server: a local error, still JSON, exit 1.
    let (exit, body) = nx(&a, &["status", "x", "--url", "http://127.0.0.1:9"]);
    assert!(exit == 1 && body["error"].is_string(), "{body}");
}

#[test]
fn ttl_expiry_renew_and_auto_renew() {
    let srv = NexusServer::start(&["--min-ttl-secs", "1", "--sweep-interval-secs", "1"]);
    let mut a = daemon_for(&srv);
    // Not joined: nobody renews it, it expires.
    let lone = f(&ok(&a, &["create", "--ttl", "2"]), "sessionId");
    wait_for("lone session to expire", Duration::from_secs(10), || {
        (nx(&a, &["status", &lone]).1["error"] == "session_not_found").then_some(())
    });
    // Manual renew extends it.
    let sid = f(
        &ok(&a, &["create", "--creator-agent-id", "alice", "--ttl", "3"]),
        "sessionId",
    );
    let renewed = ok(&a, &["renew", &sid, "--ttl", "60"]);
    assert_eq!(renewed["ttl"], 60, "{renewed}");
    ok(&a, &["renew", &sid, "--ttl", "3"]);
    // Auto-renew keeps a joined session alive well past its TTL.
    std::thread::sleep(Duration::from_secs(8));
    let st = ok(&a, &["status", &sid]);
    assert_eq!(st["state"], "active", "{st}");
    assert_eq!(nexus_row(&a, &sid)["state"], "long-poll");
    // With the daemon down it expires; on restart the poller finds out and stops.
    a.kill9();
    let probe = daemon_for(&srv);
    wait_for("joined session to expire", Duration::from_secs(15), || {
        (nx(&probe, &["status", &sid]).1["error"] == "session_not_found").then_some(())
    });
    a.spawn();
    wait_for("expired row", Duration::from_secs(10), || {
        (nexus_row(&a, &sid)["state"] == "expired").then_some(())
    });
    assert_eq!(ok(&a, &["sessions"])[0]["state"], "expired");
}

#[test]
fn kill9_of_daemon_and_server_mid_stream_loses_and_doubles_nothing() {
    let mut srv = NexusServer::start(&[]);
    let mut a = daemon_for(&srv);
    let sid = f(
        &ok(&a, &["create", "--creator-agent-id", "alice"]),
        "sessionId",
    );
    let key = srv.join(&sid, "bob");
    let send_text = |srv: &NexusServer, text: &str| {
        let ans = srv.post_message(&sid, "bob", Some(&key), &json!({ "text": text }));
        assert_eq!(ans.0, 201, "{}", ans.1);
    };
    let send = |srv: &NexusServer, i: usize| send_text(srv, &format!("m{i}"));
    let n = 300;
    // Kill the daemon while a stream is being polled and stored; restart it mid-stream.
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            for i in 0..200 {
                send(&srv, i);
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        wait_for("first messages stored", Duration::from_secs(20), || {
            (texts_from(&a, "bob").len() >= 40).then_some(())
        });
        assert!(!sender.is_finished(), "the stream ended before the kill");
        a.kill9();
        std::thread::sleep(Duration::from_millis(200));
        a.spawn();
        sender.join().expect("sender");
    });
    wait_for("daemon catches up", Duration::from_secs(20), || {
        (texts_from(&a, "bob").len() >= 200).then_some(())
    });
    // Kill the server under the polling daemon; it backs off and resumes.
    srv.kill9();
    wait_for("backoff row", Duration::from_secs(20), || {
        (nexus_row(&a, &sid)["state"] == "backoff").then_some(())
    });
    srv.spawn();
    for i in 200..n {
        send(&srv, i);
    }
    // A last message after all of them: once it is in the inbox, every earlier page (and any
    // re-fetch of one) has been stored, so the count below is final.
    send_text(&srv, "end marker");
    wait_text(&a, "bob", "end marker", Duration::from_secs(60));
    let got: Vec<String> = texts_from(&a, "bob")
        .into_iter()
        .filter(|t| t != "end marker")
        .collect();
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(
        (got.len(), unique.len()),
        (n, n),
        "lost or doubled messages"
    );
}

#[test]
fn import_from_a_nexus_sh_directory_then_poll_and_send() {
    let srv = NexusServer::start(&[]);
    let (sid, key) =
        srv.create(&json!({ "maxAgents": 2, "creatorAgentId": "carol", "greeting": "hi" }));
    let dkey = srv.join(&sid, "dave");
    for t in ["one", "two"] {
        let ans = srv.post_message(&sid, "dave", Some(&dkey), &json!({ "text": t }));
        assert_eq!(ans.0, 201, "{}", ans.1);
    }
    let a = daemon_for(&srv);
    let dir = tempfile::tempdir().expect("tempdir");
    // nexus.sh keeps the cursor it last saw: "1" = the greeting and "one" were read already.
    session_dir(
        dir.path(),
        &sid,
        &[
            ("agent-id", "carol"),
            ("session-key", &key),
            ("cursor", "1"),
            ("url", &srv.url()),
        ],
    );
    std::fs::write(dir.path().join("config"), "not a session\n").expect("write");
    assert_eq!(import(&a, dir.path())["nexus_sessions"], 1);
    wait_text(&a, "dave", "two", Duration::from_secs(10));
    assert_eq!(texts_from(&a, "dave"), ["two"]);
    let sent = ok(&a, &["send", &sid, "from carol"]);
    assert!(sent["id"].is_string(), "{sent}");
    let polled = srv.poll(&sid, "dave", "?after=2").1;
    assert_eq!(polled["messages"][0]["verified"], true, "{polled}");
    assert!(!a.logs().contains(&key), "the imported key was logged");
}
