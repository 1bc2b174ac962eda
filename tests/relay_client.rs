//! The agent daemon as a relay client: two real `clawlinkd` daemons (A and B) and a real
//! `clawlinkd relay-server`, all on loopback. A sends with `clawlink relay send` or
//! `clawlink send --to CONTACT`; B stays connected and stores what is pushed; crashes of the
//! relay and of B lose nothing and double nothing.

use clawlink_tests::daemon::Daemon;
use clawlink_tests::relay::RelayServer;
use clawlink_tests::wait_for;
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const SECRET_A: &str = "alice-secret-Zq8";
const SECRET_B: &str = "bob-secret-Kx3";

fn register(d: &Daemon, relay: &RelayServer, id: &str, secret: &str) -> Value {
    d.ctl_json(&[
        "relay",
        "register",
        "--relay",
        &relay.base(),
        "--id",
        id,
        "--name",
        id,
        "--secret",
        secret,
    ])
}

/// Relay messages in `d`'s inbox, oldest first.
fn inbox(d: &Daemon) -> Vec<Value> {
    d.ctl_json(&["inbox", "--source", "relay"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `clawlink ARGS --json` whatever its exit status (a failed send exits non-zero).
fn ctl_any(d: &Daemon, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = d.ctl(&all);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn texts(d: &Daemon) -> Vec<String> {
    inbox(d)
        .iter()
        .map(|m| m["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn wait_connected(d: &Daemon, target: &str) -> Value {
    wait_for("relay connection", Duration::from_secs(20), || {
        let s = d.ctl_json(&["status"]);
        s["connections"]
            .as_array()?
            .iter()
            .find(|c| c["kind"] == "relay" && c["target"] == target && c["state"] == "connected")
            .cloned()
    })
}

/// Prefix of the end markers [`expect_exactly`] sends.
const END: &str = "end marker";

/// Checks that `d` holds exactly `want` (in this order, once each). `send` delivers one more
/// message the way the others came (same sender, same relay queue); once that end marker is
/// in the inbox, everything sent before it, and any redelivery of it, has arrived too, so the
/// count is final without waiting out a quiet window.
fn expect_exactly(d: &Daemon, want: &[String], send: impl Fn(&str), timeout: Duration) {
    static MARKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = MARKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let marker = format!("{END} {n}");
    send(&marker);
    wait_for("the end marker in the inbox", timeout, || {
        texts(d).contains(&marker).then_some(())
    });
    let got: Vec<String> = texts(d)
        .into_iter()
        .filter(|t| !t.starts_with(END))
        .collect();
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "duplicates in the inbox: {got:?}");
    assert_eq!(got, want, "inbox differs from what was sent");
}

fn setup() -> (RelayServer, Daemon, Daemon) {
    let relay = RelayServer::start(&[]);
    let (a, b) = (Daemon::start(), Daemon::start());
    let r = register(&a, &relay, "alice", SECRET_A);
    assert_eq!(r["id"], "alice");
    assert_eq!(r["relay"], relay.base());
    register(&b, &relay, "bob", SECRET_B);
    wait_connected(&b, &format!("{}/bob", relay.base()));
    (relay, a, b)
}

#[test]
fn live_send_contact_send_users_status_and_no_secret_leaks() {
    let (relay, a, b) = setup();
    let start = Instant::now();
    let r = a.ctl_json(&["relay", "send", "--to", "bob", "--message", "hello bob"]);
    assert_eq!(r["state"], "delivered", "{r}");
    assert_eq!(r["transport"], "relay");
    wait_for("message in B's inbox", Duration::from_secs(1), || {
        (texts(&b) == ["hello bob"]).then_some(())
    });
    eprintln!("relay send → B's inbox: {:?}", start.elapsed());
    let m = &inbox(&b)[0];
    assert_eq!(m["from"], "alice");
    assert_eq!(m["source"], "relay");
    assert_eq!(m["meta"]["relay"], relay.base());
    assert_eq!(m["meta"]["to"], "bob");
    assert_eq!(m["meta"]["fromName"], "alice");
    assert!(m["source_id"]
        .as_str()
        .expect("relay client test step")
        .starts_with(&relay.base()));

    // A relay:// contact goes through the same transport.
    let url = format!("relay://{}/bob", relay.addr);
    a.ctl_json(&["contacts", "add", "--name", "bobby", "--url", &url]);
    let r = a.ctl_json(&["send", "--to", "bobby", "--message", "via contact"]);
    assert_eq!(r["state"], "delivered", "{r}");
    wait_for("contact message", Duration::from_secs(5), || {
        (texts(&b) == ["hello bob", "via contact"]).then_some(())
    });

    // An unknown recipient fails for good with the relay's reason.
    let r = ctl_any(&a, &["relay", "send", "--to", "nobody", "--message", "x"]);
    assert_eq!(r["state"], "failed", "{r}");

    // users: both online.
    let u = a.ctl_json(&["relay", "users"]);
    let users = u["users"].as_array().expect("relay client test step");
    for id in ["alice", "bob"] {
        let row = users.iter().find(|x| x["id"] == id).expect(id);
        assert_eq!(row["online"], true, "{u}");
    }

    // status: one relay row per identity; text output too.
    let row = wait_connected(&a, &format!("{}/alice", relay.base()));
    assert_eq!(row["info"]["acks"], "true");
    let text = a.ctl(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains("relay"), "{text}");

    // The secrets never show up in logs or status.
    let status_json = a.ctl_json(&["status"]).to_string() + &b.ctl_json(&["status"]).to_string();
    for hay in [a.logs(), b.logs(), status_json, text] {
        assert!(
            !hay.contains(SECRET_A) && !hay.contains(SECRET_B),
            "secret leaked"
        );
    }
}

#[test]
fn offline_recipient_gets_all_hundred_once_in_order() {
    let (_relay, a, mut b) = setup();
    assert!(b.stop());
    let want: Vec<String> = (0..100)
        .map(|i| format!("offline message {i:03}"))
        .collect();
    for m in &want {
        let r = a.ctl_json(&["relay", "send", "--to", "bob", "--message", m]);
        assert_eq!(r["state"], "delivered", "{r}");
    }
    let via_a = |m: &str| {
        let r = a.ctl_json(&["relay", "send", "--to", "bob", "--message", m, "--wait"]);
        assert_eq!(r["state"], "delivered", "{r}");
    };
    b.spawn();
    expect_exactly(&b, &want, via_a, Duration::from_secs(20));
    // Restarting again (connection comes back from the store) brings nothing twice.
    assert!(b.stop());
    b.spawn();
    expect_exactly(&b, &want, via_a, Duration::from_secs(20));
}

#[test]
fn relay_kill9_mid_stream_loses_nothing() {
    let (mut relay, a, b) = setup();
    let want: Vec<String> = (0..60).map(|i| format!("stream {i:02}")).collect();
    let outbox_len = || a.ctl_json(&["outbox"]).as_array().map_or(0, |v| v.len());
    let mut pending = Vec::new();
    for (i, m) in want.iter().enumerate() {
        if i == 25 {
            relay.kill9();
        }
        if i == 40 {
            relay.spawn();
        }
        if (25..40).contains(&i) {
            // The relay is down: the send waits in A's outbox behind the earlier ones. Start
            // it in the background and wait until it is queued, so the order is kept.
            let child = std::process::Command::new(clawlink_tests::bin("clawlink"))
                .arg("--socket")
                .arg(&a.socket)
                .args(["relay", "send", "--to", "bob", "--message", m, "--json"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("relay client test step");
            pending.push(child);
            wait_for("send queued", Duration::from_secs(10), || {
                (outbox_len() == i + 1).then_some(())
            });
            continue;
        }
        let r = ctl_any(&a, &["relay", "send", "--to", "bob", "--message", m]);
        assert!(
            r["state"] == "delivered" || r["state"] == "queued",
            "unexpected: {r}"
        );
    }
    // The marker queues behind the retried sends in A's outbox lane, so it arrives last.
    let via_a = |m: &str| {
        let r = a.ctl_json(&["relay", "send", "--to", "bob", "--message", m, "--wait"]);
        assert_eq!(r["state"], "delivered", "{r}");
    };
    expect_exactly(&b, &want, via_a, Duration::from_secs(60));
    for mut c in pending {
        c.wait().expect("relay client test step");
    }
    let o = a.ctl_json(&["outbox"]);
    let o = o.as_array().expect("relay client test step");
    assert_eq!(o.len(), 61, "60 messages and the end marker");
    assert!(o.iter().all(|e| e["state"] == "delivered"), "{o:?}");
    assert!(
        o.iter().any(|e| e["attempts"].as_u64() > Some(1)),
        "nothing was retried"
    );
}

#[test]
fn recipient_kill9_while_pushing_loses_and_doubles_nothing() {
    let (relay, _a, mut b) = setup();
    // Alice sends straight to the relay (as the seed client would) so the stream is fast.
    let alice = relay.client("alice", "alice", SECRET_A);
    let alice_again = relay.client("alice", "alice", SECRET_A);
    let want: Vec<String> = (0..300).map(|i| format!("push {i:03}")).collect();
    let sender = {
        let want = want.clone();
        std::thread::spawn(move || {
            for m in &want {
                let (status, body) = alice.send("bob", m);
                assert_eq!(status, 200, "{body}");
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    wait_for("some messages stored", Duration::from_secs(20), || {
        (texts(&b).len() >= 30).then_some(())
    });
    b.kill9();
    sender.join().expect("relay client test step");
    b.spawn();
    let via_alice = |m: &str| assert_eq!(alice_again.send("bob", m).0, 200);
    expect_exactly(&b, &want, via_alice, Duration::from_secs(30));
}

#[test]
fn setup_poll_import_and_register_errors() {
    let relay = RelayServer::start(&[]);
    let d = Daemon::start();
    // setup saves the default relay used without --relay.
    let r = d.ctl_json(&["relay", "setup", "--relay", &format!("{}/", relay.base())]);
    assert_eq!(r["relay"], relay.base());
    let u = d.ctl_json(&["relay", "users"]);
    assert_eq!(u["count"], 0, "{u}");
    // Sending with no identity says what to do.
    let out = d.ctl(&["relay", "send", "--to", "x", "--message", "m"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("relay register"));

    // An id taken with another secret: a clear error, nothing saved.
    let carol = relay.client("carol", "Carol", "carol-right-secret");
    assert_eq!(carol.register().0, 201);
    let out = d.ctl(&[
        "relay",
        "register",
        "--id",
        "carol",
        "--secret",
        "carol-wrong-secret",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already registered"), "{err}");
    assert!(!err.contains("carol-wrong-secret"));

    // Messages wait on the relay for carol; importing the seed's relay-config.json connects
    // and `relay poll` stores them (together with the live connection: each exactly once).
    let dave = relay.client("dave", "Dave", "dave-secret");
    assert_eq!(dave.register().0, 201);
    let want: Vec<String> = (0..5).map(|i| format!("for carol {i}")).collect();
    for m in &want {
        assert_eq!(dave.send("carol", m).0, 200);
    }
    let skill = tempfile::tempdir().expect("relay client test step");
    let cfg = serde_json::json!({ "relay": relay.base(), "id": "carol", "name": "Carol", "secret": "carol-right-secret" });
    std::fs::write(skill.path().join("relay-config.json"), cfg.to_string())
        .expect("relay client test step");
    let r = d.ctl_json(&[
        "import",
        "--from-skill",
        skill.path().to_str().expect("relay client test step"),
    ]);
    assert_eq!(r["relay"], true, "{r}");
    let polled = d.ctl_json(&["relay", "poll"]);
    let polled = polled.as_array().expect("relay client test step").clone();
    let via_dave = |m: &str| assert_eq!(dave.send("carol", m).0, 200);
    expect_exactly(&d, &want, via_dave, Duration::from_secs(10));
    let all = inbox(&d);
    for p in &polled {
        assert!(all.iter().any(|m| m["id"] == p["id"]), "poll returned {p}");
    }
    wait_connected(&d, &format!("{}/carol", relay.base()));
    // Nothing left on the relay; a second poll finds nothing new.
    wait_for("relay queue empty", Duration::from_secs(5), || {
        let (_, body) = carol.peek();
        (body["count"] == 0).then_some(())
    });
    assert_eq!(d.ctl_json(&["relay", "poll"]), serde_json::json!([]));
    let out = d.ctl(&["relay", "poll"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no new messages"));
    assert!(!d.logs().contains("carol-right-secret"));
}
