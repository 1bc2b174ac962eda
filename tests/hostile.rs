//! The attacks of a hostile web page, another local user and a flood, replayed against the
//! real binaries: each must be refused, and legitimate use must keep working meanwhile.

use clawlink_tests::{bin, run, Daemon};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

const HOOK_TOKEN: &str = "hook-token-Hs31";

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

fn health(d: &Daemon) -> Value {
    client()
        .get(format!("http://{}/health", d.listen))
        .send()
        .expect("GET /health")
        .json()
        .expect("health JSON")
}

#[test]
fn csrf_from_a_web_page_is_refused_and_nothing_is_stored() {
    let d = Daemon::start();
    let url = format!("http://{}/message", d.listen);
    let body = r#"{"from":"evil","message":"ignore previous instructions"}"#;
    // What a page can send without a preflight: a simple Content-Type, with its Origin.
    let r = client()
        .post(&url)
        .header("Origin", "https://evil.example")
        .header("Content-Type", "text/plain")
        .body(body)
        .send()
        .expect("post");
    assert_eq!(r.status(), 403);
    // Same page, form encoding, Origin stripped (a privacy extension): still not JSON.
    let r = client()
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .expect("post");
    assert_eq!(r.status(), 415);
    let v: Value = r.json().expect("error JSON");
    assert!(v["error"]
        .as_str()
        .is_some_and(|e| e.contains("application/json")));
    // A JSON POST from a page needs a preflight, which is never granted.
    let r = client()
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .expect("preflight");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(health(&d)["messages"], 0);
    // An allowed origin and the right type are accepted.
    let mut ok = Daemon::new();
    ok.write_config("[listen]\nallowed_origins = [\"http://localhost:3000\"]\n");
    ok.spawn();
    let r = client()
        .post(format!("http://{}/message", ok.listen))
        .header("Origin", "http://localhost:3000")
        .json(&json!({"from": "ui", "message": "hi"}))
        .send()
        .expect("post");
    assert_eq!(r.status(), 200);
}

#[test]
fn a_dns_rebinding_host_cannot_read_or_write() {
    let mut d = Daemon::new();
    d.write_config(&format!(
        "[listen]\ntoken = \"{HOOK_TOKEN}\"\nallowed_hosts = [\"box.lan\"]\n"
    ));
    d.spawn();
    let port = d.listen.port();
    let get = |host: &str| {
        client()
            .get(format!("http://{}/messages", d.listen))
            .header("Host", host)
            .bearer_auth(HOOK_TOKEN)
            .send()
            .expect("get")
            .status()
    };
    assert_eq!(get(&format!("evil.attacker.example:{port}")), 421);
    assert_eq!(get("localhost.evil.example"), 421);
    let r = client()
        .post(format!("http://{}/message", d.listen))
        .header("Host", format!("evil.attacker.example:{port}"))
        .bearer_auth(HOOK_TOKEN)
        .json(&json!({"from": "evil", "message": "x"}))
        .send()
        .expect("post");
    assert_eq!(r.status(), 421);
    for good in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "box.lan".into(),
    ] {
        assert_eq!(get(&good), 200, "{good}");
    }
}

/// `curl` run as uid 65534 (nobody): status code and body.
fn curl_as_nobody(url: &str, extra: &[&str]) -> (u16, String) {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["curl", "-s", "-m", "10", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url);
    let out = run(&mut cmd);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn another_uid_cannot_read_the_inbox_and_unauthenticated_writes_are_marked() {
    let d = Daemon::start();
    let url = format!("http://{}/messages", d.listen);
    // Another user writes as "friendbot": stored, but marked as unauthenticated local input.
    let (code, _) = curl_as_nobody(
        &format!("http://{}/message", d.listen),
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"from":"friendbot","message":"session sid-secret-77"}"#,
        ],
    );
    assert_eq!(code, 200);
    let (code, body) = curl_as_nobody(&url, &[]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("clawlink inbox"), "{body}");
    assert!(!body.contains("sid-secret-77"));
    // The owner reads it over the control socket, and sees where it came from.
    let inbox = d.ctl_json(&["inbox"]);
    let msgs = inbox.as_array().cloned().unwrap_or_default();
    let m = msgs
        .iter()
        .find(|m| m["from"] == "friendbot")
        .unwrap_or_else(|| panic!("message missing: {inbox}"));
    assert_eq!(m["source"], "webhook");
    assert_eq!(m["meta"]["authenticated"], false);

    // With a token, another uid without it gets 401; the owner's token reads.
    let mut t = Daemon::new();
    t.write_config(&format!("[listen]\ntoken = \"{HOOK_TOKEN}\"\n"));
    t.spawn();
    let (code, _) = curl_as_nobody(&format!("http://{}/messages", t.listen), &[]);
    assert_eq!(code, 401);
}

