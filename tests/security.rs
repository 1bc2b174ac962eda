//! Secrets never leave the store: not in logs at any level, not in `status`, not in listings,
//! not in files of the data dir outside the store; and the data dir and key files are private.

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
