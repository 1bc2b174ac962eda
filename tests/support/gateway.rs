//! The real OpenClaw gateway fixture: the pinned `openclaw` package under Node 24, installed by
//! `scripts/gateway-env.sh`, started on a free loopback port with a random token and an isolated
//! home, state and config.
//!
//! A gateway takes 10-15 s and about 1 GB to start, so a test binary shares one
//! ([`Gateway::shared`]) and only a test that stops or restarts it starts its own
//! ([`Gateway::start`]). Readiness is polled: the port opens before connects are admitted
//! (early connects get `UNAVAILABLE` and close 1013), so ready means a successful `connect`
//! plus a `health` answer, made by this fixture's own minimal client ([`call`]), not by the
//! code under test.
//!
//! The gateway runs under a small shell watchdog in its own process group: the watchdog
//! forwards SIGTERM (then SIGKILL after 30 s) and also stops the gateway when the test binary
//! disappears, since a `static` shared instance is never dropped.
//!
//! Its port: the gateway cannot be told to pick one and report it (it takes `--port N`), so
//! this fixture, unlike the clawlinkd ones, picks a port that was free a moment ago and, if
//! the gateway then exits with `EADDRINUSE` because another process took it first, starts
//! again on another ([`PORT_TRIES`] times).

use crate::recently_free_port;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Where the pinned Node and openclaw live.
#[derive(Debug, Clone)]
pub struct GatewayEnv {
    /// The Node 24 binary.
    pub node: PathBuf,
    /// `openclaw.mjs`.
    pub openclaw: PathBuf,
}

/// Runs `scripts/gateway-env.sh` once per test binary (it is instant when already installed).
pub fn gateway_env() -> &'static GatewayEnv {
    static ENV: OnceLock<GatewayEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gateway-env.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/gateway-env.sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "scripts/gateway-env.sh failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let get = |k: &str| -> PathBuf {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("no {k}= in:\n{text}"));
            PathBuf::from(line)
        };
        GatewayEnv {
            node: get("NODE"),
            openclaw: get("OPENCLAW"),
        }
    })
}

/// A running real gateway. Stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Gateway {
    /// Temp dir with home, state, config and log.
    pub dir: tempfile::TempDir,
    /// The port, on loopback (and on `lan_ip` when set).
    pub port: u16,
    /// The shared token.
    pub token: String,
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    /// A non-loopback address of this machine the gateway also listens on, when asked for:
    /// connections through it are "remote" to the gateway (device pairing applies).
    pub lan_ip: Option<String>,
    child: Option<Child>,
    channels: bool,
}

/// Starts on a fresh port after `EADDRINUSE`, at most this many times.
const PORT_TRIES: usize = 5;

