//! The relay-server fixture (`clawlinkd relay-server` in a temp dir on a free port) and a
//! client shaped exactly like the seed's `relay-client.js`: JSON over HTTP, query values
//! concatenated without URL-encoding, and a WebSocket listener.
//!
//! The backend follows `CLAWLINK_RELAY_BACKEND` (`sled`, the default, or `nats`): with `nats`,
//! [`RelayServer::start`] also starts a 3-node JetStream cluster ([`NatsCluster`]) of its own,
//! and the relay keeps everything there (R3). [`RelayServer::start_on`] starts one more relay
//! node on a cluster that several nodes share.

use crate::nats::{relay_backend_is_nats, NatsCluster};
use crate::{bin, bound_addr, wait_for, Proc, ANY_PORT};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// A running relay server. Killed on drop.
pub struct RelayServer {
    /// Temp dir holding data and logs.
    pub dir: tempfile::TempDir,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The process, while running.
    pub proc: Option<Proc>,
    args: Vec<String>,
    starts: u32,
    /// The JetStream cluster this relay keeps its data in (None: sled in `data_dir`).
    pub nats: Option<Arc<std::sync::Mutex<NatsCluster>>>,
    nats_args: Vec<String>,
}

/// A deployment prefix unique within this test process.
pub fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl RelayServer {
    /// Starts a relay with extra command-line `args` and waits for `/health`, on the backend
    /// `CLAWLINK_RELAY_BACKEND` names (a fresh 3-node cluster for `nats`).
    pub fn start(args: &[&str]) -> RelayServer {
        if relay_backend_is_nats() {
            let cluster = Arc::new(std::sync::Mutex::new(NatsCluster::start(3)));
            return RelayServer::start_on(&cluster, &unique_prefix(), args);
        }
        RelayServer::launch(args, None, Vec::new())
    }

    /// Starts a relay on sled whatever `CLAWLINK_RELAY_BACKEND` says.
    pub fn start_sled(args: &[&str]) -> RelayServer {
        RelayServer::launch(args, None, Vec::new())
    }

    /// Starts a relay node keeping its data in `cluster` under deployment `prefix`; nodes with
    /// the same prefix serve the same ids.
    pub fn start_on(
        cluster: &Arc<std::sync::Mutex<NatsCluster>>,
        prefix: &str,
        args: &[&str],
    ) -> RelayServer {
        let urls = cluster.lock().unwrap_or_else(|e| e.into_inner()).urls();
        let nats_args = vec![
            "--nats".to_string(),
            urls,
            "--nats-prefix".to_string(),
            prefix.to_string(),
        ];
        RelayServer::launch(args, Some(Arc::clone(cluster)), nats_args)
    }

    /// Starts a relay whose `--nats` is `urls` (e.g. through a proxy).
    pub fn start_with_nats_urls(
        cluster: &Arc<std::sync::Mutex<NatsCluster>>,
        urls: &str,
        prefix: &str,
        args: &[&str],
    ) -> RelayServer {
        let nats_args = vec![
            "--nats".to_string(),
            urls.to_string(),
            "--nats-prefix".to_string(),
            prefix.to_string(),
        ];
        RelayServer::launch(args, Some(Arc::clone(cluster)), nats_args)
    }

    fn launch(
        args: &[&str],
        nats: Option<Arc<std::sync::Mutex<NatsCluster>>>,
        nats_args: Vec<String>,
    ) -> RelayServer {
        let dir = tempfile::Builder::new()
            .prefix("clawlink-relay-test-")
            .tempdir()
            .expect("tempdir");
        let data_dir = dir.path().join("data");
        let args = args.iter().map(|s| s.to_string()).collect();
        let mut r = RelayServer {
            data_dir,
            addr: ANY_PORT.parse().expect("loopback"),
            dir,
            proc: None,
            args,
            starts: 0,
            nats,
            nats_args,
        };
        r.spawn();
        r
    }

    /// (Re)starts the process on the same data dir and address; waits for `/health`.
    pub fn spawn(&mut self) {
        self.starts += 1;
        let mut cmd = Command::new(bin("clawlinkd"));
        cmd.arg("relay-server")
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--addr-file")
            .arg(self.dir.path().join("addr"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.nats_args)
            .args(&self.args);
        cmd.env(
            "RUST_LOG",
            std::env::var("CLAWLINK_TEST_LOG").unwrap_or_else(|_| "debug".into()),
        )
        .env_remove("NOTIFY_SOCKET");
        let log = self.dir.path().join(format!("relay.{}.log", self.starts));
        let addr_file = self.dir.path().join("addr");
        let _ = std::fs::remove_file(&addr_file);
        self.proc = Some(Proc::spawn(cmd, log));
        // The first start picks a port; restarts keep it.
        self.addr = bound_addr(&addr_file, &mut self.proc, "relay-server");
        let url = format!("{}/health", self.base());
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        wait_for("relay /health", Duration::from_secs(20), || {
            if let Some(p) = self.proc.as_mut() {
                assert!(p.running(), "relay exited during start:\n{}", p.log_text());
            }
            http.get(&url)
                .send()
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        });
    }

    /// `http://ADDR`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        crate::kill9_slot(&mut self.proc);
    }

    /// SIGTERM; whether it exited 0 within 15 s.
    pub fn stop(&mut self) -> bool {
        crate::stop_slot(&mut self.proc)
    }

    /// Whether the process is still alive.
    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Proc::running)
    }

    /// Everything it logged, across restarts.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("relay.{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A seed-shaped client of this relay.
    pub fn client(&self, id: &str, name: &str, secret: &str) -> SeedClient {
        SeedClient::new(&self.base(), id, name, secret)
    }
}

