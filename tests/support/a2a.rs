//! A2A fixtures: JSON-RPC calls to a daemon's `/a2a/v1`, the official A2A JavaScript SDK
//! (`@a2a-js/sdk`, installed by `scripts/a2a-env.sh`) as a client and as a server, and a
//! small HTTP receiver for push notifications.
//!
//! The SDK runs as Node scripts under `tests/support/a2a/` on the Node that
//! `scripts/gateway-env.sh` installs. The SDK server logs every message it receives to
//! stderr as `{"received": {...}}`, which is how tests see what arrived and how often.

use crate::{free_addr, wait_for, Daemon, Proc};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Where the SDK is.
#[derive(Debug, Clone)]
pub struct SdkEnv {
    /// Node 24.
    pub node: PathBuf,
    /// The directory holding `node_modules/@a2a-js/sdk`.
    pub dir: PathBuf,
}

/// Runs `scripts/a2a-env.sh` once per test binary (instant when already installed).
pub fn sdk_env() -> &'static SdkEnv {
    static ENV: OnceLock<SdkEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/a2a-env.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/a2a-env.sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "scripts/a2a-env.sh failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let get = |k: &str| -> PathBuf {
            PathBuf::from(
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k}=")))
                    .unwrap_or_else(|| panic!("no {k}= in:\n{text}")),
            )
        };
        SdkEnv {
            node: get("NODE"),
            dir: get("A2A_SDK_DIR"),
        }
    })
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("support/a2a")
        .join(name)
}

fn node(name: &str) -> Command {
    let env = sdk_env();
    let mut cmd = Command::new(&env.node);
    cmd.arg(script(name)).env("A2A_SDK_DIR", &env.dir);
    cmd
}

/// Runs the SDK client against `origin`: card, `sendMessage`, `getTask`. Returns its steps.
pub fn sdk_client(origin: &str, token: &str, text: &str) -> Vec<Value> {
    let out = node("client.mjs")
        .args([origin, token, text])
        .stdin(Stdio::null())
        .output()
        .expect("run the SDK client");
    assert!(
        out.status.success(),
        "SDK client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The SDK as an A2A server (Express + `DefaultRequestHandler`). Killed on drop.
pub struct SdkServer {
    /// The process, while running.
    pub proc: Option<Proc>,
    /// Its port on loopback.
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    /// Its JSON-RPC endpoint.
    pub endpoint: String,
    log_dir: tempfile::TempDir,
    starts: u32,
    token: String,
    delay_ms: u64,
    mode: &'static str,
}

impl SdkServer {
    /// A server not started yet on a free port; `mode` is `answer` or `reject`.
    pub fn new(token: &str, delay_ms: u64, mode: &'static str) -> SdkServer {
        let port = free_addr().port();
        SdkServer {
            proc: None,
            port,
            origin: format!("http://127.0.0.1:{port}"),
            endpoint: format!("http://127.0.0.1:{port}/a2a/jsonrpc"),
            log_dir: tempfile::tempdir().expect("tempdir"),
            starts: 0,
            token: token.to_string(),
            delay_ms,
            mode,
        }
    }

    /// A started server.
    pub fn start(token: &str, delay_ms: u64, mode: &'static str) -> SdkServer {
        let mut s = SdkServer::new(token, delay_ms, mode);
        s.spawn();
        s
    }

    /// Starts the process and waits until its card is served.
    pub fn spawn(&mut self) {
        self.starts += 1;
        let mut cmd = node("server.mjs");
        cmd.args([
            self.port.to_string(),
            self.token.clone(),
            self.delay_ms.to_string(),
            self.mode.to_string(),
        ]);
        let log = self.log_dir.path().join(format!("sdk.{}.log", self.starts));
        self.proc = Some(Proc::spawn(cmd, log));
        let card = format!("{}/.well-known/agent-card.json", self.origin);
        let http = reqwest::blocking::Client::new();
        wait_for("the SDK server's card", Duration::from_secs(60), || {
            if let Some(p) = self.proc.as_mut() {
                assert!(p.running(), "SDK server died:\n{}", p.log_text());
            }
            http.get(&card)
                .send()
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        });
    }

    /// Every message it received, across restarts: `{messageId, contextId, text}`.
    pub fn received(&self) -> Vec<Value> {
        (1..=self.starts)
            .flat_map(|i| {
                let p = self.log_dir.path().join(format!("sdk.{i}.log"));
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter_map(|v| v.get("received").cloned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Adds A2A peer `name` to the daemon and returns its token.
pub fn peer_add(d: &Daemon, name: &str) -> String {
    let v = d.ctl_json(&["a2a", "peer", "add", name]);
    v["token"].as_str().expect("token").to_string()
}

/// POSTs `body` to `http://addr/a2a/v1` (with the bearer token when given); status and JSON.
pub fn rpc_raw(addr: SocketAddr, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("http://{addr}/a2a/v1"))
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(60))
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().expect("POST /a2a/v1");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// One JSON-RPC call; status and answer.
pub fn rpc(addr: SocketAddr, token: &str, method: &str, params: Value) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": "t-1", "method": method, "params": params});
    rpc_raw(addr, Some(token), body.to_string().into_bytes())
}

/// `SendMessage` params for `text` with `messageId` and `returnImmediately`.
pub fn send_params(text: &str, message_id: &str) -> Value {
    json!({"message": {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": text}]},
           "configuration": {"returnImmediately": true}})
}

/// One request as an HTTP receiver saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method and path, e.g. `POST /hook`.
    pub line: String,
    /// Headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Seen {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 request (Content-Length bodies) from `stream`.
pub fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len.min(16 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        line: line.trim_end().to_string(),
        headers,
        body,
    })
}

/// Writes a whole response and closes the connection.
pub fn write_response(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// Serves `listener` on a thread: each request is recorded and answered by `answer`.
pub fn serve_http(
    listener: TcpListener,
    answer: impl Fn(&Seen) -> (u16, String, Vec<u8>) + Send + 'static,
) -> Arc<Mutex<Vec<Seen>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(req) = read_request(&mut stream) else {
                continue;
            };
            let (status, ct, body) = answer(&req);
            if let Ok(mut l) = log.lock() {
                l.push(req);
            }
            write_response(&mut stream, status, &ct, &body);
        }
    });
    seen
}

/// A webhook that takes push notifications (answers 200) on `addr`.
pub fn push_receiver(addr: SocketAddr) -> Arc<Mutex<Vec<Seen>>> {
    let listener = TcpListener::bind(addr).expect("bind the push receiver");
    serve_http(listener, |_| {
        (200, "application/json".into(), b"{}".to_vec())
    })
}
