//! The gateway transport end to end: the real `clawlink` CLI and `clawlinkd` daemon against a
//! REAL OpenClaw gateway (see `scripts/gateway-env.sh`). Delivery is checked through the
//! gateway's own `status.queuedSystemEvents`, read on the fixture's separate connection.
//!
//! One gateway is shared by the tests that only send to it; one dedicated gateway is stopped
//! and restarted under a running daemon (warm connection, outbox, local-agent retry).

use clawlink_tests::daemon::Daemon;
use clawlink_tests::gateway::Gateway;
use clawlink_tests::wait_for;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::Duration;

/// Polls the gateway's queue until a text containing `needle` shows up.
fn wait_queued(gw: &Gateway, needle: &str, timeout: Duration) -> String {
    wait_for(&format!("{needle:?} in the gateway queue"), timeout, || {
        gw.queued().into_iter().find(|t| t.contains(needle))
    })
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn unique(tag: &str) -> String {
    let n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    format!("{tag}-{n:x}")
}

/// Neither the daemon log nor `status --json` may contain `token`.
fn assert_secret_kept(d: &Daemon, token: &str) {
    let logs = d.logs();
    assert!(!logs.is_empty());
    assert!(!logs.contains(token), "token in the daemon log");
    let status = d.ctl(&["status", "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains(token),
        "token in status"
    );
    let outbox = d.ctl(&["outbox", "--json"]);
    assert!(outbox.status.success(), "{}", text(&outbox));
    assert!(
        !String::from_utf8_lossy(&outbox.stdout).contains(token),
        "token in the outbox listing"
    );
}

fn outbox_entry(d: &Daemon, id: &str) -> Option<Value> {
    d.ctl_json(&["outbox"])
        .as_array()?
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
}

#[test]
fn ping_reports_the_handshake_and_refuses_a_wrong_token() {
    let gw = Gateway::shared();
    let d = Daemon::start();

    let ok = d.ctl_json(&["ping", "--url", &gw.url, "--token", &gw.token]);
    assert_eq!(ok["reachable"], true, "{ok}");
    assert_eq!(ok["auth_ok"], true, "{ok}");
    assert_eq!(ok["protocol"], 4, "{ok}");
    assert!(
        ok["server_version"].as_str().is_some_and(|v| !v.is_empty()),
        "{ok}"
    );
    assert!(ok["rtt_ms"].as_f64().is_some_and(|v| v > 0.0), "{ok}");
    assert!(ok["error"].is_null(), "{ok}");

    let human = d.ctl(&["ping", "--url", &gw.url, "--token", &gw.token]);
    assert!(human.status.success(), "{}", text(&human));
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("auth ok, protocol 4"),
        "{}",
        text(&human)
    );

    let bad = d.ctl(&["ping", "--url", &gw.url, "--token", "not-the-token"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("refused the credentials") && err.contains("check the token"),
        "{}",
        text(&bad)
    );
    let v = failing_ping(&d, &gw.url, "not-the-token");
    assert_eq!(v["reachable"], true, "{v}");
    assert_eq!(v["auth_ok"], false, "{v}");
    assert_eq!(v["error"]["code"], "gateway_auth_failed", "{v}");

    // Nothing listens there (port 1 is reserved and unused): an answer, not a crash.
    let down = failing_ping(&d, "ws://127.0.0.1:1", &gw.token);
    assert_eq!(down["reachable"], false, "{down}");
    assert_eq!(down["error"]["code"], "gateway_unreachable", "{down}");

    // A contact's stored token is used.
    let add = d.ctl(&[
        "contacts", "add", "--name", "gw", "--url", &gw.url, "--token", &gw.token,
    ]);
    assert!(add.status.success(), "{}", text(&add));
    let by_name = d.ctl_json(&["ping", "--to", "gw"]);
    assert_eq!(by_name["auth_ok"], true, "{by_name}");
    assert_secret_kept(&d, &gw.token);
}

/// `clawlink ping --url URL --token TOKEN --json` that must exit 1, parsed.
fn failing_ping(d: &Daemon, url: &str, token: &str) -> Value {
    let out = d.ctl(&["ping", "--url", url, "--token", token, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

#[test]
fn send_to_a_contact_lands_in_the_gateway_queue() {
    let gw = Gateway::shared();
    let d = Daemon::start();
    let add = d.ctl(&[
        "contacts", "add", "--name", "bob", "--url", &gw.url, "--token", &gw.token,
    ]);
    assert!(add.status.success(), "{}", text(&add));

    let msg = unique("hello-bob");
    let out = d.ctl(&["send", "--to", "bob", "--message", &msg, "--from", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("delivered"),
        "{}",
        text(&out)
    );
    let got = wait_queued(gw, &msg, Duration::from_secs(10));
    assert!(
        got.contains(&format!("[clawlink] message from alice: {msg}")),
        "{got}"
    );

    // The device identity was created in the data dir, private.
    let key = d.data_dir.join("device.key");
    let mode = std::fs::metadata(&key)
        .expect("device.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "device.key mode {mode:o}");

    // The warm connection shows in status.
    let status = d.ctl_json(&["status"]);
    let rows = status["connections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let row = rows
        .iter()
        .find(|r| r["kind"] == "gateway")
        .unwrap_or_else(|| panic!("no gateway row: {status}"));
    assert_eq!(row["info"]["protocol"], "4", "{row}");

    // A second send is keyed by its own outbox id, so both land.
    let msg2 = unique("again");
    let out = d.ctl_json(&["send", "--to", "bob", "--message", &msg2]);
    assert_eq!(out["state"], "delivered", "{out}");
    wait_queued(gw, &msg2, Duration::from_secs(10));
    assert_secret_kept(&d, &gw.token);
}

#[test]
fn webhook_messages_reach_the_local_agent() {
    let gw = Gateway::shared();
    let mut d = Daemon::new();
    d.write_config(&format!(
        "[local_gateway]\nurl = \"{}\"\ntoken = \"{}\"\nmethod = \"system-event\"\n",
        gw.url, gw.token
    ));
    d.spawn();
    // The webhook's default level is notify: the main session gets a short notice that
    // clawlink writes, never the content.
    let msg = unique("for-my-agent");
    let carol = unique("carol");
    let r = d.post_message(&json!({"from": carol, "message": msg}));
    assert_eq!(r.status(), 200);
    let got = wait_queued(gw, &carol, Duration::from_secs(15));
    assert_eq!(
        got,
        format!("[clawlink] 1 new message from \"{carol}\" via webhook (unverified); run `clawlink inbox` to read it")
    );
    assert!(!gw.queued().iter().any(|t| t.contains(&msg)));
    let status = wait_for("local-agent row delivered", Duration::from_secs(10), || {
        let s = d.ctl_json(&["status"]);
        let row = s["connections"]
            .as_array()?
            .iter()
            .find(|r| r["kind"] == "local-agent")?
            .clone();
        (row["info"]["delivered"] == "1" && row["info"]["pending"] == "0").then_some(row)
    });
    assert_eq!(status["target"], gw.url.as_str(), "{status}");
    assert_secret_kept(&d, &gw.token);
}

#[test]
fn restarts_and_outages_of_the_gateway_lose_nothing() {
    let mut gw = Gateway::start();
    let mut d = Daemon::new();
    d.write_config(&format!(
        "[local_gateway]\nurl = \"{}\"\ntoken = \"{}\"\n",
        gw.url, gw.token
    ));
    d.spawn();
    let add = d.ctl(&[
        "contacts", "add", "--name", "peer", "--url", &gw.url, "--token", &gw.token,
    ]);
    assert!(add.status.success(), "{}", text(&add));
    let first = d.ctl_json(&["send", "--to", "peer", "--message", "warm-up"]);
    assert_eq!(first["state"], "delivered", "{first}");

    // The gateway restarts under the warm connection: the next send still succeeds.
    gw.restart();
    let after = unique("after-restart");
    let out = d.ctl(&["send", "--to", "peer", "--message", &after]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_queued(&gw, &after, Duration::from_secs(10));

    // Down: the send is queued (exit 3) and listed; a webhook message waits for the agent.
    gw.stop();
    let down = unique("while-down");
    let out = d.ctl(&["send", "--to", "peer", "--message", &down, "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let reply: Value = serde_json::from_slice(&out.stdout).expect("json");
    let id = reply["id"].as_str().expect("id").to_string();
    let entry = outbox_entry(&d, &id).expect("listed in the outbox");
    assert_eq!(entry["state"], "queued", "{entry}");
    assert_eq!(entry["transport"], "gateway", "{entry}");
    let inbound = unique("inbound-while-down");
    let dave = unique("dave");
    let r = d.post_message(&json!({"from": dave, "message": inbound}));
    assert_eq!(r.status(), 200);

    // The daemon restarts too, while the gateway is still down: both survive.
    assert!(d.stop(), "clean stop:\n{}", d.logs());
    d.spawn();
    assert_eq!(
        outbox_entry(&d, &id).expect("still listed")["state"],
        "queued"
    );

    gw.spawn();
    wait_for("outbox delivered", Duration::from_secs(60), || {
        (outbox_entry(&d, &id)?["state"] == "delivered").then_some(())
    });
    wait_queued(&gw, &down, Duration::from_secs(10));
    let got = wait_queued(&gw, &dave, Duration::from_secs(60));
    assert!(got.contains("via webhook (unverified)"), "{got}");
    assert_secret_kept(&d, &gw.token);
}
