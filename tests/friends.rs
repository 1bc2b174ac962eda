//! Friends over the real paths: two real daemons make friends by an invite carried over a real
//! relay (or posted directly), then `clawlink send --to FRIEND` seals, carries and confirms
//! messages with signed receipts. The relay stores only ciphertext; with the friend on two
//! relays, killing one mid-stream loses and doubles nothing.

use clawlink_tests::daemon::Daemon;
use clawlink_tests::friends::{befriend, hellos_exchanged};
use clawlink_tests::relay::{register_daemon, RelayServer};
use clawlink_tests::{files_under, wait_for};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

fn register(d: &Daemon, relay: &RelayServer, id: &str) {
    let r = register_daemon(d, relay, id);
    assert_eq!(r["id"], id, "{r}");
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// `clawlink ARGS --json` whatever its exit status, with the exit code.
fn ctl_any(d: &Daemon, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = d.ctl(&all);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

/// Messages from friends in `d`'s inbox, oldest first.
fn from_friends(d: &Daemon) -> Vec<Value> {
    d.ctl_json(&["inbox", "--source", "friend", "--limit", "1000"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Relays R1 and R2, daemons A (alice) and B (bob) registered on both, friends by an invite
/// that gives bob's addresses as R1 then R2.
fn bob_on_two_relays() -> (RelayServer, RelayServer, Daemon, Daemon) {
    let r1 = RelayServer::start_sled(&[]);
    let r2 = RelayServer::start_sled(&[]);
    let (a, b) = (Daemon::start(), Daemon::start());
    for (d, id) in [(&a, "alice"), (&b, "bob")] {
        register(d, &r1, id);
        register(d, &r2, id);
    }
    let via = [
        format!("relay://{}/bob", r1.addr),
        format!("relay://{}/bob", r2.addr),
    ];
    befriend(&b, &a, ("bob", "alice"), &via);
    (r1, r2, a, b)
}

/// No file under `dir` contains `needle`; returns how many files were read.
fn nowhere_in(dir: &std::path::Path, needle: &str) -> usize {
    let files = files_under(dir);
    for (p, bytes) in &files {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle:?} found in {}",
            p.display()
        );
    }
    files.len()
}

#[test]
fn an_invite_over_a_relay_then_sealed_messages_each_way_confirmed_stored() {
    let relay = RelayServer::start_sled(&[]);
    let (a, b) = (Daemon::start(), Daemon::start());
    register(&a, &relay, "alice");
    register(&b, &relay, "bob");
    // No --via: the invite carries A's relay id.
    befriend(&a, &b, ("alice", "bob"), &[]);
    // Both builds read batched receipts, and each tells the other so in a signed hello.
    hellos_exchanged(&a, "bob", &b, "alice");

    let texts = [
        (&b, &a, "alice", "bob", "the eagle lands at noon 7f3a"),
        (&a, &b, "bob", "alice", "the owl flies at dusk 91c2"),
    ];
    for (from, to, to_name, from_name, text) in texts {
        let (code, sent) = ctl_any(
            from,
            &["send", "--to", to_name, "--message", text, "--wait=stored"],
        );
        assert_eq!(code, Some(0), "{sent}");
        assert_eq!(
            (sent["transport"].as_str(), sent["peer"].as_str()),
            (Some("friend"), Some("stored")),
            "{sent}"
        );
        let got = from_friends(to);
        let m = got
            .iter()
            .find(|m| m["message"] == text)
            .unwrap_or_else(|| panic!("{text:?} not in {got:?}"));
        assert_eq!(m["from"], from_name);
        assert_eq!(m["meta"]["verified"], true);
        assert_eq!(m["meta"]["friend"], from_name);
        assert_eq!(m["meta"]["via"], "relay");
        // The outbox shows the friend's receipt.
        let outbox = from.ctl_json(&["outbox"]);
        let rec = outbox
            .as_array()
            .and_then(|l| l.iter().find(|e| e["id"] == sent["id"]).cloned())
            .unwrap_or_else(|| panic!("{} not in {outbox}", sent["id"]));
        assert_eq!(rec["peer"], "stored", "{rec}");
    }
    // The relay only ever held ciphertext; nothing was left as plaintext either.
    let files = nowhere_in(&relay.data_dir, "the eagle lands")
        + nowhere_in(&relay.data_dir, "the owl flies");
    assert!(files > 0, "the relay's data dir holds no files");

    // A name that is no friend and no contact is refused; --wait=stored needs a friend.
    let (code, _) = ctl_any(&a, &["send", "--to", "nobody", "--message", "x"]);
    assert_eq!(code, Some(1));
    let out = a.ctl(&[
        "send",
        "--url",
        &format!("relay://{}/bob", relay.addr),
        "--message",
        "x",
        "--wait=stored",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("friend"));
}

#[test]
fn a_friend_on_two_relays_gets_every_message_once_when_one_relay_dies() {
    let (mut r1, _r2, a, b) = bob_on_two_relays();

    let total = 60;
    let mut ids = HashMap::new();
    for i in 0..total {
        if i == total / 2 {
            r1.kill9();
        }
        let text = format!("multipath message {i:03}");
        let (code, sent) = ctl_any(&a, &["send", "--to", "bob", "--message", &text]);
        // 0 delivered (a relay took it) or 3 queued (both refused for now: retried).
        assert!(matches!(code, Some(0) | Some(3)), "{sent}");
        ids.insert(s(&sent, "id"), text);
    }
    let got = wait_for("every message at B", Duration::from_secs(90), || {
        let got = from_friends(&b);
        (got.len() >= total).then_some(got)
    });
    let mut texts: Vec<String> = got.iter().map(|m| s(m, "message")).collect();
    texts.sort();
    let mut want: Vec<String> = ids.values().cloned().collect();
    want.sort();
    assert_eq!(texts, want, "each message exactly once");
    // After the kill, messages went through R2.
    assert!(got
        .iter()
        .skip(total / 2 + 1)
        .all(|m| m["meta"]["verified"] == true));
    // And every one is confirmed stored at A.
    wait_for("every receipt at A", Duration::from_secs(60), || {
        let outbox = a.ctl_json(&["outbox"]);
        let list = outbox.as_array()?;
        let stored = list
            .iter()
            .filter(|e| ids.contains_key(&s(e, "id")) && e["peer"] == "stored")
            .count();
        (stored == total).then_some(())
    });
}

#[test]
fn a_friend_reaches_a_daemon_directly_without_its_token_and_forgeries_are_refused() {
    let mut a = Daemon::new();
    a.write_config("[listen]\ntoken = \"webhook-token-for-plaintext-only\"\n");
    a.spawn();
    let b = Daemon::start();
    let direct = format!("http://{}/envelope", a.listen);
    befriend(&a, &b, ("alice", "bob"), std::slice::from_ref(&direct));

    let (code, sent) = ctl_any(
        &b,
        &[
            "send",
            "--to",
            "alice",
            "--message",
            "straight to you",
            "--wait=stored",
        ],
    );
    assert_eq!(
        (code, sent["peer"].as_str()),
        (Some(0), Some("stored")),
        "{sent}"
    );
    let got = from_friends(&a);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["meta"]["via"], "http");
    assert_eq!(got[0]["from"], "bob");

    let http = reqwest::blocking::Client::new();
    let post = |body: String| {
        let r = http
            .post(&direct)
            .body(body)
            .send()
            .expect("POST /envelope");
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or_default())
    };
    // Not an envelope; a tampered one; one sealed by a stranger to a third daemon.
    assert_eq!(post("hello".into()).0, 400);
    let sealed = b.ctl_json(&["friend", "seal", "alice", "--message", "tamper me"]);
    let env = s(&sealed, "envelope");
    let mut bytes = env.into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let (status, body) = post(String::from_utf8(bytes).unwrap_or_default());
    assert_eq!(status, 403, "{body}");
    let c = Daemon::start();
    let inv = c.ctl_json(&[
        "friend",
        "invite",
        "--name",
        "x",
        "--via",
        "relay://127.0.0.1:9/c",
    ]);
    b.ctl_json(&["friend", "accept", &s(&inv, "invite"), "--name", "carol"]);
    let stranger = b.ctl_json(&["friend", "seal", "carol", "--message", "not for alice"]);
    let (status, body) = post(s(&stranger, "envelope"));
    assert_eq!(status, 403, "{body}");
    // Nothing of those reached the inbox; plaintext writes still need the token.
    assert_eq!(from_friends(&a).len(), 1);
    let r = a.post_message(&serde_json::json!({"from": "x", "message": "plain"}));
    assert_eq!(r.status().as_u16(), 401);
}

#[test]
fn friends_in_a_nexus_session_talk_sealed_and_the_server_stores_only_ciphertext() {
    use clawlink_tests::nexus::{field, NexusServer};
    let srv = NexusServer::start(&[]);
    let for_srv = || {
        let mut d = Daemon::new();
        d.write_config(&format!(
            "[nexus]\nurl = \"{}\"\npoll_interval_secs = 1\n",
            srv.url()
        ));
        d.spawn();
        d
    };
    let (a, b) = (for_srv(), for_srv());
    let created = a.ctl_json(&["nexus", "create", "--creator-agent-id", "alice"]);
    let sid = field(&created, "sessionId");
    let code = field(&a.ctl_json(&["nexus", "pair", &sid]), "code");
    b.ctl_json(&["nexus", "claim", &code, "--agent-id", "bob"]);
    // No --via: A's joined session is its address, and B's accept names B's.
    let ids = a.ctl_json(&["id"]);
    let addresses = ids["addresses"].to_string();
    assert!(addresses.contains(&sid), "{ids}");
    befriend(&a, &b, ("alice", "bob"), &[]);

    for (from, to, name, text) in [
        (&b, &a, "alice", "meet by the old mill 5d1e"),
        (&a, &b, "bob", "bring the blue lantern 0b7c"),
    ] {
        let (code, sent) = ctl_any(
            from,
            &["send", "--to", name, "--message", text, "--wait=stored"],
        );
        assert_eq!(
            (code, sent["peer"].as_str()),
            (Some(0), Some("stored")),
            "{sent}"
        );
        let got = from_friends(to);
        let m = got
            .iter()
            .find(|m| m["message"] == text)
            .unwrap_or_else(|| panic!("{text:?} not in {got:?}"));
        assert_eq!(m["meta"]["via"], "nexus");
        assert_eq!(m["meta"]["verified"], true);
    }
    // The session's plaintext inbox entries are only the server's greeting, if any: the
    // envelopes were opened, not stored as text.
    let nexus_texts = a.ctl_json(&["inbox", "--source", "nexus"]);
    assert!(!nexus_texts.to_string().contains("cle1:"), "{nexus_texts}");
    assert!(nowhere_in(&srv.data_dir, "old mill") > 0);
    nowhere_in(&srv.data_dir, "blue lantern");
}

/// `d`'s `trust` row counter `key` (0 when absent).
fn trust_counter(d: &Daemon, key: &str) -> u64 {
    clawlink_tests::friends::trust_row(d)["info"][key]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_burst_is_confirmed_stored_with_fewer_receipts_than_messages() {
    let relay = RelayServer::start_sled(&[]);
    let (a, mut b) = (Daemon::start(), Daemon::start());
    register(&a, &relay, "alice");
    register(&b, &relay, "bob");
    befriend(&a, &b, ("alice", "bob"), &[]);
    // B batches its receipts to A only once A's hello said A reads them.
    hellos_exchanged(&a, "bob", &b, "alice");

    // B is down while A sends, so the relay holds the whole burst and B takes it in at once.
    assert!(b.stop(), "B stops cleanly");
    let total = 48;
    let mut ids = HashMap::new();
    for i in 0..total {
        let text = format!("burst message {i:03}");
        let (code, sent) = ctl_any(&a, &["send", "--to", "bob", "--message", &text]);
        assert!(matches!(code, Some(0) | Some(3)), "{sent}");
        ids.insert(s(&sent, "id"), text);
    }
    wait_for("the burst at the relay", Duration::from_secs(60), || {
        let outbox = a.ctl_json(&["outbox"]);
        let sent = outbox
            .as_array()?
            .iter()
            .filter(|e| ids.contains_key(&s(e, "id")) && e["state"] == "delivered")
            .count();
        (sent == total).then_some(())
    });
    b.spawn();

    // Every message reaches `stored` at A, through receipts that each answer many of them.
    wait_for("every receipt at A", Duration::from_secs(60), || {
        let outbox = a.ctl_json(&["outbox"]);
        let stored = outbox
            .as_array()?
            .iter()
            .filter(|e| ids.contains_key(&s(e, "id")) && e["peer"] == "stored")
            .count();
        (stored == total).then_some(())
    });
    let got = from_friends(&b);
    assert_eq!(got.len(), total, "each message once");
    let receipts = trust_counter(&b, "receipts_queued");
    let answered = trust_counter(&b, "receipt_ids_queued");
    assert!(answered >= total as u64, "{answered} ids answered");
    assert!(
        receipts >= 1 && receipts < total as u64,
        "{receipts} receipts for {total} messages"
    );
    // A opened them all without a refusal.
    assert_eq!(trust_counter(&a, "refused_bad_payload"), 0);
}

#[test]
fn a_message_a_dead_relay_took_is_sent_again_by_the_sender_after_its_own_restart() {
    let (mut r1, _r2, mut a, mut b) = bob_on_two_relays();

    // B is away, so R1 (B's first address) takes the message and holds it.
    assert!(b.stop(), "B stops cleanly");
    let text = "taken by a relay that then died";
    let (code, sent) = ctl_any(
        &a,
        &["send", "--to", "bob", "--message", text, "--wait=sent"],
    );
    assert_eq!(code, Some(0), "{sent}");
    let id = s(&sent, "id");
    // The sender restarts before any receipt, and R1 dies with the message. (A clean stop, so
    // the outbox surely holds the message as sent: after a kill -9 it may still be queued,
    // and the outbox's own retry would carry it, which the kill9 suite covers.)
    assert!(a.stop(), "A stops cleanly");
    r1.kill9();
    a.spawn();
    b.spawn();

    // Only A can save it: R1 is gone, and B never saw the envelope.
    let got = wait_for(
        "the message at B through R2",
        Duration::from_secs(90),
        || {
            let got = from_friends(&b);
            (!got.is_empty()).then_some(got)
        },
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(s(&got[0], "message"), text);
    assert_eq!(got[0]["meta"]["verified"], true);
    wait_for("the stored receipt at A", Duration::from_secs(60), || {
        let outbox = a.ctl_json(&["outbox"]);
        outbox
            .as_array()?
            .iter()
            .any(|e| s(e, "id") == id && e["peer"] == "stored")
            .then_some(())
    });
    assert!(
        a.logs().contains("watching again for receipts"),
        "A said it watches the message again"
    );
    // Still once, after the receipt.
    assert_eq!(from_friends(&b).len(), 1);
}
