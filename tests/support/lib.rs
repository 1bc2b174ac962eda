//! Fixtures for the end-to-end tests: the real `clawlinkd` and `clawlink` binaries, temp dirs,
//! and readiness that is polled, never slept for.
//!
//! Ports: every `clawlinkd` role is started with `--listen 127.0.0.1:0 --addr-file FILE` and
//! reports the port the kernel gave it ([`bound_addr`]), so no test races another process
//! for a port. A restart reuses the port the process had (its clients keep their URLs).
//!
//! The binaries are taken from the same target directory as the test executable
//! (`cargo build --workspace` builds them; the README's test command does that first).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod a2a;
pub mod a2a_model;
pub mod daemon;
pub mod friends;
pub mod gateway;
pub mod model;
pub mod nats;
pub mod nexus;
pub mod proxy;
pub mod relay;

pub use daemon::Daemon;

/// Path of a workspace binary (`clawlinkd` or `clawlink`) next to the test executable.
pub fn bin(name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(format!("CLAWLINK_TEST_BIN_{}", name.to_uppercase())) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("."));
    // A test runs from target/PROFILE/deps/, a bench tool from target/PROFILE/: look in both.
    let here = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let candidates = [
        here.join(name),
        here.parent().map(|p| p.join(name)).unwrap_or_default(),
    ];
    let path = candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| candidates[1].clone());
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace` first (the README test command does)",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago. Only for servers that cannot bind port 0 and
/// report what they bound (the Node gateway, NATS cluster ports); their fixtures retry on a
/// bind conflict.
pub fn recently_free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// [`recently_free_port`] on loopback, for external servers of the tests (the A2A SDK server,
/// the gateway's hooks) that cannot bind port 0 and report it.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], recently_free_port()))
}

/// What a fixture passes as `--listen` before the first start: any free loopback port.
pub const ANY_PORT: &str = "127.0.0.1:0";

/// Waits until `proc` has written its bound address to `file` (`--addr-file`), and returns it.
/// Panics with the process's log if it exits first.
pub fn bound_addr(file: &Path, proc: &mut Option<Proc>, what: &str) -> SocketAddr {
    wait_for(
        &format!("{what}'s bound address"),
        Duration::from_secs(20),
        || {
            if let Some(p) = proc.as_mut() {
                if !p.running() {
                    panic!("{what} exited during start:\n{}", p.log_text());
                }
            }
            std::fs::read_to_string(file).ok()?.trim().parse().ok()
        },
    )
}

/// Polls `f` every 20 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    wait_explained(what, timeout, f, String::new)
}

/// [`wait_for`], and on a timeout the panic also holds what `explain` says (logs, status), so a
/// failure seen only in CI can be read from its output.
pub fn wait_explained<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                explain()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A child process killed (SIGKILL) when dropped, with stderr captured to a file.
pub struct Proc {
    /// The child.
    pub child: Child,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout discarded and stderr to `log`.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).expect("create log file");
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Proc { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `timeout` for exit; returns the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// SIGKILLs the process held in `slot`, if any.
pub fn kill9_slot(slot: &mut Option<Proc>) {
    if let Some(mut p) = slot.take() {
        p.kill9();
    }
}

/// SIGTERMs the process held in `slot` and waits up to 15 s; whether it exited 0 (true if none).
pub fn stop_slot(slot: &mut Option<Proc>) -> bool {
    match slot.take() {
        Some(mut p) => p
            .terminate(Duration::from_secs(15))
            .is_some_and(|s| s.success()),
        None => true,
    }
}

/// Runs a command to completion and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// Polls `GET http://addr/health` until it answers 200.
pub fn wait_http_health(addr: SocketAddr, timeout: Duration) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    wait_for(&format!("http://{addr}/health"), timeout, || {
        client
            .get(format!("http://{addr}/health"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    });
}

/// Every file under `dir` (recursively), with its bytes: for checks that a server's data
/// directory holds no plaintext.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
    out
}
