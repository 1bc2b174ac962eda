//! The daemon foundation, end to end: real `clawlinkd` and `clawlink` binaries, temp dirs,
//! free ports, a real sled store on disk.

use clawlink_tests::{bin, run, wait_for, Daemon, Proc};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn status_answers_and_reports_paths() {
    let d = Daemon::start();
    let s = d.ctl_json(&["status"]);
    assert_eq!(s["protocol"], 1);
    assert_eq!(s["socket"], d.socket.display().to_string());
    assert_eq!(s["data_dir"], d.data_dir.display().to_string());
    assert_eq!(s["listen"], d.listen.to_string());
    assert_eq!(s["inbox"]["total"], 0);
    assert!(s["connections"].as_array().is_some());
    let human = d.ctl(&["status"]);
    assert!(human.status.success());
    assert!(String::from_utf8_lossy(&human.stdout).contains("inbox      0 messages"));
}

#[test]
fn webhook_message_reaches_inbox_and_a_live_listener() {
    let d = Daemon::start();
    let mut listener = Command::new(bin("clawlink"));
    listener
        .arg("--socket")
        .arg(&d.socket)
        .args(["listen", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = listener.spawn().expect("spawn listen");
    let out = child.stdout.take().expect("stdout");
    let (tx, printed) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The subscription is live once the listener prints a probe: post probes until one shows.
    let mut probes = 0;
    let live = wait_for(
        "the listener prints a probe",
        Duration::from_secs(60),
        || {
            probes += 1;
            let probe = d.post_message(&json!({"from": "probe", "message": "probe"}));
            assert_eq!(probe.status(), 200);
            printed.recv_timeout(Duration::from_millis(500)).ok()
        },
    );
    assert!(live.contains("probe"), "{live}");
    let resp = d.post_message(&json!({"from": "tames", "message": "안녕! hello"}));
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().expect("json");
    assert_eq!(body["ok"], true);
    let id = body["id"].as_u64().expect("id");

    let inbox = d.ctl_json(&["inbox"]);
    let items = inbox.as_array().expect("array");
    let m = items
        .iter()
        .find(|m| m["id"] == id)
        .expect("message in inbox");
    assert_eq!(m["from"], "tames");
    assert_eq!(m["message"], "안녕! hello");
    assert_eq!(m["source"], "webhook");
    assert_eq!(m["read"], false);
    assert!(m["received_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    // The live listener prints it (after any probes still on their way).
    let seen = wait_for(
        "the listener prints the message",
        Duration::from_secs(60),
        || {
            let line = printed.recv_timeout(Duration::from_millis(500)).ok()?;
            let v: Value = serde_json::from_str(&line).expect("one JSON object per line");
            (v["id"] == id).then_some(v)
        },
    );
    assert_eq!(seen["message"], "안녕! hello");
    let _ = child.kill();
    let _ = child.wait();

    // read / ack / rm
    let r = d.ctl_json(&["inbox", "read", &id.to_string()]);
    assert_eq!(r["read"], true);
    assert_eq!(
        d.ctl_json(&["inbox", "--unread"])
            .as_array()
            .map(|a| a.len()),
        Some(probes)
    );
    assert_eq!(d.ctl_json(&["inbox", "ack", "--all"])["count"], probes);
    assert_eq!(
        d.ctl_json(&["inbox", "--unread"])
            .as_array()
            .map(|a| a.len()),
        Some(0)
    );
    assert_eq!(
        d.ctl_json(&["inbox", "--from", "tames"])
            .as_array()
            .map(|a| a.len()),
        Some(1)
    );
    assert_eq!(
        d.ctl_json(&["inbox", "--limit", "1"])
            .as_array()
            .map(|a| a[0]["id"] == id),
        Some(true)
    );
    d.ctl_json(&["inbox", "rm", &id.to_string()]);
    let missing = d.ctl(&["inbox", "read", &id.to_string()]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("no message with id"));
}

#[test]
fn acknowledged_messages_survive_kill_9() {
    let mut d = Daemon::start();
    let client = reqwest::blocking::Client::new();
    let mut acked = Vec::new();
    // Concurrent posters, then SIGKILL right after the last acknowledgement.
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let client = client.clone();
            let url = format!("http://{}/message", d.listen);
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        let r = client
                            .post(&url)
                            .json(&json!({"from": format!("p{t}"), "message": format!("m{t}-{i}")}))
                            .send()
                            .expect("post");
                        assert_eq!(r.status(), 200);
                        let v: Value = r.json().expect("json");
                        (v["id"].as_u64().expect("id"), format!("m{t}-{i}"))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        acked.extend(h.join().expect("poster"));
    }
    d.kill9();
    d.spawn();
    let inbox = d.ctl_json(&["inbox"]);
    let items = inbox.as_array().expect("array");
    for (id, text) in &acked {
        assert!(
            items
                .iter()
                .any(|m| m["id"] == *id && m["message"] == text.as_str()),
            "acknowledged message {id} lost after kill -9"
        );
    }
    assert_eq!(items.len(), acked.len());
    // Per-sender order is arrival order.
    for t in 0..4 {
        let from = format!("p{t}");
        let texts: Vec<&str> = items
            .iter()
            .filter(|m| m["from"] == from.as_str())
            .filter_map(|m| m["message"].as_str())
            .collect();
        let expected: Vec<String> = (0..50).map(|i| format!("m{t}-{i}")).collect();
        assert_eq!(texts, expected);
    }
}

#[test]
fn duplicate_webhook_ids_are_stored_once() {
    let d = Daemon::start();
    let a: Value = d
        .post_message(&json!({"from": "x", "message": "once", "id": "abc"}))
        .json()
        .expect("json");
    let b: Value = d
        .post_message(&json!({"from": "x", "message": "once", "id": "abc"}))
        .json()
        .expect("json");
    assert_eq!(a["id"], b["id"]);
    assert_eq!(d.ctl_json(&["inbox"]).as_array().map(|a| a.len()), Some(1));
}

#[test]
fn contacts_never_show_the_token() {
    let d = Daemon::start();
    let token = "tok-SUPER-secret-4711";
    let out = d.ctl(&[
        "contacts",
        "add",
        "--name",
        "friend",
        "--url",
        "ws://127.0.0.1:1",
        "--token",
        token,
        "--desc",
        "a friend",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = d.ctl_json(&["contacts", "list"]);
    assert_eq!(list[0]["name"], "friend");
    assert_eq!(list[0]["token"], "***");
    let human = d.ctl(&["contacts", "list"]);
    let all = format!(
        "{}{}{}",
        String::from_utf8_lossy(&human.stdout),
        list,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(all.contains("friend"));
    assert!(!all.contains(token), "token leaked into list output");
    let bad = d.ctl(&[
        "contacts",
        "add",
        "--name",
        "x",
        "--url",
        "http://nope",
        "--token",
        "t",
    ]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("ws://"));
    d.ctl_json(&["contacts", "remove", "--name", "friend"]);
    assert_eq!(
        d.ctl_json(&["contacts", "list"])
            .as_array()
            .map(|a| a.len()),
        Some(0)
    );
    let gone = d.ctl(&["contacts", "remove", "--name", "friend"]);
    assert!(!gone.status.success());
    assert!(!d.logs().contains(token), "token leaked into the logs");
}

#[test]
fn import_reads_the_seed_contacts_file() {
    let d = Daemon::start();
    let skill = d.dir.path().join("skill");
    std::fs::create_dir_all(&skill).expect("mkdir");
    std::fs::write(
        skill.join("contacts.json"),
        r#"{"friendbot":{"url":"ws://10.0.0.5:18789","token":"abc123","desc":"friend"}}"#,
    )
    .expect("write");
    let r = d.ctl_json(&["import", "--from-skill", skill.to_str().expect("utf8")]);
    assert_eq!(r["contacts"], 1);
    assert_eq!(
        d.ctl_json(&["contacts", "list"])[0]["url"],
        "ws://10.0.0.5:18789"
    );
}

#[test]
fn socket_is_private_and_refuses_other_users() {
    let d = Daemon::start();
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&d.socket), 0o600);
    assert_eq!(mode(d.socket.parent().expect("dir")), 0o700);
    assert_eq!(mode(&d.data_dir), 0o700);

    // As another uid: the directory alone keeps it out.
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin("clawlink"))
            .arg("--socket")
            .arg(&d.socket)
            .args(args);
        run(&mut cmd)
    };
    let out = as_nobody(&["status"]);
    assert!(!out.status.success(), "another uid could use the socket");

    // Open the directory and socket up on purpose: the peer-credential check must still refuse.
    let tmp = d.dir.path();
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o711)).expect("chmod");
    std::fs::set_permissions(
        d.socket.parent().expect("dir"),
        std::fs::Permissions::from_mode(0o711),
    )
    .expect("chmod");
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = as_nobody(&["status"]);
    assert!(
        !out.status.success(),
        "peer-credential check let another uid in"
    );
    assert!(
        stderr(&out).contains("closed the connection"),
        "{}",
        stderr(&out)
    );
    assert!(d.logs().contains("another user refused"));
    // And we still get in.
    d.ctl_json(&["status"]);
}

