//! End-to-end tests of `clawlinkd relay-server`: the real binary on a free port, driven by a
//! client shaped like the seed's `relay-client.js` (plain HTTP + WebSocket), plus the
//! acknowledged-delivery extension, durability across `kill -9`, and refusal of bad input.

use clawlink_tests::relay::{RelayServer, SeedClient};
use clawlink_tests::{bin, run, wait_for};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A secret the seed client would put raw into a query string: `+`, `%` and non-ASCII.
const ODD_SECRET: &str = "Sup3r+Secret%zz-비밀";

fn registered(relay: &RelayServer, id: &str, name: &str, secret: &str) -> SeedClient {
    let c = relay.client(id, name, secret);
    c.register_until_acknowledged();
    c
}

fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn is_rfc3339_utc(ts: &Value) -> bool {
    ts.as_str()
        .is_some_and(|s| s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

#[test]
fn seed_client_gets_offline_messages_on_poll_and_on_connect_in_order() {
    let relay = RelayServer::start(&[]);
    let alice = registered(&relay, "alice", "Alice", "alice-secret");
    let bob = registered(&relay, "bob.2", "밥 Bob", ODD_SECRET);

    let users = alice.users();
    assert_eq!(users["count"], 2, "{users}");
    assert_eq!(
        users["users"][1],
        json!({ "id": "bob.2", "name": "밥 Bob", "online": false })
    );

    for i in 1..=5 {
        let (status, body) = alice.send("bob.2", &format!("offline {i}"));
        assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
    }
    let (status, polled) = bob.poll();
    assert_eq!(status, 200, "{polled}");
    assert_eq!(polled["count"], 5);
    let messages = polled["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        texts(&messages),
        (1..=5).map(|i| format!("offline {i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        (&messages[0]["from"], &messages[0]["fromName"]),
        (&json!("alice"), &json!("Alice"))
    );
    assert!(is_rfc3339_utc(&messages[0]["timestamp"]), "{}", messages[0]);
    assert_eq!(bob.poll().1["count"], 0, "poll drains");

    for i in 1..=3 {
        assert_eq!(alice.send("bob.2", &format!("queued {i}")).0, 200);
    }
    let ws = bob.listen("").expect("bob's WebSocket");
    let hello = ws.next(Duration::from_secs(10)).expect("connected frame");
    assert_eq!(
        (&hello["type"], &hello["id"], &hello["name"]),
        (&json!("connected"), &json!("bob.2"), &json!("밥 Bob"))
    );
    for i in 1..=3 {
        let m = ws.next_message();
        assert_eq!(m["data"]["message"], format!("queued {i}"));
        assert_eq!(
            (&m["data"]["from"], &m["data"]["fromName"]),
            (&json!("alice"), &json!("Alice"))
        );
        assert!(is_rfc3339_utc(&m["data"]["timestamp"]), "{m}");
    }
    assert_eq!(bob.users()["users"][1]["online"], true);
    assert_eq!(alice.send("bob.2", "live").0, 200);
    assert_eq!(ws.next_message()["data"]["message"], "live");
    ws.abort();
    wait_for("bob offline", Duration::from_secs(10), || {
        (bob.users()["users"][1]["online"] == false).then_some(())
    });
    assert_eq!(
        bob.poll().1["count"],
        0,
        "pushed messages count as delivered for a seed client"
    );
}

#[test]
fn every_acknowledged_send_survives_kill_9() {
    let mut relay = RelayServer::start(&["--id-rate", "0"]);
    let bob = registered(&relay, "bob", "Bob", "bob-secret");
    let senders: Vec<SeedClient> = (0..4)
        .map(|k| registered(&relay, &format!("s{k}"), "sender", "sender-secret"))
        .collect();
    let acked = Arc::new(Mutex::new(Vec::<(usize, u64)>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(k, s)| {
            let (acked, done) = (Arc::clone(&acked), Arc::clone(&done));
            std::thread::spawn(move || {
                for n in 0u64.. {
                    match s.try_send("bob", &format!("{k}:{n}")) {
                        Some((200, body)) if body["ok"] == true => {
                            acked.lock().expect("lock").push((k, n))
                        }
                        _ if done.load(Ordering::SeqCst) => return,
                        other => panic!("send failed while the relay was up: {other:?}"),
                    }
                }
            })
        })
        .collect();
    wait_for("200 acknowledged sends", Duration::from_secs(60), || {
        (acked.lock().expect("lock").len() >= 200).then_some(())
    });
    done.store(true, Ordering::SeqCst);
    relay.kill9();
    for t in threads {
        t.join().expect("sender thread");
    }
    relay.spawn();

    let got = bob.poll_all();
    let mut seen = HashSet::new();
    let mut last: HashMap<usize, u64> = HashMap::new();
    for m in &got {
        let text = m["message"].as_str().unwrap_or_default();
        let (k, n) = text
            .split_once(':')
            .and_then(|(k, n)| Some((k.parse().ok()?, n.parse().ok()?)))
            .expect("a test message");
        assert!(seen.insert((k, n)), "{text} delivered twice");
        if let Some(prev) = last.insert(k, n) {
            assert!(n > prev, "sender {k}: {n} delivered after {prev}");
        }
    }
    let acked = acked.lock().expect("lock");
    let lost: Vec<_> = acked.iter().filter(|a| !seen.contains(a)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost after kill -9, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn bad_credentials_hijacks_and_bad_input_are_refused_and_the_relay_keeps_serving() {
    let mut relay = RelayServer::start(&[]);
    let alice = registered(&relay, "alice", "Alice", ODD_SECRET);
    let bob = registered(&relay, "bob", "Bob", "bob-secret");
    let ok_send = |what: &str| {
        let (status, body) = alice.send("bob", "still-serving-body");
        assert_eq!(
            (status, &body["ok"]),
            (200, &json!(true)),
            "after {what}: {body}"
        );
    };
    let is_error = |(status, body): (u16, Value), want: u16, what: &str| {
        assert_eq!(status, want, "{what}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: no JSON error: {body}"
        );
        ok_send(what);
    };

    let thief = relay.client("alice", "Mallory", "wrong-secret-XYZ");
    is_error(
        thief.send("bob", "forged-body"),
        401,
        "send with a wrong secret",
    );
    is_error(thief.poll(), 401, "poll with a wrong secret");
    assert_eq!(thief.listen("").err(), Some(401), "ws with a wrong secret");
    assert_eq!(
        relay.client("nobody", "N", "x").listen("&ack=1").err(),
        Some(401),
        "ws of an unknown id"
    );
    is_error(thief.register(), 409, "re-register with another secret");
    assert_eq!(
        alice.users()["users"][0]["name"],
        "Alice",
        "a refused hijack changes nothing"
    );
    assert_eq!(alice.register().0, 201, "re-register with the same secret");

    let big = "x".repeat(64 * 1024 + 1);
    is_error(alice.send("bob", &big), 413, "oversized message");
    is_error(
        alice.post_raw("/send", "x".repeat(2 << 20)),
        413,
        "oversized body",
    );
    is_error(
        alice.post_raw("/send", "{\"from\": \"alice\", \"to\""),
        400,
        "malformed JSON",
    );
    is_error(
        alice.post_raw("/register", "[1, 2]"),
        400,
        "JSON of the wrong shape",
    );
    is_error(
        alice.post("/send", &json!({ "from": "alice", "secret": ODD_SECRET })),
        400,
        "missing fields",
    );
    is_error(
        relay.client("bad id!", "B", "s").register(),
        400,
        "invalid id",
    );
    // Control and bidi characters are stripped from names, not refused.
    let (status, body) = relay.client("ctl", "a\u{7}b", "s").register();
    assert_eq!((status, &body["name"]), (201, &json!("ab")), "{body}");
    ok_send("a name with a control character");
    is_error(
        alice.send("nobody", "to-nobody-body"),
        404,
        "unknown recipient",
    );

    let bearer = reqwest::blocking::Client::new()
        .post(format!("{}/send", relay.base()))
        .bearer_auth("bob-secret")
        .json(&json!({ "from": "bob", "to": "alice", "message": "via-bearer-body" }))
        .send()
        .expect("send with a bearer token");
    assert_eq!(
        bearer.status().as_u16(),
        200,
        "Authorization: Bearer is accepted"
    );
    assert_eq!(texts(&alice.poll_all()), ["via-bearer-body"]);
    assert!(
        bob.poll_all()
            .iter()
            .all(|m| m["message"] == "still-serving-body"),
        "no forged message arrived"
    );

    let users = alice.users();
    for u in users["users"].as_array().cloned().unwrap_or_default() {
        let keys: HashSet<_> = u
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            ["id", "name", "online"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            "/users shows only id, name, online"
        );
    }
    assert!(relay.running());
    assert!(relay.stop(), "SIGTERM exits 0");
    let logs = relay.logs();
    assert!(logs.contains("registered"), "logs were captured: {logs}");
    for secret in [
        ODD_SECRET,
        "bob-secret",
        "wrong-secret-XYZ",
        "still-serving-body",
        "forged-body",
        "via-bearer-body",
    ] {
        assert!(!logs.contains(secret), "the log contains {secret:?}");
    }
}

#[test]
fn ack_extension_redelivers_unacked_messages_and_never_acked_ones() {
    let mut relay = RelayServer::start(&[]);
    let alice = registered(&relay, "alice", "Alice", "a");
    let bob = registered(&relay, "bob", "Bob", ODD_SECRET);

    let ws = bob.listen("&ack=1").expect("ack-mode WebSocket");
    let hello = ws.next(Duration::from_secs(10)).expect("connected frame");
    assert_eq!(
        (&hello["type"], &hello["ack"]),
        (&json!("connected"), &json!(true))
    );
    for i in 1..=3 {
        assert_eq!(alice.send("bob", &format!("m{i}")).0, 200);
    }
    let first: Vec<Value> = (0..3).map(|_| ws.next_message()).collect();
    assert_eq!(
        texts(&first.iter().map(|m| m["data"].clone()).collect::<Vec<_>>()),
        ["m1", "m2", "m3"]
    );
    let ids: Vec<String> = first
        .iter()
        .map(|m| m["id"].as_str().expect("message id").to_string())
        .collect();
    assert!(first.iter().all(|m| m["id"] == m["data"]["id"]));
    ws.ack(&ids[0]);
    wait_for("m1 acked", Duration::from_secs(10), || {
        (bob.peek().1["count"] == 2).then_some(())
    });
    ws.abort();

    // Unacked messages survive a restart and come again, with the same ids.
    assert!(relay.stop(), "SIGTERM exits 0");
    relay.spawn();
    let ws = bob.listen("&ack=1").expect("reconnect");
    let again: Vec<Value> = (0..2).map(|_| ws.next_message()).collect();
    assert_eq!(
        again
            .iter()
            .map(|m| m["data"]["message"].clone())
            .collect::<Vec<_>>(),
        [json!("m2"), json!("m3")]
    );
    assert_eq!(
        again
            .iter()
            .map(|m| m["id"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>(),
        ids[1..]
    );
    for id in &ids[1..] {
        ws.ack(id);
    }
    wait_for("m2 and m3 acked", Duration::from_secs(10), || {
        (bob.peek().1["count"] == 0).then_some(())
    });
    ws.abort();

    assert_eq!(alice.send("bob", "m4").0, 200);
    let ws = bob.listen("&ack=1").expect("third connection");
    assert_eq!(
        ws.next_message()["data"]["message"],
        "m4",
        "acked messages are not pushed again"
    );
    ws.abort();
    // The polling side of the extension: peek keeps, POST /ack deletes.
    let peeked = bob.peek().1;
    assert_eq!(
        texts(
            peeked["messages"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
        ),
        ["m4"]
    );
    let ack = bob.post(
        "/ack",
        &json!({ "id": "bob", "secret": ODD_SECRET, "ids": [peeked["messages"][0]["id"]] }),
    );
    assert_eq!(ack, (200, json!({ "ok": true, "removed": 1 })));
    assert_eq!(bob.poll().1["count"], 0);
}

#[test]
fn full_queues_and_fast_senders_get_429_and_help_documents_the_extension() {
    let relay = RelayServer::start(&[
        "--queue-cap",
        "3",
        "--id-rate",
        "0",
        "--sender-share",
        "100",
    ]);
    let alice = registered(&relay, "alice", "Alice", "a");
    let bob = registered(&relay, "bob", "Bob", "b");
    for i in 0..3 {
        assert_eq!(alice.send("bob", &format!("q{i}")).0, 200);
    }
    let (status, body) = alice.send("bob", "q3");
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("queue")),
        "{body}"
    );
    assert_eq!(texts(&bob.poll_all()), ["q0", "q1", "q2"]);
    assert_eq!(alice.send("bob", "q4").0, 200, "room again once read");

    let limited = RelayServer::start(&["--id-rate", "1"]);
    let carol = registered(&limited, "carol", "Carol", "c");
    let statuses: Vec<u16> = (0..6)
        .map(|i| carol.send("carol", &format!("r{i}")).0)
        .collect();
    assert_eq!(statuses[0], 200);
    assert!(statuses.contains(&429), "{statuses:?}");

    let help = run(std::process::Command::new(bin("clawlinkd")).args(["relay-server", "--help"]));
    let help = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "--listen",
        "--data-dir",
        "--max-message-bytes",
        "--queue-cap",
        "ack=1",
        "\"type\":\"ack\"",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn a_send_retried_with_its_key_is_queued_once_even_across_a_restart() {
    let mut relay = RelayServer::start(&[]);
    let a = registered(&relay, "ka", "A", "secret-ka-1");
    let b = registered(&relay, "kb", "B", "secret-kb-1");
    let keyed = |key: &str, text: &str| {
        a.post(
            "/send",
            &json!({"from": "ka", "to": "kb", "message": text, "secret": "secret-ka-1", "key": key}),
        )
    };
    let (st, first) = keyed("k-1", "once");
    assert_eq!(st, 200, "{first}");
    assert!(first.get("duplicate").is_none(), "{first}");
    let (st, again) = keyed("k-1", "once");
    assert_eq!((st, &again["duplicate"]), (200, &json!(true)), "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["timestamp"], first["timestamp"]);
    // The key is remembered on disk: a retry after a crash is still recognised.
    relay.kill9();
    relay.spawn();
    let (st, after) = keyed("k-1", "once");
    assert_eq!((st, &after["id"]), (200, &first["id"]), "{after}");
    assert_eq!(after["duplicate"], true);
    // A new key is a new message; a malformed key is refused.
    assert_eq!(keyed("k-2", "twice").0, 200);
    for bad in ["", "has space", &"k".repeat(129)] {
        assert_eq!(keyed(bad, "x").0, 400, "key {bad:?}");
    }
    assert_eq!(texts(&b.poll_all()), ["once", "twice"]);
}

/// Acks in push order remove the acked head of the queue in one call; an ack out of order
/// removes only its own message, and never one that is still unacked.
#[test]
fn out_of_order_acks_remove_only_acked_messages() {
    let relay = RelayServer::start(&[]);
    let alice = registered(&relay, "alice", "Alice", "a");
    let bob = registered(&relay, "bob", "Bob", "b");
    for i in 1..=6 {
        assert_eq!(alice.send("bob", &format!("m{i}")).0, 200);
    }
    let ws = bob.listen("&ack=1").expect("ack-mode WebSocket");
    let pushed: Vec<Value> = (0..6).map(|_| ws.next_message()).collect();
    assert_eq!(
        texts(&pushed.iter().map(|m| m["data"].clone()).collect::<Vec<_>>()),
        ["m1", "m2", "m3", "m4", "m5", "m6"]
    );
    let ids: Vec<String> = pushed
        .iter()
        .map(|m| m["id"].as_str().expect("message id").to_string())
        .collect();
    let queued = || {
        texts(
            bob.peek().1["messages"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
    };
    let until = |what: &str, want: &[&str]| {
        wait_for(what, Duration::from_secs(10), || {
            (queued() == want).then_some(())
        })
    };
    // m2 and m5 first: m1 is unacked, so nothing goes in bulk.
    ws.ack(&ids[1]);
    ws.ack(&ids[4]);
    until("m2 and m5 removed", &["m1", "m3", "m4", "m6"]);
    // m1: the head (m1, m2) goes; m3, m4 and m6 stay.
    ws.ack(&ids[0]);
    until("m1 removed", &["m3", "m4", "m6"]);
    // m4, then m3: everything below m6 is acked; m6 stays.
    ws.ack(&ids[3]);
    ws.ack(&ids[2]);
    until("m3 and m4 removed", &["m6"]);
    ws.abort();
    // A new connection gets exactly the unacked message again, under its id.
    let ws = bob.listen("&ack=1").expect("reconnect");
    let again = ws.next_message();
    assert_eq!(
        (&again["id"], &again["data"]["message"]),
        (&json!(ids[5]), &json!("m6"))
    );
    ws.ack(&ids[5]);
    until("m6 removed", &[]);
    ws.abort();
}
