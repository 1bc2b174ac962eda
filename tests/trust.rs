//! End-to-end trust between two real daemons: invites, pinned keys, sealed messages each way
//! with signed receipts, every refusal, rotation and an unsigned key change, over the control
//! socket of each `clawlinkd`. Envelopes are carried between the daemons by the test (the
//! transports that carry them are tested with the transports).

use clawlink_tests::{wait_for, Daemon};
use clawlinkd::trust::envelope::{Header, Kind};
use clawlinkd::trust::keys::{KeyId, KeyPair, PeerId, PublicKeys};
use clawlinkd::trust::payload::{KeyUpdateBody, MessageBody};
use clawlinkd::trust::seal::{self, Draft};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// `friend open` of `envelope` at `d`, as JSON (exit status ignored: refusals exit 1).
fn open(d: &Daemon, envelope: &str) -> Value {
    let out = d.ctl(&["friend", "open", envelope, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "friend open printed non-JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn friend<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|f| f["name"] == name))
        .unwrap_or_else(|| panic!("no friend {name} in {list}"))
}

/// A invites, B accepts as "alice", A opens the accept (naming B "bob"), B opens the receipt.
fn befriend(a: &Daemon, b: &Daemon) {
    let inv = a.ctl_json(&[
        "friend",
        "invite",
        "--name",
        "bob",
        "--via",
        "relay://127.0.0.1:9/a",
    ]);
    let accepted = b.ctl_json(&["friend", "accept", &s(&inv, "invite"), "--name", "alice"]);
    assert_eq!(accepted["accept"]["addresses"][0], "relay://127.0.0.1:9/a");
    let added = open(a, &s(&accepted["accept"], "envelope"));
    assert_eq!(added["outcome"], "friend_added", "{added}");
    assert_eq!(added["friend"], "bob");
    let receipt = open(b, &s(&added["reply"], "envelope"));
    assert_eq!(receipt["outcome"], "receipt", "{receipt}");
}

fn id(d: &Daemon) -> (PeerId, PublicKeys) {
    let v = d.ctl_json(&["id"]);
    let key =
        |k: &str| clawlinkd::trust::unb64_pub(&s(&v, k)).unwrap_or_else(|| panic!("{k} in {v}"));
    let peer = clawlinkd::trust::unhex::<16>(&s(&v, "id")).unwrap_or_else(|| panic!("id in {v}"));
    (
        PeerId(peer),
        PublicKeys {
            sign: key("sign_key"),
            seal: key("seal_key"),
        },
    )
}

fn header(kind: Kind, from: PeerId, key: KeyId, to: (PeerId, PublicKeys)) -> Header {
    Header {
        kind,
        hops: 0,
        sender: from,
        sender_key: key,
        recipient: to.0,
        recipient_key: to.1.key_id(),
        id: rand_id(),
        ts_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        epk: [0; 32],
    }
}

fn rand_id() -> [u8; 16] {
    let mut b = [0u8; 16];
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    b.copy_from_slice(&n.to_be_bytes());
    b[0] ^= std::process::id() as u8;
    b
}

#[test]
fn invite_pins_both_sides_and_sealed_messages_go_each_way_with_receipts() {
    let a = Daemon::start();
    let b = Daemon::start();
    befriend(&a, &b);
    let la = a.ctl_json(&["friend", "list"]);
    let lb = b.ctl_json(&["friend", "list"]);
    let (bob, alice) = (friend(&la, "bob"), friend(&lb, "alice"));
    assert_eq!(bob["safety_number"], alice["safety_number"]);
    let number = s(bob, "safety_number");
    assert_eq!(number.split(' ').count(), 8, "{number}");
    assert!(number
        .split(' ')
        .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit())));
    assert_eq!(alice["confirmed"], true);
    assert_eq!(bob["verified"], false);
    assert_eq!(alice["key_change"], "none");

    for (from, to, to_name, from_name, text) in [
        (&b, &a, "alice", "bob", "hello alice, sealed"),
        (&a, &b, "bob", "alice", "hello bob, sealed"),
    ] {
        let sealed = from.ctl_json(&["friend", "seal", to_name, "--message", text]);
        let env = s(&sealed, "envelope");
        assert!(env.starts_with("cle1:") && !env.contains(text));
        let got = open(to, &env);
        assert_eq!(got["outcome"], "message", "{got}");
        assert_eq!(got["friend"], from_name);
        let inbox_id = got["inbox_id"].as_u64().unwrap_or_default().to_string();
        let m = to.ctl_json(&["inbox", "read", &inbox_id]);
        assert_eq!(m["message"], text);
        assert_eq!(m["from"], from_name);
        assert_eq!(m["meta"]["verified"], true);
        assert_eq!(m["meta"]["friend"], from_name);
        // The receipt goes back; the sender records `stored`.
        let r = open(from, &s(&got["reply"], "envelope"));
        assert_eq!(
            (r["outcome"].as_str(), r["status"].as_str()),
            (Some("receipt"), Some("stored"))
        );
        let rec = from.ctl_json(&["friend", "receipt", &s(&sealed, "id")]);
        assert_eq!(rec["status"], "stored");
        // The same envelope again (a second path): stored once, answered again.
        let again = open(to, &env);
        assert_eq!(again["outcome"], "duplicate");
        assert_eq!(again["inbox_id"], got["inbox_id"]);
    }
    let v = b.ctl_json(&["friend", "verify", "alice"]);
    assert_eq!(v["verified"], true);
    assert_eq!(b.ctl_json(&["friend", "remove", "alice"])["count"], 1);
    assert!(
        b.ctl(&["friend", "seal", "alice", "--message", "x"])
            .status
            .code()
            == Some(1)
    );

    // The identity key is private and its secrets appear in no log.
    let key_file = b.data_dir.join("identity.key");
    let mode = std::fs::metadata(&key_file)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);
    let key_json: Value =
        serde_json::from_slice(&std::fs::read(&key_file).unwrap_or_default()).unwrap_or_default();
    let secret = s(&key_json, "sign");
    assert!(secret.len() > 20);
    assert!(!b.logs().contains(&secret) && !a.logs().contains(&secret));
}