#[test]
fn second_daemon_on_same_data_dir_refuses() {
    let d = Daemon::start();
    let mut other = Command::new(bin("clawlinkd"));
    other
        .arg("--data-dir")
        .arg(&d.data_dir)
        .arg("--socket")
        .arg(d.dir.path().join("other.sock"))
        .args(["--listen", "off"]);
    let out = run(&mut other);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already using the data directory"),
        "{}",
        stderr(&out)
    );
    // Same socket, other data dir: refused too, and the first daemon keeps its socket.
    let mut third = Command::new(bin("clawlinkd"));
    third
        .arg("--data-dir")
        .arg(d.dir.path().join("data2"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["--listen", "off"]);
    let out = run(&mut third);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already answering"),
        "{}",
        stderr(&out)
    );
    d.ctl_json(&["status"]);
}

#[test]
fn stale_socket_file_is_replaced() {
    let mut d = Daemon::start();
    d.kill9();
    assert!(d.socket.exists(), "kill -9 leaves the socket file behind");
    d.spawn();
    d.ctl_json(&["status"]);
}

fn raw(d: &Daemon) -> (BufReader<UnixStream>, UnixStream) {
    let s = UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let w = s.try_clone().expect("clone");
    (BufReader::new(s), w)
}

fn reply(r: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).expect("read reply");
    serde_json::from_str(&line).unwrap_or(Value::Null)
}

