//! Secrets never leave the store: not in logs at any level, not in `status`, not in listings,
//! not in files of the data dir outside the store; and the data dir and key files are private.

use clawlink_tests::nexus::NexusServer;
use clawlink_tests::relay::RelayServer;
use clawlink_tests::Daemon;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

const CONTACT_TOKEN: &str = "contact-token-Zq81";
const HOOK_TOKEN: &str = "hook-token-Xw27";
const RELAY_SECRET: &str = "relay-secret-Pk55";

fn files_outside_store(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == "db") {
            continue;
        }
        if p.is_dir() {
            files_outside_store(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn secrets_stay_out_of_logs_status_and_files_at_trace_level() {
    let relay = RelayServer::start(&[]);
    let mut d = Daemon::new();
    d.write_config(&format!("[listen]\ntoken = \"{HOOK_TOKEN}\"\n"));
    d.env.push(("RUST_LOG".into(), "trace".into()));
    d.spawn();
    d.ctl_json(&[
        "contacts",
        "add",
        "--name",
        "gw",
        "--url",
        "ws://127.0.0.1:9",
        "--token",
        CONTACT_TOKEN,
    ]);
    let relay_url = format!("http://{}", relay.addr);
    d.ctl_json(&[
        "relay",
        "register",
        "--relay",
        &relay_url,
        "--id",
        "sec-a",
        "--name",
        "A",
        "--secret",
        RELAY_SECRET,
    ]);
    d.ctl(&["ping", "--to", "gw"]);
    d.ctl(&["send", "--to", "gw", "--message", "hello", "--ttl", "1"]);
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}/message", d.listen))
        .bearer_auth(HOOK_TOKEN)
        .json(&json!({"from": "x", "message": "y"}))
        .send()
        .expect("post");
    assert_eq!(r.status(), 200);
    let status = d.ctl(&["status", "--json"]);
    let outbox = d.ctl(&["outbox", "--json"]);
    let contacts = d.ctl(&["contacts", "list"]);
    assert!(d.stop());
    let mut files = Vec::new();
    files_outside_store(&d.data_dir, &mut files);
    let mut haystack = d.logs();
    for o in [&status, &outbox, &contacts] {
        haystack.push_str(&String::from_utf8_lossy(&o.stdout));
        haystack.push_str(&String::from_utf8_lossy(&o.stderr));
    }
    for f in &files {
        if f.file_name().is_some_and(|n| n == "device.key") {
            assert_eq!(
                std::fs::metadata(f).expect("stat").permissions().mode() & 0o777,
                0o600
            );
            continue;
        }
        haystack.push_str(&String::from_utf8_lossy(
            &std::fs::read(f).unwrap_or_default(),
        ));
    }
    for secret in [CONTACT_TOKEN, HOOK_TOKEN, RELAY_SECRET] {
        assert!(
            !haystack.contains(secret),
            "{secret} leaked (logs, CLI output, or a file outside the store)"
        );
    }
    assert!(
        d.logs().contains("TRACE") || d.logs().contains("DEBUG"),
        "the test must run with verbose logs"
    );
    assert_eq!(
        std::fs::metadata(&d.data_dir)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}

/// The device's secret key as stored (base64url), read from its key file.
fn device_secret(data_dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(data_dir.join("device.key")).expect("device key");
    let v: serde_json::Value = serde_json::from_str(&text).expect("device key JSON");
    v["secretKey"].as_str().expect("secretKey").to_string()
}

/// Nexus session keys, relay secrets and the device key stay out of every process's trace log:
/// the daemon's, the relay server's and the Nexus server's.
#[test]
fn session_keys_relay_secrets_and_the_device_key_stay_out_of_every_log() {
    // Every fixture below logs at trace.
    std::env::set_var("CLAWLINK_TEST_LOG", "trace");
    let mut relay = RelayServer::start(&[]);
    let mut nexus = NexusServer::start(&[]);
    let mut d = Daemon::new();
    d.write_config(&format!(
        "[nexus]\nurl = \"{}\"\npoll_interval_secs = 1\n",
        nexus.url()
    ));
    d.spawn();
    d.ctl_json(&[
        "relay",
        "register",
        "--relay",
        &relay.base(),
        "--id",
        "sec-b",
        "--secret",
        RELAY_SECRET,
    ]);
    let created = d.ctl_json(&["nexus", "create", "--creator-agent-id", "me"]);
    let sid = created["sessionId"].as_str().expect("sid").to_string();
    let my_key = created["sessionKey"]
        .as_str()
        .expect("creator key")
        .to_string();
    let their_key = nexus.join(&sid, "them");
    let ans = nexus.post_message(&sid, "them", Some(&their_key), &json!({"text": "hi"}));
    assert_eq!(ans.0, 201, "{}", ans.1);
    let sent = d.ctl_json(&["nexus", "send", &sid, "hello back"]);
    assert!(sent["id"].is_string(), "{sent}");
    clawlink_tests::wait_for(
        "the Nexus message in the inbox",
        std::time::Duration::from_secs(20),
        || {
            let inbox = d.ctl_json(&["inbox", "--source", "nexus"]);
            (inbox.as_array().map_or(0, Vec::len) >= 1).then_some(())
        },
    );
    d.ctl(&[
        "send",
        "--url",
        "ws://127.0.0.1:9",
        "--token",
        CONTACT_TOKEN,
        "--message",
        "x",
        "--ttl",
        "1",
    ]);
    let status = d.ctl(&["status", "--json"]);
    let sessions = d.ctl(&["nexus", "sessions"]);
    let device = device_secret(&d.data_dir);
    assert!(d.stop());
    assert!(relay.stop());
    assert!(nexus.stop());
    // Nothing of ours logs below debug, and libraries are capped at info: at trace, the most
    // verbose lines are DEBUG ones. Each process must have written some.
    for (who, log) in [
        ("daemon", d.logs()),
        ("relay", relay.logs()),
        ("nexus", nexus.logs()),
    ] {
        assert!(log.contains("DEBUG"), "the {who} did not log verbosely");
    }
    let logs = d.logs() + &relay.logs() + &nexus.logs();
    // The session id lets anyone join: `nexus sessions` shows it to its owner, no log does.
    assert!(
        !logs.contains(&sid),
        "the Nexus session id leaked into a log"
    );
    let mut haystack = logs;
    for o in [&status, &sessions] {
        haystack.push_str(&String::from_utf8_lossy(&o.stdout));
        haystack.push_str(&String::from_utf8_lossy(&o.stderr));
    }
    for (what, secret) in [
        ("the creator's Nexus session key", my_key.as_str()),
        ("a joined agent's Nexus session key", their_key.as_str()),
        ("the relay secret", RELAY_SECRET),
        ("the gateway token", CONTACT_TOKEN),
        ("the device's secret key", device.as_str()),
    ] {
        assert!(secret.len() >= 8, "{what} is too short to search for");
        assert!(
            !haystack.contains(secret),
            "{what} leaked into a log or CLI output"
        );
    }
}