impl Gateway {
    /// The gateway shared by the tests of this binary, listening on loopback and on this
    /// machine's LAN address (for the device pairing test). Started on first use.
    pub fn shared() -> &'static Gateway {
        static SHARED: OnceLock<Gateway> = OnceLock::new();
        SHARED.get_or_init(|| Gateway::start_with(lan_ipv4()))
    }

    /// A dedicated loopback-only gateway (for tests that stop or restart it).
    pub fn start() -> Gateway {
        Gateway::start_with(None)
    }

    /// A dedicated loopback-only gateway whose config also holds `extra`, merged key by key
    /// at the top level (e.g. a model provider and a `channels` block; with `channels`, the
    /// gateway starts its channels).
    pub fn start_configured(extra: Value) -> Gateway {
        Gateway::build(None, extra)
    }

    fn start_with(lan_ip: Option<String>) -> Gateway {
        Gateway::build(lan_ip, json!({}))
    }

    fn build(lan_ip: Option<String>, extra: Value) -> Gateway {
        let dir = tempfile::Builder::new()
            .prefix("clawlink-gw-")
            .tempdir()
            .expect("tempdir");
        let token = format!("gw-test-{:016x}{:016x}", rand_u64(), rand_u64());
        let mut g = Gateway {
            dir,
            port: 0,
            token,
            url: String::new(),
            lan_ip,
            child: None,
            channels: extra.get("channels").is_some(),
        };
        for _ in 0..PORT_TRIES {
            g.port = recently_free_port();
            g.url = format!("ws://127.0.0.1:{}", g.port);
            g.write_config(&extra);
            match g.try_spawn() {
                Ok(()) => return g,
                Err(log)
                    if log.contains("EADDRINUSE") || log.contains("address already in use") =>
                {
                    g.child = None;
                }
                // On an overloaded machine OpenClaw's 5 s state-lease heartbeat can expire
                // during its startup migrations (exit status 78): start again from a clean state.
                Err(log) if log.contains("did not complete cleanly") => {
                    eprintln!("gateway startup migrations timed out under load; starting again");
                    g.stop();
                    let _ = std::fs::remove_dir_all(g.state().join("state"));
                }
                Err(log) => panic!("the gateway exited while starting:\n{log}"),
            }
        }
        panic!(
            "the gateway found its port taken {PORT_TRIES} times:\n{}",
            g.log()
        );
    }

    /// Process id of the watchdog shell the gateway runs under, while running. It leads the
    /// process group of everything the gateway starts.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `ws://LAN_IP:PORT`, when the gateway listens there.
    pub fn lan_url(&self) -> Option<String> {
        self.lan_ip
            .as_ref()
            .map(|ip| format!("ws://{ip}:{}", self.port))
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn write_config(&self, extra: &Value) {
        for d in ["home", "tmp", "state/logs"] {
            std::fs::create_dir_all(self.dir.path().join(d)).expect("mkdir");
        }
        let mut gw = json!({"mode":"local","bind":"loopback","port":self.port,"auth":{"mode":"token","token":self.token}});
        if let Some(ip) = &self.lan_ip {
            gw["bind"] = json!("custom");
            gw["customBindHost"] = json!(ip);
        }
        let mut config = json!({"gateway":gw,"logging":{"file":self.state().join("logs/openclaw.log")},
            "update":{"checkOnStart":false},"models":{"catalogRefresh":{"enabled":false}}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            match (config.get_mut(k), v) {
                (Some(Value::Object(have)), Value::Object(add)) => {
                    have.extend(add.clone());
                }
                _ => config[k] = v.clone(),
            }
        }
        std::fs::write(self.state().join("config.json"), config.to_string())
            .expect("write gateway config");
    }

    /// The isolated environment for `openclaw` commands.
    fn command(&self, args: &[&str]) -> Command {
        let env = gateway_env();
        let mut cmd = Command::new(&env.node);
        cmd.arg(&env.openclaw).args(args);
        cmd.env("HOME", self.dir.path().join("home"))
            .env("TMPDIR", self.dir.path().join("tmp"))
            .env("OPENCLAW_STATE_DIR", self.state())
            .env("OPENCLAW_CONFIG_PATH", self.state().join("config.json"));
        if !self.channels {
            cmd.env("OPENCLAW_SKIP_CHANNELS", "1");
        }
        for k in [
            "DISABLE_BONJOUR",
            "NO_AUTO_UPDATE",
            "SKIP_BROWSER_CONTROL_SERVER",
            "SKIP_CANVAS_HOST",
            "SKIP_GMAIL_WATCHER",
        ] {
            cmd.env(format!("OPENCLAW_{k}"), "1");
        }
        cmd
    }

    /// Runs the `openclaw` CLI against this gateway (e.g. `devices approve ID`).
    pub fn openclaw(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run openclaw")
    }

    /// The gateway's own log file (`logging.file`), where agent runs and hook handling are
    /// recorded.
    pub fn file_log(&self) -> String {
        std::fs::read_to_string(self.state().join("logs/openclaw.log")).unwrap_or_default()
    }

    /// The gateway's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Starts the process (same port, token and state) and waits until it is ready.
    pub fn spawn(&mut self) {
        if let Err(log) = self.try_spawn() {
            panic!("the gateway exited while starting:\n{log}");
        }
    }

    /// [`Gateway::spawn`], answering the log instead of panicking when the gateway exits.
    fn try_spawn(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "gateway already running");
        let port = self.port.to_string();
        let mut args = vec![
            "gateway",
            "run",
            "--port",
            port.as_str(),
            "--auth",
            "token",
            "--token",
            self.token.as_str(),
        ];
        if self.lan_ip.is_none() {
            args.extend(["--bind", "loopback"]);
        }
        let gw = self.command(&args);
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("watchdog")
            .arg(std::process::id().to_string())
            .arg(self.dir.path());
        cmd.arg(gw.get_program()).args(gw.get_args());
        for (k, v) in gw.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("gateway.log"))
            .expect("log");
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        self.child = Some(cmd.spawn().expect("spawn the gateway"));
        // Starting channels (and their plugins) takes a loaded machine much longer.
        self.ready_or_exit(Duration::from_secs(if self.channels { 360 } else { 120 }))
    }

    /// Polls connect + `health` until it works; panics with the log if the gateway dies or is too slow.
    pub fn wait_ready(&mut self, timeout: Duration) {
        if let Err(log) = self.ready_or_exit(timeout) {
            panic!("the gateway exited while starting:\n{log}");
        }
    }

    /// Polls connect + `health` until it works (`Err(log)` if the gateway exits first; panics
    /// if it is too slow).
    fn ready_or_exit(&mut self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(v) = block_on(call(
                &self.url,
                &self.token,
                "health",
                json!({}),
                Duration::from_secs(5),
            )) {
                if v["ok"] == json!(true) {
                    return Ok(());
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    return Err(format!("exit {st}:\n{}", self.log()));
                }
            }
            assert!(
                start.elapsed() < timeout,
                "gateway not ready after {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM, then SIGKILL to its whole process group after 30 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        let _ = child.wait();
    }

    /// Stops and starts the gateway on the same port, waiting until it is ready again.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// One request on a fresh connection of this fixture's own client.
    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        block_on(call(
            &self.url,
            &self.token,
            method,
            params,
            Duration::from_secs(15),
        ))
    }

    /// The texts queued for the main session (`status` → `queuedSystemEvents`), read through
    /// the fixture's own connection: how tests see that a message arrived.
    pub fn queued(&self) -> Vec<String> {
        let status = self
            .rpc("status", serde_json::json!({}))
            .unwrap_or_else(|e| panic!("status: {e}"));
        status["queuedSystemEvents"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `hooks` block that lets clawlink use `/hooks/agent` with its own `hook:clawlink:` session
/// keys and `/hooks/wake`, with `token` as the hook token.
pub fn hooks_config(token: &str) -> Value {
    json!({"hooks": {"enabled": true, "token": token, "path": "/hooks",
        "allowRequestSessionKey": true, "allowedSessionKeyPrefixes": ["hook:clawlink:"],
        "defaultSessionKey": "hook:clawlink:default"}})
}

/// `watchdog PID DIR CMD...`: runs CMD; on SIGTERM stops it (SIGKILL to the group after 30 s);
/// when PID (the test binary) is gone, stops it and removes DIR (a static fixture's temp dir is
/// never dropped).
const WATCHDOG: &str = r#"
parent="$1"; dir="$2"; shift 2
"$@" &
child=$!
halt() {
  kill -TERM "$child" 2>/dev/null
  for _ in $(seq 300); do kill -0 "$child" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- -$$ 2>/dev/null
}
trap 'halt; exit 0' TERM INT HUP
while kill -0 "$child" 2>/dev/null; do
  if ! kill -0 "$parent" 2>/dev/null; then halt; rm -rf -- "$dir"; exit 0; fi
  sleep 0.5 & wait $!
done
wait "$child"
"#;

/// Runs a future on a fresh runtime in its own thread (callable from sync or async tests).
pub fn block_on<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .join()
        .expect("fixture thread")
    })
}

