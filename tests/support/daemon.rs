//! The agent daemon fixture: `clawlinkd` in a temp dir with its own socket and webhook port.

use crate::{bin, bound_addr, run, wait_for, Proc, ANY_PORT};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

/// A running `clawlinkd` with everything in a temp dir. Killed on drop.
pub struct Daemon {
    /// Temp dir holding data, socket, config and log.
    pub dir: tempfile::TempDir,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Control socket.
    pub socket: PathBuf,
    /// Config file (empty until `write_config`).
    pub config: PathBuf,
    /// Webhook address.
    pub listen: SocketAddr,
    /// Value passed as `--listen` (defaults to `listen`).
    pub listen_arg: String,
    /// Extra environment for the daemon (applied after the defaults, e.g. `RUST_LOG=trace`).
    pub env: Vec<(String, String)>,
    /// Another `clawlinkd` to run instead of this workspace's (another build, for the
    /// cross-version check); `None`: [`bin`]`("clawlinkd")`.
    pub daemon_bin: Option<PathBuf>,
    /// The process, while running.
    pub proc: Option<Proc>,
    starts: u32,
}

impl Daemon {
    /// A daemon set up in a new temp dir but not started; write `config` first if needed.
    pub fn new() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("clawlink-test-")
            .tempdir()
            .expect("tempdir");
        let data_dir = dir.path().join("data");
        let socket = dir.path().join("run/clawlink.sock");
        let config = dir.path().join("config.toml");
        // `--config` must name an existing file; an empty one means every default.
        std::fs::write(&config, "").expect("write an empty config");
        Daemon {
            data_dir,
            socket,
            config,
            listen: ANY_PORT.parse().expect("loopback"),
            listen_arg: ANY_PORT.to_string(),
            env: Vec::new(),
            daemon_bin: None,
            dir,
            proc: None,
            starts: 0,
        }
    }

    /// Starts a daemon with default settings and waits until `status` answers.
    pub fn start() -> Daemon {
        let mut d = Daemon::new();
        d.spawn();
        d
    }

    /// Writes the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write config");
    }

    /// The command line used to start this daemon.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(self.daemon_bin.clone().unwrap_or_else(|| bin("clawlinkd")));
        cmd.arg("--data-dir").arg(&self.data_dir);
        cmd.arg("--socket").arg(&self.socket);
        cmd.arg("--config").arg(&self.config);
        cmd.arg("--listen").arg(&self.listen_arg);
        cmd.arg("--addr-file").arg(self.addr_file());
        cmd.env_remove("CLAWLINK_SOCKET")
            .env_remove("CLAWLINK_DATA_DIR")
            .env_remove("CLAWLINK_CONFIG");
        // Tests log at debug; the load tool asks for info (CLAWLINK_TEST_LOG) to measure what users run.
        cmd.env(
            "RUST_LOG",
            std::env::var("CLAWLINK_TEST_LOG").unwrap_or_else(|_| "debug".into()),
        );
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// (Re)starts the process and waits for readiness.
    pub fn spawn(&mut self) {
        self.starts += 1;
        let log = self
            .dir
            .path()
            .join(format!("clawlinkd.{}.log", self.starts));
        let _ = std::fs::remove_file(self.addr_file());
        self.proc = Some(Proc::spawn(self.command(), log));
        if self.listen_arg != "off" {
            self.listen = bound_addr(&self.addr_file(), &mut self.proc, "clawlinkd");
            // A restart keeps the port (senders keep the URL they were given).
            if self.listen_arg.ends_with(":0") && self.listen.ip().is_loopback() {
                self.listen_arg = self.listen.to_string();
            }
        }
        self.wait_ready();
    }

    /// Where the daemon writes its webhook address once bound.
    fn addr_file(&self) -> PathBuf {
        self.dir.path().join("webhook.addr")
    }

    /// Polls `clawlink status` until it succeeds (panics with the log if the daemon died).
    pub fn wait_ready(&mut self) {
        let socket = self.socket.clone();
        wait_for("clawlinkd readiness", Duration::from_secs(20), || {
            if let Some(p) = self.proc.as_mut() {
                if !p.running() {
                    panic!("clawlinkd exited during start:\n{}", p.log_text());
                }
            }
            let out = Command::new(bin("clawlink"))
                .arg("--socket")
                .arg(&socket)
                .arg("status")
                .arg("--json")
                .output()
                .ok()?;
            out.status.success().then_some(())
        });
    }

    /// Runs `clawlink --socket SOCK ARGS...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin("clawlink"));
        cmd.arg("--socket").arg(&self.socket).args(args);
        run(&mut cmd)
    }

    /// Runs `clawlink ... --json` and parses stdout; panics with stderr on failure.
    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let out = self.ctl(&all);
        assert!(
            out.status.success(),
            "clawlink {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "clawlink {args:?} printed non-JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Everything the daemon logged, across restarts.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("clawlinkd.{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        crate::kill9_slot(&mut self.proc);
    }

    /// SIGTERM and wait; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        crate::stop_slot(&mut self.proc)
    }

    /// POSTs JSON to the webhook.
    pub fn post_message(&self, body: &serde_json::Value) -> reqwest::blocking::Response {
        reqwest::blocking::Client::new()
            .post(format!("http://{}/message", self.listen))
            .json(body)
            .send()
            .expect("POST /message")
    }
}

impl Default for Daemon {
    fn default() -> Self {
        Self::new()
    }
}