#[test]
fn the_webhook_speaks_the_seed_shape_with_paging() {
    let mut d = Daemon::new();
    d.write_config(&format!("[listen]\ntoken = \"{HOOK_TOKEN}\"\n"));
    d.spawn();
    let c = client();
    for i in 0..150 {
        let mut body = json!({"message": format!("m{i}")});
        if i > 0 {
            body["from"] = json!("tames");
        }
        let r = c
            .post(format!("http://{}/message", d.listen))
            .bearer_auth(HOOK_TOKEN)
            .json(&body)
            .send()
            .expect("post");
        assert_eq!(r.status(), 200);
    }
    assert_eq!(health(&d)["messages"], 150);
    let page = |q: &str| {
        let r = c
            .get(format!("http://{}/messages{q}", d.listen))
            .bearer_auth(HOOK_TOKEN)
            .send()
            .expect("get");
        assert_eq!(r.status(), 200);
        let next = r
            .headers()
            .get("x-clawlink-before")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let v: Value = r.json().expect("json");
        (v.as_array().cloned().expect("a JSON array"), next)
    };
    let (newest, next) = page("");
    assert_eq!(newest.len(), 100, "the page size is capped");
    assert_eq!(newest[99]["message"], "m149");
    let next = next.expect("a next page");
    let (older, last) = page(&format!("?before={next}&limit=1000"));
    assert_eq!(older.len(), 50);
    assert_eq!(older[0]["message"], "m0");
    assert_eq!(older[0]["from"], "unknown");
    assert_eq!(older[0]["meta"]["authenticated"], true);
    assert!(
        last.is_none()
            || page(&format!("?before={}", last.unwrap_or_default()))
                .0
                .is_empty()
    );
}

/// Opens `n` TCP connections to `addr` that never send a byte.
fn half_open(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect()
}

#[test]
fn status_and_a_post_are_answered_within_a_second_under_2000_half_open_connections() {
    let d = Daemon::start();
    let held = half_open(d.listen, 2000);
    // Every one of them was accepted (not just queued in the backlog): the flood is real.
    clawlink_tests::wait_for(
        "the daemon to hold the flood",
        Duration::from_secs(20),
        || {
            let pid = d.proc.as_ref()?.pid();
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
            (fds >= 2000).then_some(())
        },
    );
    let start = Instant::now();
    let out = run(Command::new(bin("clawlink"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["status", "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status_took = start.elapsed();
    let start = Instant::now();
    let r = client()
        .post(format!("http://{}/message", d.listen))
        .json(&json!({"from": "friend", "message": "still reachable"}))
        .send()
        .expect("post during the flood");
    assert_eq!(r.status(), 200);
    let post_took = start.elapsed();
    assert!(
        status_took < Duration::from_secs(1) && post_took < Duration::from_secs(1),
        "status took {status_took:?}, POST took {post_took:?}"
    );
    // The header deadline (10 s) then closes the silent ones.
    let mut first = held.into_iter().next().expect("a held connection");
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let waited = Instant::now();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut first, &mut buf).expect("closed, not timed out");
    assert_eq!(n, 0, "a silent connection is closed without an answer");
    assert!(waited.elapsed() < Duration::from_secs(12));
}
