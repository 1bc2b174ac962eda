//! `clawlink-load hostile`: the attacks of tests/hostile.rs at full size, with the figures the
//! tests do not assert: how many connections the attacker held, how long legitimate requests
//! took meanwhile, and each server's RSS before, during and after.
//!
//! 1. **Agent, slowloris**: `--connections` TCP connections to the webhook that never send a
//!    byte, held for `--hold-secs`; meanwhile `clawlink status` and a legitimate `POST /message`
//!    are timed `--samples` times each.
//! 2. **Relay, brute force behind a proxy**: `--brute-threads` connections send wrong secrets
//!    for `--hold-secs` from `--brute-addresses` client addresses (`X-Forwarded-For`, the relay
//!    runs with `--trust-forwarded-for`), while a legitimate client registers and polls;
//!    statuses are counted. A 503 (secret checks queue full) is retried after its Retry-After,
//!    and the retry counts in the legitimate latency.

use crate::stats::{ms, proc_usage, summarize, table};
use clawlink_tests::relay::RelayServer;
use clawlink_tests::{bin, wait_for, Daemon};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Half-open connections held against the webhook.
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    /// How long each attack lasts, seconds.
    #[arg(long, default_value_t = 8)]
    hold_secs: u64,
    /// Legitimate requests timed during each attack.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Concurrent wrong-secret connections against the relay.
    #[arg(long, default_value_t = 300)]
    brute_threads: usize,
    /// Client addresses the brute-force connections come from (through the proxy).
    #[arg(long, default_value_t = 1)]
    brute_addresses: usize,
}

fn rss_mib(pid: u32) -> String {
    format!("{:.1} MiB", proc_usage(pid).rss_kib as f64 / 1024.0)
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

pub fn run(a: Args) {
    slowloris(&a);
    brute_force(&a);
}

fn slowloris(a: &Args) {
    let d = Daemon::start();
    let pid = d.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let before = rss_mib(pid);
    let held: Vec<TcpStream> = (0..a.connections)
        .filter_map(|_| TcpStream::connect(d.listen).ok())
        .collect();
    let fds = |pid| std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    wait_for(
        "the daemon to accept the flood",
        Duration::from_secs(30),
        || (fds(pid) >= held.len()).then_some(()),
    );
    let (mut status, mut post) = (Vec::new(), Vec::new());
    let c = http();
    for i in 0..a.samples {
        let t = Instant::now();
        let out = clawlink_tests::run(
            Command::new(bin("clawlink"))
                .arg("--socket")
                .arg(&d.socket)
                .args(["status", "--json"]),
        );
        assert!(out.status.success(), "status failed during the flood");
        status.push(t.elapsed());
        let t = Instant::now();
        let r = c
            .post(format!("http://{}/message", d.listen))
            .json(&serde_json::json!({"from": "friend", "message": format!("m{i}")}))
            .send()
            .expect("POST during the flood");
        assert_eq!(r.status(), 200);
        post.push(t.elapsed());
    }
    let during = rss_mib(pid);
    let held_n = held.len();
    drop(held);
    wait_for(
        "the held connections to close",
        Duration::from_secs(30),
        || (fds(pid) < 100).then_some(()),
    );
    let after = rss_mib(pid);
    let (s, p) = (summarize(status), summarize(post));
    table(
        "hostile: agent webhook, half-open connections (slowloris)",
        &[
            ("connections held", held_n.to_string()),
            (
                "clawlink status p50 / max",
                format!("{} / {}", ms(s.p50), ms(s.max)),
            ),
            (
                "POST /message p50 / max",
                format!("{} / {}", ms(p.p50), ms(p.max)),
            ),
            (
                "daemon RSS before / during / after",
                format!("{before} / {during} / {after}"),
            ),
        ],
    );
}

fn brute_force(a: &Args) {
    let relay = RelayServer::start(&["--trust-forwarded-for"]);
    let pid = relay.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let victim = relay.client("victim", "Victim", "victim-secret-1");
    assert_eq!(victim.register().0, 201);
    let before = rss_mib(pid);
    let stop = AtomicBool::new(false);
    let counts: [AtomicUsize; 4] = Default::default(); // 401, 429, 503, other
    let peak_kib = AtomicUsize::new(0);
    let (mut register, mut poll) = (Vec::new(), Vec::new());
    std::thread::scope(|s| {
        for t in 0..a.brute_threads {
            let (stop, counts, base) = (&stop, &counts, relay.base());
            let addr = t % a.brute_addresses.max(1);
            s.spawn(move || {
                let c = http();
                let ip = format!("10.{}.{}.1", addr / 250, addr % 250);
                while !stop.load(Ordering::Relaxed) {
                    let r = c
                        .get(format!("{base}/poll?id=victim&secret=guess{t}"))
                        .header("X-Forwarded-For", &ip)
                        .send();
                    let i = match r.map(|r| r.status().as_u16()) {
                        Ok(401) => 0,
                        Ok(429) => 1,
                        Ok(503) => 2,
                        _ => 3,
                    };
                    counts[i].fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                peak_kib.fetch_max(proc_usage(pid).rss_kib as usize, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let c = http();
        let start = Instant::now();
        let mut i = 0;
        while start.elapsed() < Duration::from_secs(a.hold_secs) || i < a.samples {
            let ip = format!("192.0.2.{}", i % 250 + 1);
            let t = Instant::now();
            loop {
                let r = c
                    .post(format!("{}/register", relay.base()))
                    .header("X-Forwarded-For", &ip)
                    .json(&serde_json::json!({"id": format!("legit{i}"), "secret": "legit-secret"}))
                    .send()
                    .expect("register during the attack");
                match r.status().as_u16() {
                    201 => break,
                    503 => std::thread::sleep(Duration::from_secs(1)),
                    other => panic!("a legitimate registration got {other}"),
                }
            }
            register.push(t.elapsed());
            let t = Instant::now();
            let r = c
                .get(format!(
                    "{}/poll?id=legit{i}&secret=legit-secret",
                    relay.base()
                ))
                .header("X-Forwarded-For", &ip)
                .send()
                .expect("poll during the attack");
            assert_eq!(r.status(), 200);
            poll.push(t.elapsed());
            i += 1;
        }
        stop.store(true, Ordering::Relaxed);
    });
    let during = format!(
        "{:.1} MiB",
        peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    );
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_mib(pid);
    let n = |i: usize| counts[i].load(Ordering::Relaxed).to_string();
    let (r, p) = (summarize(register), summarize(poll));
    table(
        "hostile: relay, wrong-secret brute force through a trusted local proxy",
        &[
            (
                "attacking connections / client addresses",
                format!("{} / {}", a.brute_threads, a.brute_addresses),
            ),
            (
                "answers 401 / 429 / 503 / other",
                format!("{} / {} / {} / {}", n(0), n(1), n(2), n(3)),
            ),
            (
                "legit register p50 / max",
                format!("{} / {}", ms(r.p50), ms(r.max)),
            ),
            (
                "legit poll p50 / max",
                format!("{} / {}", ms(p.p50), ms(p.max)),
            ),
            (
                "relay RSS before / peak during / 2 s after",
                format!("{before} / {during} / {after}"),
            ),
        ],
    );
}
