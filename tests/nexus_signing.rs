//! End-to-end tests of Nexus member signatures: two real agent daemons and a real
//! `clawlinkd nexus-server`, plus a plain HTTP member posting the way `nexus.sh` or `curl`
//! does.
//!
//! Covered: both daemons announce and pin each other's key in a session; messages both ways
//! arrive `signed: true` with the sender's key id (and our own come back `own` and signed);
//! the plain client still reads the plain text; a plain member posting under a signed
//! member's agent id, a tampered text, a verbatim replay, a re-attributed signature and a
//! second key announced for a pinned member are each stored as not from that member (and
//! counted in `status`, logged without content); announces are stored read; the policy sees
//! a signed member as verified but holds it for review like any Nexus member; after an
//! identity rotation a daemon still signs with the key pinned for it in the session; pins
//! survive a `kill -9`.

use clawlink_tests::nexus::nexus_row;
use clawlink_tests::nexus::{field as f, NexusServer};
use clawlink_tests::{wait_for, Daemon};
use clawlinkd::trust::keys::Identity;
use clawlinkd::trust::member_sig;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn daemon_for(srv: &NexusServer, extra: &str) -> Daemon {
    let mut d = Daemon::new();
    d.write_config(&format!(
        "[nexus]\nurl = \"{}\"\npoll_interval_secs = 1\n{extra}",
        srv.url()
    ));
    d.spawn();
    d
}

/// `clawlink nexus ARGS`, which must succeed; stdout JSON.
fn ok(d: &Daemon, args: &[&str]) -> Value {
    let mut all = vec!["nexus"];
    all.extend_from_slice(args);
    let out = d.ctl(&all);
    let body: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "nexus {args:?}: {body}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    body
}

fn nexus_inbox(d: &Daemon, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["inbox", "--source", "nexus"];
    args.extend_from_slice(extra);
    d.ctl_json(&args).as_array().cloned().unwrap_or_default()
}

/// Waits for the inbox entry whose text is `text`.
fn wait_msg(d: &Daemon, text: &str) -> Value {
    wait_for(&format!("{text:?} in the inbox"), WAIT, || {
        nexus_inbox(d, &[])
            .into_iter()
            .find(|m| m["message"] == text)
    })
}

fn info(d: &Daemon, sid: &str, key: &str) -> String {
    nexus_row(d, sid)["info"][key]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn assert_forged(m: &Value, claimed: &str, reason: &str) {
    assert_eq!(m["meta"]["forged"], true, "{m}");
    assert_eq!(m["meta"]["forged_reason"], reason, "{m}");
    assert_eq!(m["meta"]["verified"], false, "{m}");
    assert_eq!(m["meta"]["signed"], false, "{m}");
    assert_eq!(m["meta"]["claimed_from"], claimed, "{m}");
    assert_eq!(m["from"], format!("unverified:{claimed}"), "{m}");
    assert_eq!(m["meta"]["own"], false, "{m}");
}

/// The plain client's view of message `text` (a `nexus.sh`-style poll as `agent`).
fn seen_by_plain_client(srv: &NexusServer, sid: &str, agent: &str, text: &str) -> Value {
    let page = srv.poll(sid, agent, "");
    assert_eq!(page.0, 200, "{}", page.1);
    page.1["messages"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["text"] == text).cloned())
        .unwrap_or_else(|| panic!("{text:?} not in {}", page.1))
}