/// A client making the same calls as the seed's `relay-client.js`.
pub struct SeedClient {
    /// Relay base URL.
    pub relay: String,
    /// Our id.
    pub id: String,
    /// Our name.
    pub name: String,
    /// Our secret.
    pub secret: String,
    http: reqwest::blocking::Client,
}

/// Status and parsed JSON body (Null if the body is not JSON).
pub type Reply = (u16, Value);

fn reply(r: reqwest::Result<reqwest::blocking::Response>) -> Reply {
    answer(r.expect("HTTP request to the relay"))
}

/// The status and JSON body (`null` when not JSON) of an answer.
fn answer(r: reqwest::blocking::Response) -> Reply {
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

impl SeedClient {
    /// A client with these settings (`relay-config.json`).
    pub fn new(relay: &str, id: &str, name: &str, secret: &str) -> SeedClient {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        SeedClient {
            relay: relay.into(),
            id: id.into(),
            name: name.into(),
            secret: secret.into(),
            http,
        }
    }

    /// `POST /register {id, name, secret}`.
    pub fn register(&self) -> Reply {
        self.post(
            "/register",
            &json!({ "id": self.id, "name": self.name, "secret": self.secret }),
        )
    }

    /// Registers, sending again while the relay answers 503 ("not acknowledged, send it
    /// again", e.g. a JetStream hiccup), and panics unless it ends registered: 201, or a 409
    /// after a 503 (that earlier write landing), which a poll with the secret then proves.
    pub fn register_until_acknowledged(&self) {
        let mut unacked = false;
        let (status, body) = wait_for(
            &format!("{} registered", self.id),
            Duration::from_secs(60),
            || match self.register() {
                (503, _) => {
                    unacked = true;
                    None
                }
                other => Some(other),
            },
        );
        if status == 409 && unacked {
            assert_eq!(self.poll().0, 200, "register {}: {body}", self.id);
        } else {
            assert_eq!(status, 201, "register {}: {body}", self.id);
        }
    }

    /// `POST /send {from, to, message, secret}`.
    pub fn send(&self, to: &str, message: &str) -> Reply {
        self.post(
            "/send",
            &json!({ "from": self.id, "to": to, "message": message, "secret": self.secret }),
        )
    }

    /// Like [`SeedClient::send`], but `None` when the relay cannot be reached.
    pub fn try_send(&self, to: &str, message: &str) -> Option<Reply> {
        let body = json!({ "from": self.id, "to": to, "message": message, "secret": self.secret });
        let r = self
            .http
            .post(format!("{}/send", self.relay))
            .json(&body)
            .send()
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().ok()?))
    }

    /// `GET /poll?id=ID&secret=SECRET`, values concatenated raw as the seed does.
    pub fn poll(&self) -> Reply {
        reply(
            self.http
                .get(format!(
                    "{}/poll?id={}&secret={}",
                    self.relay, self.id, self.secret
                ))
                .send(),
        )
    }

    /// `GET /poll?...&ack=1` (extension: returns without deleting).
    pub fn peek(&self) -> Reply {
        reply(
            self.http
                .get(format!(
                    "{}/poll?id={}&secret={}&ack=1",
                    self.relay, self.id, self.secret
                ))
                .send(),
        )
    }

    /// `GET /users`.
    pub fn users(&self) -> Value {
        reply(self.http.get(format!("{}/users", self.relay)).send()).1
    }

    /// POSTs a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Reply {
        reply(
            self.http
                .post(format!("{}{}", self.relay, path))
                .json(body)
                .send(),
        )
    }

    /// POSTs `body` as JSON; `None` when no answer came (refused connection, timeout).
    pub fn try_post(&self, path: &str, body: &Value) -> Option<Reply> {
        self.http
            .post(format!("{}{}", self.relay, path))
            .json(body)
            .send()
            .ok()
            .map(answer)
    }

    /// POSTs raw bytes as `application/json`.
    pub fn post_raw(&self, path: &str, body: impl Into<Vec<u8>>) -> Reply {
        reply(
            self.http
                .post(format!("{}{}", self.relay, path))
                .header("content-type", "application/json")
                .body(body.into())
                .send(),
        )
    }

    /// Polls until the relay returns nothing more; all messages, in order.
    pub fn poll_all(&self) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let (status, body) = self.poll();
            assert_eq!(status, 200, "poll failed: {body}");
            let batch = body["messages"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    /// `ws://HOST/ws?id=ID&secret=SECRET` (+ `extra`), built raw and then normalised by a WHATWG
    /// URL parser, as the `ws` package does (it percent-encodes only what a URL cannot hold).
    pub fn ws_url(&self, extra: &str) -> String {
        let raw = format!(
            "{}/ws?id={}&secret={}{}",
            self.relay.replacen("http", "ws", 1),
            self.id,
            self.secret,
            extra
        );
        reqwest::Url::parse(&raw).expect("ws url").to_string()
    }

    /// Opens the listener WebSocket (`extra` is appended to the query, e.g. `&ack=1`).
    pub fn listen(&self, extra: &str) -> Result<WsClient, u16> {
        WsClient::connect(&self.ws_url(extra))
    }
}

