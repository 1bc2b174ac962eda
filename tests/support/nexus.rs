//! The Nexus server fixture: `clawlinkd nexus-server` in a temp dir on a free port, and a
//! minimal client that makes the reference protocol's HTTP calls as `nexus.sh` does (JSON
//! bodies with `Content-Type: application/json`, identity in `X-Agent-Id` / `X-Session-Key`).

use crate::{bin, bound_addr, wait_for, Proc, ANY_PORT};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A running `clawlinkd nexus-server`. Killed on drop.
pub struct NexusServer {
    /// Temp dir holding the data dir and the logs.
    pub dir: tempfile::TempDir,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub addr: SocketAddr,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// The process, while running.
    pub proc: Option<Proc>,
    starts: u32,
    http: reqwest::blocking::Client,
}

/// Status and JSON body of an answer (`Null` when the body is not JSON).
pub type Answer = (u16, Value);

/// Asserts the status and returns the body.
pub fn expect(ans: Answer, status: u16) -> Value {
    assert_eq!(ans.0, status, "unexpected answer: {}", ans.1);
    ans.1
}

/// Asserts an error answer: status, `error` code, and the protocol's error shape.
pub fn expect_err(ans: Answer, status: u16, code: &str) {
    let got = (ans.0, ans.1["error"].as_str());
    assert_eq!(got, (status, Some(code)), "answer: {}", ans.1);
    let shaped = ans.1["message"].is_string() && ans.1["details"].is_array();
    assert!(shaped, "error shape: {}", ans.1);
}

/// The string field `key` of `v` (panics if absent).
pub fn field(v: &Value, key: &str) -> String {
    match v[key].as_str() {
        Some(s) => s.to_string(),
        None => panic!("no string {key} in {v}"),
    }
}

impl NexusServer {
    /// Starts a server with the rate limit raised out of the way, plus `args`.
    pub fn start(args: &[&str]) -> NexusServer {
        let mut all = vec!["--rate-limit-requests", "1000000"];
        all.extend_from_slice(args);
        Self::start_exact(&all)
    }

    /// Starts a server with exactly `args` after `--listen` and `--data-dir`.
    pub fn start_exact(args: &[&str]) -> NexusServer {
        let dir = tempfile::Builder::new()
            .prefix("clawlink-nexus-")
            .tempdir()
            .expect("tempdir");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .expect("http client");
        let mut s = NexusServer {
            data_dir: dir.path().join("data"),
            addr: ANY_PORT.parse().expect("loopback"),
            args: args.iter().map(|a| a.to_string()).collect(),
            proc: None,
            starts: 0,
            http,
            dir,
        };
        s.spawn();
        s
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (Re)starts the process on the same address and data dir, and waits for `/health`.
    pub fn spawn(&mut self) {
        self.starts += 1;
        let mut cmd = Command::new(bin("clawlinkd"));
        cmd.arg("nexus-server")
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--addr-file")
            .arg(self.dir.path().join("addr"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args);
        cmd.env_remove("CLAWLINK_DATA_DIR").env(
            "RUST_LOG",
            std::env::var("CLAWLINK_TEST_LOG").unwrap_or_else(|_| "debug".into()),
        );
        let log = self.dir.path().join(format!("nexus.{}.log", self.starts));
        let addr_file = self.dir.path().join("addr");
        let _ = std::fs::remove_file(&addr_file);
        self.proc = Some(Proc::spawn(cmd, log));
        // The first start picks a port; restarts keep it.
        self.addr = bound_addr(&addr_file, &mut self.proc, "nexus-server");
        let url = format!("{}/health", self.url());
        wait_for("nexus-server /health", Duration::from_secs(20), || {
            if let Some(p) = self.proc.as_mut() {
                if !p.running() {
                    panic!("nexus-server exited during start:\n{}", p.log_text());
                }
            }
            self.http
                .get(&url)
                .send()
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        });
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        crate::kill9_slot(&mut self.proc);
    }

    /// SIGTERM and wait; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        crate::stop_slot(&mut self.proc)
    }

    /// Everything logged, across restarts.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("nexus.{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `PUT /v1/sessions` with `body`; returns the session id and the creator's key ("" if none).
    pub fn create(&self, body: &Value) -> (String, String) {
        let v = expect(
            self.call("PUT", "/v1/sessions", &[], Some(&body.to_string())),
            201,
        );
        (
            field(&v, "sessionId"),
            v["sessionKey"].as_str().unwrap_or("").to_string(),
        )
    }

    /// `POST /v1/sessions/SID/join` as `agent`; returns the agent's session key.
    pub fn join(&self, sid: &str, agent: &str) -> String {
        let path = format!("/v1/sessions/{sid}/join");
        field(
            &expect(
                self.call("POST", &path, &[("X-Agent-Id", agent)], None),
                200,
            ),
            "sessionKey",
        )
    }

    /// `POST /v1/sessions/SID/messages` as `agent`, with `key` if given.
    pub fn post_message(&self, sid: &str, agent: &str, key: Option<&str>, body: &Value) -> Answer {
        let mut h = vec![("X-Agent-Id", agent)];
        if let Some(k) = key {
            h.push(("X-Session-Key", k));
        }
        self.call(
            "POST",
            &format!("/v1/sessions/{sid}/messages"),
            &h,
            Some(&body.to_string()),
        )
    }

    /// `GET /v1/sessions/SID/messages{query}` as `agent`.
    pub fn poll(&self, sid: &str, agent: &str, query: &str) -> Answer {
        let path = format!("/v1/sessions/{sid}/messages{query}");
        self.call("GET", &path, &[("X-Agent-Id", agent)], None)
    }

    /// One call: `method path` with `headers` and an optional raw JSON `body`.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let resp = self
            .send(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Like [`call`](Self::call) but returns the transport error instead of panicking.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> reqwest::Result<reqwest::blocking::Response> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        req.send()
    }
}

/// `d`'s `status` row for its joined Nexus session `sid` (Null when there is none).
pub fn nexus_row(d: &crate::Daemon, sid: &str) -> Value {
    let st = d.ctl_json(&["status"]);
    let rows = st["connections"].as_array().cloned().unwrap_or_default();
    rows.into_iter()
        .find(|r| r["kind"] == "nexus" && r["target"] == sid)
        .unwrap_or(Value::Null)
}