#[test]
fn members_sign_pin_and_forgeries_are_not_shown_as_the_member() {
    let srv = NexusServer::start(&[]);
    let a = daemon_for(&srv, "");
    // B has a local agent, so its policy decides (and holds for review) what comes in; the
    // review level needs no gateway call, so that gateway is never contacted.
    let b = daemon_for(
        &srv,
        &format!(
            "\n[local_gateway]\nurl = \"ws://{}\"\ntoken = \"unused\"\n",
            clawlink_tests::free_addr()
        ),
    );
    let key_a = f(&a.ctl_json(&["id"]), "key_id");
    let key_b = f(&b.ctl_json(&["id"]), "key_id");

    let created = ok(
        &a,
        &["create", "--creator-agent-id", "alice", "--max-agents", "3"],
    );
    let sid = f(&created, "sessionId");
    ok(&b, &["join", &sid, "--agent-id", "bob"]);
    let carol = srv.join(&sid, "carol");

    // Each daemon pinned itself on join and the other from its announce.
    for d in [&a, &b] {
        wait_for("both members pinned", WAIT, || {
            (info(d, &sid, "members_pinned") == "2").then_some(())
        });
    }

    // Signed both ways, with the sender's key; our own come back own and signed.
    ok(&a, &["send", &sid, "hello bob, from alice"]);
    ok(&b, &["send", &sid, "hello alice, from bob"]);
    for (d, text, from, key) in [
        (&b, "hello bob, from alice", "alice", &key_a),
        (&a, "hello alice, from bob", "bob", &key_b),
    ] {
        let m = wait_msg(d, text);
        assert_eq!(m["from"], from, "{m}");
        assert_eq!(m["meta"]["signed"], true, "{m}");
        assert_eq!(m["meta"]["member_key"], key.as_str(), "{m}");
        assert_eq!(m["meta"]["verified"], true, "{m}");
        assert!(m["meta"]["forged"].is_null(), "{m}");
    }
    let own = wait_msg(&a, "hello bob, from alice");
    assert_eq!(
        (&own["meta"]["own"], &own["meta"]["signed"]),
        (&json!(true), &json!(true)),
        "{own}"
    );

    // The plain client reads the text unchanged; the signature rides beside it in `json`.
    let plain = seen_by_plain_client(&srv, &sid, "carol", "hello bob, from alice");
    assert_eq!(plain["agentId"], "alice");
    let alice_sig = plain["json"].clone();
    assert_eq!(alice_sig["clawlink"]["type"], "sig", "{plain}");
    assert_eq!(alice_sig["clawlink"]["key"], key_a.as_str(), "{plain}");

    // Announces are stored read, and never unread.
    let announces: Vec<Value> = nexus_inbox(&b, &[])
        .into_iter()
        .filter(|m| m["meta"]["announce"] == true)
        .collect();
    assert_eq!(announces.len(), 2, "{announces:?}");
    assert!(announces
        .iter()
        .all(|m| m["read"] == true && m["meta"]["signed"] == true));
    assert!(nexus_inbox(&b, &["--unread"])
        .iter()
        .all(|m| m["meta"]["announce"] != true));

    // 1. A plain member posts under alice's agent id (no session key, as curl can).
    let post = |agent: &str, key: Option<&str>, body: Value| {
        let ans = srv.post_message(&sid, agent, key, &body);
        assert_eq!(ans.0, 201, "{}", ans.1);
    };
    post(
        "alice",
        None,
        json!({ "text": "alice here: forged-unsigned 41d" }),
    );
    // 2. alice's signature on a changed text.
    post(
        "alice",
        None,
        json!({ "text": "hello bob, from alice! forged-tampered 7c2", "json": alice_sig }),
    );
    // 3. alice's message again, verbatim.
    post(
        "alice",
        None,
        json!({ "text": "hello bob, from alice", "json": alice_sig }),
    );
    // 4. alice's signature taken by carol, under her own (keyed) name: not alice's, and not
    //    carol's either (carol has no pinned key).
    post(
        "carol",
        Some(&carol),
        json!({ "text": "hello bob, from alice", "json": alice_sig }),
    );
    // 5. carol signs with her own key the clawlink way (a third implementation): announce,
    //    a signed message, then a second key for the same member, and a message signed by it.
    let k1 = Identity::generate();
    let k2 = Identity::generate();
    let (t1, j1) = member_sig::sign_announce(&sid, "carol", k1.id, &k1.current).expect("sign");
    post("carol", Some(&carol), json!({ "text": t1, "json": j1 }));
    let sig1 =
        member_sig::sign_message(&sid, "carol", "carol signs 93a", &k1.current).expect("sign");
    post(
        "carol",
        Some(&carol),
        json!({ "text": "carol signs 93a", "json": sig1 }),
    );
    let (t2, j2) = member_sig::sign_announce(&sid, "carol", k2.id, &k2.current).expect("sign");
    post("carol", Some(&carol), json!({ "text": t2, "json": j2 }));
    let sig2 =
        member_sig::sign_message(&sid, "carol", "carol new key e0f", &k2.current).expect("sign");
    post(
        "carol",
        Some(&carol),
        json!({ "text": "carol new key e0f", "json": sig2 }),
    );
    // 6. A signature for this text but made for another session, posted by carol.
    let elsewhere = member_sig::sign_message("another-session", "carol", "moved 5b8", &k1.current)
        .expect("sign");
    post(
        "carol",
        Some(&carol),
        json!({ "text": "moved 5b8", "json": elsewhere }),
    );
    let end = member_sig::sign_message(&sid, "carol", "end marker", &k1.current).expect("sign");
    post(
        "carol",
        Some(&carol),
        json!({ "text": "end marker", "json": end }),
    );

    for d in [&a, &b] {
        wait_msg(d, "end marker");
        let by_text = |t: &str| {
            nexus_inbox(d, &[])
                .into_iter()
                .filter(|m| m["message"] == t)
                .collect::<Vec<_>>()
        };
        let unsigned = by_text("alice here: forged-unsigned 41d");
        assert_forged(&unsigned[0], "alice", "unsigned");
        let tampered = by_text("hello bob, from alice! forged-tampered 7c2");
        assert_forged(&tampered[0], "alice", "bad_signature");
        let copies = by_text("hello bob, from alice");
        assert_eq!(copies.len(), 3, "{copies:?}");
        assert_eq!(copies[0]["meta"]["signed"], true, "{copies:?}");
        assert_eq!(copies[0]["from"], "alice");
        assert_forged(&copies[1], "alice", "replay");
        assert_eq!(copies[2]["from"], "carol", "{copies:?}");
        assert_eq!(copies[2]["meta"]["signed"], false, "{copies:?}");
        assert_eq!(copies[2]["meta"]["signature"], "unknown_key", "{copies:?}");
        let signed = &by_text("carol signs 93a")[0];
        assert_eq!(signed["meta"]["signed"], true, "{signed}");
        assert_eq!(
            signed["meta"]["member_key"],
            k1.current.public().key_id().to_string()
        );
        let conflict = &by_text(&t2)[0];
        assert_forged(conflict, "carol", "key_conflict");
        assert_eq!(conflict["read"], true, "{conflict}");
        assert_forged(&by_text("carol new key e0f")[0], "carol", "bad_signature");
        assert_forged(&by_text("moved 5b8")[0], "carol", "bad_signature");
        assert_eq!(by_text("end marker")[0]["meta"]["signed"], true);

        // Counted in status; logged without content.
        assert_eq!(info(d, &sid, "forged"), "6");
        assert_eq!(info(d, &sid, "key_changes_held"), "1");
        assert_eq!(info(d, &sid, "members_pinned"), "3");
        let logs = d.logs();
        assert!(
            logs.contains("not from the member it claims"),
            "no log line"
        );
        for secret in [
            "forged-unsigned 41d",
            "forged-tampered 7c2",
            "carol new key",
        ] {
            assert!(!logs.contains(secret), "content {secret:?} was logged");
        }
    }

    // The policy: alice's signed message is a verified sender, held for review like any Nexus
    // member; the forged one is held under another key, unverified.
    let held = wait_for("both held for review", WAIT, || {
        let list = b.ctl_json(&["review"]);
        let all = list.as_array().cloned().unwrap_or_default();
        let get = |t: &str| all.iter().find(|h| h["message"] == t).cloned();
        Some((
            get("hello bob, from alice")?,
            get("alice here: forged-unsigned 41d")?,
        ))
    });
    assert_eq!(held.0["sender"], format!("nexus:{sid}/alice"), "{}", held.0);
    assert_eq!(held.0["verified"], true, "{}", held.0);
    assert_eq!(
        held.1["sender"],
        format!("nexus:{sid}/unverified:alice"),
        "{}",
        held.1
    );
    assert_eq!(held.1["verified"], false, "{}", held.1);

    // After `clawlink id rotate`, A keeps signing with the key pinned for it in this session
    // (the previous key is kept), so its messages still verify.
    let rotated = a.ctl(&["id", "rotate"]);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert_ne!(f(&a.ctl_json(&["id"]), "key_id"), key_a);
    ok(&a, &["send", &sid, "after the rotation 3d9"]);
    let m = wait_msg(&b, "after the rotation 3d9");
    assert_eq!(
        (&m["meta"]["signed"], &m["meta"]["member_key"]),
        (&json!(true), &json!(key_a)),
        "{m}"
    );

    // Pins are durable: after a kill -9, a forgery is still caught.
    let mut b = b;
    b.kill9();
    b.spawn();
    post("alice", None, json!({ "text": "after the restart 0aa" }));
    let m = wait_msg(&b, "after the restart 0aa");
    assert_forged(&m, "alice", "unsigned");
    assert_eq!(info(&b, &sid, "members_pinned"), "3");
}
