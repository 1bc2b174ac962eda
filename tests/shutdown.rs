//! SIGTERM under load: every role exits 0 within 2 s, and nothing it acknowledged is lost.
//!
//! Each test starts a role with every kind of task it runs busy (the agent daemon: webhook
//! requests, a relay connection, a Nexus long poll, an outbox lane retrying a gateway that is
//! down; the relay server: sends and a WebSocket push; the Nexus server: sends and a parked
//! long poll), keeps senders going while it sends SIGTERM, measures how long the process
//! takes to exit, restarts it on the same data directory and checks that every message it
//! acknowledged is there.

use clawlink_tests::nexus::{expect, field as f, NexusServer};
use clawlink_tests::relay::RelayServer;
use clawlink_tests::{wait_for, Daemon, Proc};
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How fast every role must be gone after SIGTERM.
const LIMIT: Duration = Duration::from_secs(2);

/// Sends SIGTERM to `slot`'s process and returns how long it took to exit, checking it exited 0.
fn sigterm(slot: &mut Option<Proc>, what: &str) -> Duration {
    let mut p = slot.take().expect("a running process");
    let start = Instant::now();
    let status = p.terminate(Duration::from_secs(30));
    let took = start.elapsed();
    let log = p.log_text();
    let status =
        status.unwrap_or_else(|| panic!("{what} still running 30 s after SIGTERM:\n{log}"));
    assert!(status.success(), "{what} exited with {status}:\n{log}");
    assert!(
        !log.contains("did not finish") && !log.contains("did not close"),
        "{what} left tasks behind:\n{log}"
    );
    took
}