/// A minimal independent gateway client: connect (token only, loopback, `gateway-client`/`backend`
/// keeps its scopes), one request, close. Returns the payload or the error frame as text.
pub async fn call(
    url: &str,
    token: &str,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, String> {
    let work = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| e.to_string())?;
        let mut sent_req = false;
        while let Some(msg) = ws.next().await {
            let Message::Text(t) = msg.map_err(|e| e.to_string())? else {
                continue;
            };
            let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
            if v["event"] == "connect.challenge" {
                let connect = json!({"type":"req","id":"c","method":"connect","params":{"minProtocol":3,"maxProtocol":4,
                    "client":{"id":"gateway-client","version":"test","platform":"linux","mode":"backend"},
                    "role":"operator","scopes":["operator.admin"],"auth":{"token":token}}});
                ws.send(Message::text(connect.to_string()))
                    .await
                    .map_err(|e| e.to_string())?;
            } else if v["type"] == "res" && v["ok"] != json!(true) {
                return Err(v["error"].to_string());
            } else if v["type"] == "res" && v["id"] == "c" && !sent_req {
                sent_req = true;
                let req = json!({"type":"req","id":"r","method":method,"params":params});
                ws.send(Message::text(req.to_string()))
                    .await
                    .map_err(|e| e.to_string())?;
            } else if v["type"] == "res" && v["id"] == "r" {
                let _ = ws.close(None).await;
                return Ok(v["payload"].clone());
            }
        }
        Err("connection closed".to_string())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// This machine's first non-loopback IPv4 address (the source address of its default route,
/// else the first of `hostname -I`).
pub fn lan_ipv4() -> Option<String> {
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").ok();
    let routed = udp.and_then(|s| {
        s.connect("198.51.100.1:9")
            .or_else(|_| s.connect("8.8.8.8:53"))
            .ok()
            .and(s.local_addr().ok())
    });
    if let Some(addr) = routed.filter(|a| !a.ip().is_loopback() && !a.ip().is_unspecified()) {
        return Some(addr.ip().to_string());
    }
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id()));
    h.finish()
}
