//! Faults the daemon must survive without losing or inventing a message: a full disk, a
//! corrupted store, and a relay link that is cut, stalled and delayed. (SIGKILL at random
//! points of long streams is in `kill9.rs`.)

use clawlink_tests::{run, Daemon};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// A size-limited tmpfs mounted for the test's lifetime (the suite runs as root in CI).
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: std::path::PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).expect("mkdir");
        let out = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(&path));
        assert!(
            out.status.success(),
            "this test needs to mount a small tmpfs (run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { path }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn fill(path: &std::path::Path) -> std::path::PathBuf {
    let filler = path.join("filler");
    // dd stops at ENOSPC; its failure is the point.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .output();
    filler
}

#[test]
fn disk_full_refuses_without_acknowledging_and_recovers() {
    let mut d = Daemon::new();
    let disk = SmallDisk::mount(d.dir.path().join("disk"), "24m");
    d.data_dir = disk.path.join("data");
    d.spawn();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let url = format!("http://{}/message", d.listen);
    let mut acked = Vec::new();
    for i in 0..20 {
        let r = client
            .post(&url)
            .json(&json!({"from": "a", "message": format!("before-{i}")}))
            .send()
            .expect("post");
        assert_eq!(r.status(), 200);
        acked.push(format!("before-{i}"));
    }
    let filler = fill(&disk.path);
    // With the disk full, writes must be refused (503), never acknowledged.
    let big = "y".repeat(32 * 1024);
    let mut refused = 0;
    for i in 0..200 {
        let r = client
            .post(&url)
            .json(&json!({"from": "a", "message": format!("full-{i}-{big}")}))
            .send();
        match r {
            Ok(r) if r.status() == 200 => acked.push(format!("full-{i}-{big}")),
            Ok(r) => {
                assert_eq!(r.status(), 503, "a full disk must give 503");
                let v: Value = r.json().unwrap_or(Value::Null);
                assert!(v["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("not acknowledged")));
                refused += 1;
                break;
            }
            Err(e) => panic!("the daemon must answer the first refused write, not drop it: {e}"),
        }
    }
    assert_eq!(refused, 1, "the full disk was never noticed");
    // sled cannot continue after an I/O error: the daemon stops with a clear error (exit != 0)
    // so that its service manager restarts it; nothing it refused was acknowledged.
    let p = d.proc.as_mut().expect("proc");
    let st = clawlink_tests::wait_for(
        "the daemon to stop on the store failure",
        Duration::from_secs(20),
        || p.child.try_wait().ok().flatten(),
    );
    assert!(!st.success());
    assert!(d.logs().contains("could not write"), "{}", d.logs());
    // Space comes back: the restarted daemon continues.
    std::fs::remove_file(&filler).expect("free space");
    d.proc = None;
    d.spawn();
    let r = client
        .post(&url)
        .json(&json!({"from": "a", "message": "after"}))
        .send()
        .expect("post");
    assert_eq!(r.status(), 200);
    acked.push("after".into());
    // The store is intact after a restart: every acknowledged message, once.
    assert!(d.stop(), "clean stop failed:\n{}", d.logs());
    d.spawn();
    let inbox = d.ctl_json(&["inbox"]);
    let texts: Vec<&str> = inbox
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["message"].as_str())
        .collect();
    for a in &acked {
        assert_eq!(
            texts.iter().filter(|t| *t == a).count(),
            1,
            "acknowledged message lost or doubled"
        );
    }
}

/// A data dir that turns read-only between runs (a remount with files open for writing is
/// refused by the kernel, so the mid-run failure is the disk-full test above).
#[test]
fn read_only_data_dir_is_a_clear_error_at_start_and_loses_nothing() {
    let mut d = Daemon::new();
    let disk = SmallDisk::mount(d.dir.path().join("disk"), "64m");
    d.data_dir = disk.path.join("data");
    d.spawn();
    assert_eq!(
        d.post_message(&json!({"from": "a", "message": "before"}))
            .status(),
        200
    );
    assert!(d.stop(), "clean stop failed:\n{}", d.logs());
    let remount = |mode: &str| {
        let out = run(Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&disk.path));
        assert!(
            out.status.success(),
            "remount {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    remount("ro");
    let out = run(&mut d.command());
    assert!(
        !out.status.success(),
        "the daemon must not run without a writable store"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Read-only") || err.contains("read-only"),
        "the error must say the data dir is read-only: {err}"
    );
    remount("rw");
    d.spawn();
    assert_eq!(
        d.post_message(&json!({"from": "a", "message": "after"}))
            .status(),
        200
    );
    let texts: Vec<String> = d
        .ctl_json(&["inbox"])
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["message"].as_str().map(String::from))
        .collect();
    assert_eq!(texts, ["before", "after"]);
}

#[test]
fn corrupted_store_is_a_clear_error_and_is_not_wiped() {
    let mut d = Daemon::start();
    d.post_message(&json!({"from": "a", "message": "keep me"}));
    assert!(d.stop());
    let db = d.data_dir.join("db");
    let files: Vec<_> = std::fs::read_dir(&db)
        .expect("db dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    assert!(!files.is_empty());
    let conf = db.join("conf");
    let snapshot: Vec<(std::path::PathBuf, u64)> = files
        .iter()
        .map(|p| {
            (
                p.clone(),
                std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect();
    std::fs::write(&conf, b"\xde\xad\xbe\xef garbage").expect("corrupt");
    let out = run(&mut d.command());
    assert!(
        !out.status.success(),
        "a corrupted store must stop the daemon"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("store") || err.contains("sled") || err.contains("corrupt"),
        "unclear error: {err}"
    );
    for (p, len) in snapshot {
        if p != conf {
            assert_eq!(
                std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0),
                len,
                "{} changed: the store was touched",
                p.display()
            );
        }
    }
}

fn relay_texts(d: &Daemon) -> Vec<String> {
    d.ctl_json(&["inbox", "--source", "relay"])
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["message"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn relay_row_state(d: &Daemon) -> Option<String> {
    d.ctl_json(&["status"])["connections"]
        .as_array()?
        .iter()
        .find(|c| c["kind"] == "relay")
        .and_then(|c| c["state"].as_str().map(String::from))
}

/// B reaches the relay through a proxy that cuts, stalls and delays its link. B must notice a
/// dead link (no answer to its pings), reconnect, and end with every message exactly once.
#[test]
fn relay_link_cut_stalled_and_delayed_still_delivers_everything_once() {
    use clawlink_tests::proxy::Proxy;
    use clawlink_tests::relay::RelayServer;
    let relay = RelayServer::start(&[]);
    let proxy = Proxy::start(relay.addr);
    let a = Daemon::start();
    let mut b = Daemon::new();
    b.write_config("[relay]\nping_interval_secs = 1\n");
    b.spawn();
    let direct = format!("http://{}", relay.addr);
    let via_proxy = format!("http://{}", proxy.addr);
    a.ctl_json(&[
        "relay",
        "register",
        "--relay",
        &direct,
        "--id",
        "pa",
        "--name",
        "A",
        "--secret",
        "secret-a-1",
    ]);
    b.ctl_json(&[
        "relay",
        "register",
        "--relay",
        &via_proxy,
        "--id",
        "pb",
        "--name",
        "B",
        "--secret",
        "secret-b-1",
    ]);
    let connected = |d: &Daemon| relay_row_state(d).filter(|s| s == "connected");
    clawlink_tests::wait_for("B connected", Duration::from_secs(20), || connected(&b));
    let mut sent = Vec::new();
    let send = |text: &str, sent: &mut Vec<String>| {
        let r = a.ctl_json(&[
            "relay",
            "send",
            "--relay",
            &direct,
            "--to",
            "pb",
            "--message",
            text,
        ]);
        assert_eq!(r["state"], "delivered", "{r}");
        sent.push(text.to_string());
    };
    let all_arrived = |want: &[String]| {
        clawlink_tests::wait_for(
            "every message in B's inbox",
            Duration::from_secs(30),
            || {
                let got = relay_texts(&b);
                (got.len() >= want.len()).then_some(got)
            },
        )
    };
    send("before", &mut sent);
    all_arrived(&sent);

    // Cut: B reconnects by itself.
    proxy.cut();
    send("after-cut", &mut sent);
    all_arrived(&sent);

    // Stall: bytes stop, nothing closes. B must declare the link dead and reconnect; messages
    // pushed into the dead link were never acknowledged, so the relay pushes them again.
    proxy.stall(true);
    send("during-stall-1", &mut sent);
    send("during-stall-2", &mut sent);
    clawlink_tests::wait_for("B to notice the dead link", Duration::from_secs(20), || {
        relay_row_state(&b).filter(|s| s != "connected")
    });
    proxy.stall(false);
    all_arrived(&sent);

    // Delay: 50 ms per chunk, still delivered.
    proxy.delay(50);
    send("delayed", &mut sent);
    all_arrived(&sent);

    let got = relay_texts(&b);
    assert_eq!(
        got, sent,
        "lost, doubled or reordered across cut/stall/delay"
    );
}