#[test]
fn malformed_and_oversized_frames_get_errors_and_the_daemon_keeps_serving() {
    let d = Daemon::start();
    // Bad hello.
    let (mut r, mut w) = raw(&d);
    w.write_all(b"hello there\n").expect("write");
    assert_eq!(reply(&mut r)["error"]["code"], "bad_request");
    // Wrong version.
    let (mut r, mut w) = raw(&d);
    w.write_all(b"{\"clawlink\":99}\n").expect("write");
    assert_eq!(reply(&mut r)["error"]["code"], "version_mismatch");
    // Garbage after a good hello: error reply, connection still usable.
    let (mut r, mut w) = raw(&d);
    w.write_all(b"{\"clawlink\":1}\n").expect("write");
    assert_eq!(reply(&mut r)["clawlink"], 1);
    for bad in [
        &b"{not json\n"[..],
        b"{\"method\":\"nope\"}\n",
        b"{\"method\":\"inbox.read\",\"params\":{\"id\":\"x\"}}\n",
        b"\xff\xfe\n",
    ] {
        w.write_all(bad).expect("write");
        let v = reply(&mut r);
        assert_eq!(v["ok"], false, "{v}");
        if v["error"]["code"] != "bad_request" {
            break; // invalid UTF-8 closes the connection
        }
    }
    let (mut r, mut w) = raw(&d);
    w.write_all(b"{\"clawlink\":1}\n{\"method\":\"status\"}\n")
        .expect("write");
    reply(&mut r);
    assert_eq!(reply(&mut r)["ok"], true);
    // Oversized: error then close.
    let (mut r, mut w) = raw(&d);
    w.write_all(b"{\"clawlink\":1}\n").expect("write");
    reply(&mut r);
    let big = vec![b'x'; 2 * 1024 * 1024];
    let _ = w.write_all(&big);
    let v = reply(&mut r);
    assert_eq!(v["error"]["code"], "frame_too_large");
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    // Silent client: closed after the handshake deadline rather than held forever.
    let (mut r, _w) = raw(&d);
    let mut buf = [0u8; 1];
    assert_eq!(r.get_mut().read(&mut buf).unwrap_or(0), 0);
    d.ctl_json(&["status"]);
}