#[test]
fn forged_replayed_misaddressed_tampered_and_bad_invites_are_refused() {
    let a = Daemon::start();
    let b = Daemon::start();
    let c = Daemon::start();
    befriend(&a, &b);
    let a_id = id(&a);
    let (b_peer, b_keys) = id(&b);

    // Forged `from`: claims to be B under B's key id, signed by another key.
    let forger = KeyPair::generate(0);
    let body = MessageBody {
        text: "forged".into(),
    }
    .to_bytes();
    let forged = seal::seal(
        Draft {
            header: header(Kind::Message, b_peer, b_keys.key_id(), a_id),
            plaintext: &body,
        },
        &forger,
        &a_id.1,
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .to_text();
    let r = open(&a, &forged);
    assert_eq!(
        (r["outcome"].as_str(), r["status"].as_str()),
        (Some("rejected"), Some("bad_signature"))
    );

    // Wrong recipient: B's envelope for A, opened at C.
    let env = s(
        &b.ctl_json(&["friend", "seal", "alice", "--message", "for alice"]),
        "envelope",
    );
    assert_eq!(open(&c, &env)["status"], "wrong_recipient");

    // Tampered ciphertext: one character of the base64 changed.
    let mut t = env.clone().into_bytes();
    let i = t.len() - 120;
    t[i] = if t[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(t).unwrap_or_default();
    let r = open(&a, &tampered);
    assert_eq!(r["outcome"], "rejected", "{r}");
    // Truncated, oversized, unknown version, not an envelope at all.
    assert_eq!(open(&a, &env[..env.len() - 10])["status"], "malformed");
    assert_eq!(
        open(&a, &format!("cle1:{}", "A".repeat(80_000)))["status"],
        "oversized"
    );
    let v2 = {
        use base64::Engine;
        let eng = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut raw = eng.decode(&env.as_bytes()[5..]).unwrap_or_default();
        raw[0] = 2;
        format!("cle1:{}", eng.encode(raw))
    };
    assert_eq!(open(&a, &v2)["status"], "unknown_version");

    // Replay: the genuine envelope once, then the same id with other bytes.
    assert_eq!(open(&a, &env)["outcome"], "message");
    let orig = clawlinkd::trust::Envelope::from_text(&env).unwrap_or_else(|e| panic!("{e}"));
    let b_secret: Value =
        serde_json::from_slice(&std::fs::read(b.data_dir.join("identity.key")).unwrap_or_default())
            .unwrap_or_default();
    let b_sign = clawlinkd::trust::unb64_pub(&s(&b_secret, "sign")).unwrap_or_default();
    let b_seal = clawlinkd::trust::unb64_pub(&s(&b_secret, "seal")).unwrap_or_default();
    let b_pair = KeyPair::new(0, ed25519_dalek_key(&b_sign), b_seal.into());
    let body = MessageBody {
        text: "replayed id".into(),
    }
    .to_bytes();
    let replay = seal::seal(
        Draft {
            header: orig.header.clone(),
            plaintext: &body,
        },
        &b_pair,
        &a_id.1,
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .to_text();
    assert_eq!(open(&a, &replay)["status"], "replay");

    // Invites: tampered, expired, reused.
    let inv = s(&a.ctl_json(&["friend", "invite"]), "invite");
    let mut t = inv.clone().into_bytes();
    t[30] = if t[30] == b'A' { b'B' } else { b'A' };
    let out = c.ctl(&[
        "friend",
        "accept",
        &String::from_utf8(t).unwrap_or_default(),
        "--name",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invite"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let short = a.ctl_json(&["friend", "invite", "--ttl", "1s"]);
    let expires = s(&short, "expires_at");
    wait_for("the invite's expiry", Duration::from_secs(5), || {
        let now = clawlinkd::time::now_rfc3339();
        (now > expires).then_some(())
    });
    let out = c.ctl(&["friend", "accept", &s(&short, "invite"), "--name", "y"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expired"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = c.ctl_json(&["friend", "accept", &inv, "--name", "alice"]);
    assert_eq!(
        open(&a, &s(&first["accept"], "envelope"))["outcome"],
        "friend_added"
    );
    let d = Daemon::start();
    let second = d.ctl_json(&["friend", "accept", &inv, "--name", "alice"]);
    let r = open(&a, &s(&second["accept"], "envelope"));
    assert_eq!(r["status"], "invite_used", "{r}");
    // The refusal is signed back to the second accepter, which then drops its unconfirmed
    // pin: nothing stays pinned on either side.
    let back = open(&d, &s(&r["reply"], "envelope"));
    assert_eq!(back["status"], "rejected");
    assert_eq!(d.ctl_json(&["friend", "list"]), serde_json::json!([]));
    let again = c.ctl(&["friend", "accept", &inv, "--name", "alice2"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already used"));
    assert_eq!(
        a.ctl_json(&["friend", "list"]).as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        c.ctl_json(&["friend", "list"]).as_array().map(Vec::len),
        Some(1)
    );

    // Every refusal is counted in `status`.
    let st = a.ctl_json(&["status"]);
    let row = st["connections"]
        .as_array()
        .and_then(|r| r.iter().find(|c| c["kind"] == "trust"))
        .cloned()
        .unwrap_or_default();
    for k in [
        "bad_signature",
        "replay",
        "malformed",
        "oversized",
        "unknown_version",
        "invite_used",
    ] {
        assert!(
            row["info"][format!("refused_{k}")]
                .as_str()
                .is_some_and(|n| n != "0"),
            "{k} in {row}"
        );
    }
}

fn ed25519_dalek_key(seed: &[u8; 32]) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(seed)
}

#[test]
fn rotation_is_accepted_and_an_unsigned_key_change_is_held_until_accept_key() {
    let a = Daemon::start();
    let b = Daemon::start();
    befriend(&a, &b);
    let before = s(
        friend(&a.ctl_json(&["friend", "list"]), "bob"),
        "safety_number",
    );
    let rot = b.ctl_json(&["id", "rotate"]);
    assert_eq!(rot["epoch"], 1);
    let upd = s(&rot["updates"][0], "envelope");
    assert_eq!(open(&a, &upd)["outcome"], "key_update");
    let bob = a.ctl_json(&["friend", "list"]);
    let bob = friend(&bob, "bob");
    assert_eq!(bob["epoch"], 1);
    assert_ne!(bob["safety_number"], before.as_str());
    assert_eq!(
        bob["safety_number"],
        friend(&b.ctl_json(&["friend", "list"]), "alice")["safety_number"]
    );
    let env = s(
        &b.ctl_json(&["friend", "seal", "alice", "--message", "after rotation"]),
        "envelope",
    );
    assert_eq!(open(&a, &env)["outcome"], "message");

    // B's keys "lost": new keys under B's id, without the old key's endorsement.
    let a_id = id(&a);
    let (b_peer, _) = id(&b);
    let lost = KeyPair::generate(2);
    let body = KeyUpdateBody::new(&b_peer, &lost.public(), 2, None).to_bytes();
    let key_change = seal::seal(
        Draft {
            header: header(Kind::KeyUpdate, b_peer, lost.public().key_id(), a_id),
            plaintext: &body,
        },
        &lost,
        &a_id.1,
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .to_text();
    assert_eq!(open(&a, &key_change)["outcome"], "held");
    let text = MessageBody {
        text: "from the new key".into(),
    }
    .to_bytes();
    let msg = seal::seal(
        Draft {
            header: header(Kind::Message, b_peer, lost.public().key_id(), a_id),
            plaintext: &text,
        },
        &lost,
        &a_id.1,
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .to_text();
    assert_eq!(open(&a, &msg)["outcome"], "held");
    let list = a.ctl_json(&["friend", "list"]);
    let bob = friend(&list, "bob");
    assert_eq!(bob["key_change"], "pending");
    assert_eq!(bob["held"], 1);
    assert!(bob["new_safety_number"]
        .as_str()
        .is_some_and(|n| n != bob["safety_number"]));
    let inbox = a.ctl_json(&["inbox", "--from", "bob"]);
    assert!(!inbox.to_string().contains("from the new key"));
    let human = String::from_utf8_lossy(&a.ctl(&["friend", "list"]).stdout).into_owned();
    assert!(human.contains("KEY CHANGED"), "{human}");
    let released = a.ctl_json(&["friend", "accept-key", "bob"]);
    assert_eq!(released[0]["outcome"], "message", "{released}");
    let inbox = a.ctl_json(&["inbox", "--from", "bob"]);
    assert!(inbox.to_string().contains("from the new key"));
    assert_eq!(
        friend(&a.ctl_json(&["friend", "list"]), "bob")["key_change"],
        "none"
    );
}