enum Cmd {
    Text(String),
    Abort,
}

/// A WebSocket client on its own thread; frames arrive as JSON values.
pub struct WsClient {
    frames: mpsc::Receiver<Value>,
    cmds: tokio::sync::mpsc::UnboundedSender<Cmd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WsClient {
    /// Connects; `Err(status)` if the handshake was refused (0 if no HTTP status).
    pub fn connect(url: &str) -> Result<WsClient, u16> {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::{Error, Message};
        let (ready_tx, ready_rx) = mpsc::channel();
        let (frame_tx, frames) = mpsc::channel();
        let (cmds, mut cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        let url = url.to_string();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut ws = match tokio_tungstenite::connect_async(url.as_str()).await {
                    Ok((ws, _)) => ws,
                    Err(e) => {
                        let status = if let Error::Http(resp) = &e {
                            resp.status().as_u16()
                        } else {
                            0
                        };
                        let _ = ready_tx.send(Err(status));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    tokio::select! {
                        msg = ws.next() => match msg {
                            Some(Ok(Message::Text(t))) => {
                                if let Ok(v) = serde_json::from_str(&t) {
                                    let _ = frame_tx.send(v);
                                }
                            }
                            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                            Some(Ok(_)) => {}
                        },
                        cmd = cmd_rx.recv() => match cmd {
                            Some(Cmd::Text(t)) => {
                                if ws.send(Message::Text(t.into())).await.is_err() {
                                    return;
                                }
                            }
                            // Drop the TCP connection without a close handshake.
                            Some(Cmd::Abort) | None => return,
                        },
                    }
                }
            });
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(WsClient {
                frames,
                cmds,
                thread: Some(thread),
            }),
            Ok(Err(status)) => Err(status),
            Err(_) => Err(0),
        }
    }

    /// The next frame, waiting up to `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Value> {
        self.frames.recv_timeout(timeout).ok()
    }

    /// The next `"type":"message"` frame (other frames skipped), or panics after 10 s.
    pub fn next_message(&self) -> Value {
        loop {
            let frame = self
                .next(Duration::from_secs(10))
                .expect("a pushed message within 10 s");
            if frame["type"] == "message" {
                return frame;
            }
        }
    }

    /// Sends `{"type":"ack","id":ID}`.
    pub fn ack(&self, id: &str) {
        let _ = self
            .cmds
            .send(Cmd::Text(json!({ "type": "ack", "id": id }).to_string()));
    }

    /// Drops the connection abruptly and waits for the thread.
    pub fn abort(mut self) {
        let _ = self.cmds.send(Cmd::Abort);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Abort);
    }
}

/// Registers `id` on `relay` from daemon `d` (`clawlink relay register`) and waits until its
/// connection is up.
pub fn register_daemon(d: &crate::Daemon, relay: &RelayServer, id: &str) -> Value {
    let secret = format!("{id}-secret-{}", std::process::id());
    let r = d.ctl_json(&[
        "relay",
        "register",
        "--relay",
        &relay.base(),
        "--id",
        id,
        "--secret",
        &secret,
    ]);
    let target = format!("{}/{id}", relay.base());
    wait_for("relay connection", Duration::from_secs(30), || {
        d.ctl_json(&["status"])["connections"]
            .as_array()?
            .iter()
            .any(|c| c["kind"] == "relay" && c["target"] == target && c["state"] == "connected")
            .then_some(())
    });
    r
}