#[test]
fn bad_webhook_bodies_get_json_errors() {
    let d = Daemon::start();
    // No connection reuse: after a 413 the server may close without reading the rest of the body.
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let url = format!("http://{}/message", d.listen);
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"{not json".to_vec(), 400),
        (b"[]".to_vec(), 400),
        (br#"{"from":"a"}"#.to_vec(), 400),
        (br#"{"from":"","message":"a"}"#.to_vec(), 400),
        (br#"{"from":1,"message":"a"}"#.to_vec(), 400),
        (vec![b'x'; 200 * 1024], 413),
    ];
    for (body, status) in cases {
        let r = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("post");
        assert_eq!(r.status().as_u16(), status);
        let v: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(v["ok"], false, "error body must be JSON");
        assert!(v["error"].as_str().is_some());
    }
    let health: Value = client
        .get(format!("http://{}/health", d.listen))
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(health["ok"], true);
    assert_eq!(
        d.post_message(&json!({"from": "a", "message": "still here"}))
            .status(),
        200
    );
    assert_eq!(health["messages"], 0, "no bad body was stored");
}

#[test]
fn webhook_token_is_enforced_and_public_bind_needs_one() {
    let mut d = Daemon::new();
    d.write_config("[listen]\ntoken = \"hook-secret\"\n");
    d.spawn();
    let client = reqwest::blocking::Client::new();
    let url = format!("http://{}/message", d.listen);
    let r = client
        .post(&url)
        .json(&json!({"from": "a", "message": "b"}))
        .send()
        .expect("post");
    assert_eq!(r.status(), 401);
    let r = client
        .post(&url)
        .bearer_auth("wrong")
        .json(&json!({"from": "a", "message": "b"}))
        .send()
        .expect("post");
    assert_eq!(r.status(), 401);
    let r = client
        .post(&url)
        .bearer_auth("hook-secret")
        .json(&json!({"from": "a", "message": "b"}))
        .send()
        .expect("post");
    assert_eq!(r.status(), 200);
    assert!(!d.logs().contains("hook-secret"));

    let mut e = Daemon::new();
    e.listen_arg = "0.0.0.0:0".into();
    let mut cmd = e.command();
    let out = run(&mut cmd);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no listen.token"), "{}", stderr(&out));
}

#[test]
fn config_errors_name_the_key() {
    let d = Daemon::new();
    d.write_config("[listen]\naddress = \"127.0.0.1:1\"\n");
    let out = run(&mut d.command());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("address"), "{}", stderr(&out));
}

#[test]
fn daemon_down_is_reported_with_how_to_start() {
    let d = Daemon::new();
    let out = d.ctl(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not running"));
    assert!(stderr(&out).contains("clawlinkd"));
}

#[test]
fn sigterm_and_shutdown_exit_cleanly() {
    let mut d = Daemon::start();
    d.post_message(&json!({"from": "a", "message": "b"}));
    assert!(d.stop(), "SIGTERM did not exit 0:\n{}", d.logs());
    assert!(!d.socket.exists(), "socket file left after a clean stop");
    d.spawn();
    assert_eq!(d.ctl_json(&["inbox"]).as_array().map(|a| a.len()), Some(1));
    assert!(d.ctl(&["shutdown"]).status.success());
    let p: &mut Proc = d.proc.as_mut().expect("proc");
    let st = wait_for("exit after shutdown", Duration::from_secs(15), || {
        p.child.try_wait().ok().flatten()
    });
    assert!(st.success());
}

#[test]
fn sighup_reloads_the_config() {
    let mut d = Daemon::new();
    d.write_config("");
    d.spawn();
    d.write_config("[outbox]\nttl_secs = 5\n");
    let pid = d.proc.as_ref().expect("proc").pid().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill")
        .success());
    wait_for("reload log line", Duration::from_secs(10), || {
        d.logs().contains("configuration reloaded").then_some(())
    });
    d.write_config("[outbox]\nbogus = 1\n");
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill")
        .success());
    wait_for("rejected reload", Duration::from_secs(10), || {
        d.logs().contains("NOT reloaded").then_some(())
    });
    d.ctl_json(&["status"]);
}

#[test]
fn a_large_inbox_lists_whole_in_pages_and_limits_keep_the_newest() {
    let d = Daemon::start();
    // 40 × 40 KiB: a 1.6 MiB listing, past the 1 MiB cap on requests.
    let big = "z".repeat(40 * 1024);
    for i in 0..40 {
        let r =
            d.post_message(&serde_json::json!({"from": "big", "message": format!("{i}-{big}")}));
        assert_eq!(r.status(), 200);
    }
    // 2,500 more: the CLI fetches them in pages of 1,000 and prints one list, oldest first.
    let http = reqwest::blocking::Client::new();
    for i in 0..2500 {
        let r = http
            .post(format!("http://{}/message", d.listen))
            .json(&serde_json::json!({"from": "small", "message": format!("m{i}")}))
            .send()
            .expect("post");
        assert_eq!(r.status(), 200);
    }
    let texts = |args: &[&str]| -> Vec<String> {
        d.ctl_json(args)
            .as_array()
            .expect("array")
            .iter()
            .map(|m| m["message"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let all = texts(&["inbox"]);
    assert_eq!(all.len(), 2540);
    assert!(all[..40].iter().all(|t| t.ends_with(&big)));
    let small: Vec<String> = (0..2500).map(|i| format!("m{i}")).collect();
    assert_eq!(all[40..], small[..]);
    assert_eq!(texts(&["inbox", "--limit", "1500"])[..], small[1000..]);
    assert_eq!(texts(&["inbox", "--from", "big"]).len(), 40);
    let text = d.ctl(&["inbox"]);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
}