/// Runs `send` on `threads` threads until `stop`, collecting what was acknowledged.
fn load(
    threads: usize,
    stop: &Arc<AtomicBool>,
    send: impl Fn(usize, usize) -> Option<String> + Send + Sync + 'static,
) -> (Arc<Mutex<Vec<String>>>, Vec<std::thread::JoinHandle<()>>) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let send = Arc::new(send);
    let handles = (0..threads)
        .map(|t| {
            let (stop, acked, send) = (stop.clone(), acked.clone(), send.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(m) = send(t, i) {
                        acked.lock().unwrap_or_else(|p| p.into_inner()).push(m);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    (acked, handles)
}

fn count(acked: &Arc<Mutex<Vec<String>>>) -> usize {
    acked.lock().unwrap_or_else(|p| p.into_inner()).len()
}

fn finish(stop: &Arc<AtomicBool>, handles: Vec<std::thread::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("load thread");
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

#[test]
fn agent_daemon_exits_within_two_seconds_under_load() {
    let relay = RelayServer::start(&[]);
    let nexus = NexusServer::start(&[]);
    let mut d = Daemon::start();
    d.ctl_json(&[
        "relay",
        "register",
        "--relay",
        &relay.base(),
        "--id",
        "me",
        "--secret",
        "shutdown-secret",
    ]);
    let created = d.ctl_json(&[
        "nexus",
        "create",
        "--url",
        &nexus.url(),
        "--creator-agent-id",
        "me",
    ]);
    let sid = f(&created, "sessionId");
    // A gateway that is down: the send waits in its lane, which keeps retrying.
    let queued = d.ctl(&[
        "send",
        "--url",
        "ws://127.0.0.1:1",
        "--message",
        "waits",
        "--ttl",
        "3600",
    ]);
    assert_eq!(queued.status.code(), Some(3), "{queued:?}");
    wait_for(
        "relay connected and nexus long-polling",
        Duration::from_secs(30),
        || {
            let s = d.ctl_json(&["status"]);
            let rows = s["connections"].as_array()?.clone();
            let relay_up = rows
                .iter()
                .any(|c| c["kind"] == "relay" && c["state"] == "connected");
            let nexus_up = rows.iter().any(|c| {
                c["kind"] == "nexus" && c["target"] == sid.as_str() && c["state"] == "long-poll"
            });
            (relay_up && nexus_up).then_some(())
        },
    );

    let url = format!("http://{}/message", d.listen);
    let client = http();
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, handles) = load(4, &stop, move |t, i| {
        let text = format!("load {t}/{i}");
        let body = json!({"from": "load", "message": text, "id": text});
        match client.post(&url).json(&body).send() {
            Ok(r) if r.status() == 200 => Some(text),
            _ => None,
        }
    });
    wait_for("webhook load", Duration::from_secs(30), || {
        (count(&acked) >= 200).then_some(())
    });
    let took = sigterm(&mut d.proc, "clawlinkd");
    finish(&stop, handles);
    assert!(
        took <= LIMIT,
        "clawlinkd took {took:?} to exit after SIGTERM"
    );

    d.spawn();
    let acked = acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let inbox = d.ctl_json(&["inbox"]);
    let have: HashSet<&str> = inbox
        .as_array()
        .expect("inbox")
        .iter()
        .filter_map(|m| m["message"].as_str())
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|t| !have.contains(t.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let outbox = d.ctl_json(&["outbox"]);
    assert_eq!(
        outbox[0]["state"], "queued",
        "the queued send survives: {outbox}"
    );
}

#[test]
fn relay_server_exits_within_two_seconds_under_load() {
    let mut relay = RelayServer::start(&[]);
    let bob = relay.client("bob", "Bob", "bob-secret");
    assert_eq!(bob.register().0, 201);
    let carol = relay.client("carol", "Carol", "carol-secret");
    assert_eq!(carol.register().0, 201);
    // Carol listens (pushes in flight); bob's messages queue on disk.
    let ws = carol.listen("&ack=1").expect("carol's WebSocket");
    let senders: Vec<_> = (0..4)
        .map(|t| relay.client(&format!("s{t}"), "S", "sender-secret"))
        .collect();
    for s in &senders {
        assert_eq!(s.register().0, 201);
    }
    let senders = Arc::new(senders);
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, handles) = load(4, &stop, {
        let senders = senders.clone();
        move |t, i| {
            let text = format!("load {t}/{i}");
            let to = if i % 2 == 0 { "bob" } else { "carol" };
            match senders[t].try_send(to, &text) {
                Some((200, _)) if to == "bob" => Some(text),
                _ => None,
            }
        }
    });
    wait_for("relay load", Duration::from_secs(30), || {
        (count(&acked) >= 200).then_some(())
    });
    let took = sigterm(&mut relay.proc, "relay-server");
    finish(&stop, handles);
    drop(ws);
    assert!(
        took <= LIMIT,
        "relay-server took {took:?} to exit after SIGTERM"
    );

    relay.spawn();
    let got: HashSet<String> = bob
        .poll_all()
        .iter()
        .filter_map(|m| m["message"].as_str().map(String::from))
        .collect();
    let acked = acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let lost: Vec<&String> = acked.iter().filter(|t| !got.contains(*t)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

#[test]
fn nexus_server_exits_within_two_seconds_under_load() {
    let mut srv = NexusServer::start(&[]);
    let (sid, key) = srv.create(&json!({ "ttl": 3600, "creatorAgentId": "alice" }));
    srv.join(&sid, "bob");
    let url = srv.url();
    // A parked long poll must not hold shutdown.
    let parked = {
        let (url, sid) = (url.clone(), sid.clone());
        std::thread::spawn(move || {
            let _ = reqwest::blocking::Client::new()
                .get(format!(
                    "{url}/v1/sessions/{sid}/messages?after=999999&wait=25"
                ))
                .header("X-Agent-Id", "bob")
                .timeout(Duration::from_secs(40))
                .send();
        })
    };
    let client = http();
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, handles) = load(4, &stop, {
        let (sid, key) = (sid.clone(), key.clone());
        move |t, i| {
            let text = format!("load {t}/{i}");
            let r = client
                .post(format!("{url}/v1/sessions/{sid}/messages"))
                .header("X-Agent-Id", "alice")
                .header("X-Session-Key", &key)
                .json(&json!({ "text": text }))
                .send();
            match r {
                Ok(r) if r.status() == 201 => Some(text),
                _ => None,
            }
        }
    });
    wait_for("nexus load", Duration::from_secs(30), || {
        (count(&acked) >= 200).then_some(())
    });
    let took = sigterm(&mut srv.proc, "nexus-server");
    finish(&stop, handles);
    parked.join().expect("long poll");
    assert!(
        took <= LIMIT,
        "nexus-server took {took:?} to exit after SIGTERM"
    );

    srv.spawn();
    let mut got = HashSet::new();
    let mut after = "0".to_string();
    loop {
        let page = expect(srv.poll(&sid, "bob", &format!("?after={after}")), 200);
        let msgs = page["messages"].as_array().cloned().unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        got.extend(msgs.iter().map(|m| f(m, "text")));
        after = f(&page, "nextCursor");
    }
    let acked = acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let lost: Vec<&String> = acked.iter().filter(|t| !got.contains(*t)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}
