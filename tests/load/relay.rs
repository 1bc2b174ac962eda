//! Relay end to end: sender → `clawlinkd relay-server` → B's always-connected `clawlinkd` →
//! B's durable inbox. Also the relay server's memory per idle WebSocket client.
//!
//! - throughput: the tool posts `POST /send` as user `alice` straight to the relay
//!   (`--concurrency` posters, as the seed client would) and counts until B's inbox holds
//!   every message (`status` → inbox total). The clock stops when the last one is on B's disk.
//! - latency: one send per millisecond (1,000 msg/s) for `--latency-messages`; each message's
//!   time from the start of its `/send` to its arrival on `clawlink listen --json` of B (which
//!   publishes only after the durable insert).
//! - idle: `--idle-clients` ack-mode WebSockets of one id held open; relay RSS before/after.

use crate::stats::{ms, proc_usage, summarize, table};
use clawlink_tests::relay::RelayServer;
use clawlink_tests::{bin, wait_for, Daemon};
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Messages for the throughput run.
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
    /// Concurrent posters for the throughput run.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Messages sent at 1,000 msg/s for the latency run.
    #[arg(long, default_value_t = 10_000)]
    latency_messages: usize,
    /// Idle WebSocket clients held on the relay.
    #[arg(long, default_value_t = 10_000)]
    idle_clients: usize,
}

#[allow(unsafe_code)] // setrlimit: raise our soft fd limit (inherited by the relay) for 10,000 sockets
pub fn raise_nofile() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

fn inbox_total(d: &Daemon) -> usize {
    d.ctl_json(&["status"])["inbox"]["total"]
        .as_u64()
        .unwrap_or(0) as usize
}

/// `received_at` (RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`) minus `start`.
fn received_since(at: &str, start: std::time::SystemTime) -> Option<Duration> {
    let secs_of_day = |t: &str| -> Option<f64> {
        let hms = t.get(11..)?.trim_end_matches('Z');
        let mut p = hms.split(':');
        let (h, m, s): (f64, f64, f64) = (
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
        );
        Some(h * 3600.0 + m * 60.0 + s)
    };
    let since_epoch = start
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let start_of_day = since_epoch % 86400.0;
    let d = secs_of_day(at)? - start_of_day;
    (d > 0.0).then(|| Duration::from_secs_f64(d))
}

pub fn run(a: Args) {
    raise_nofile();
    let relay = RelayServer::start(&[
        "--id-rate",
        "0",
        "--queue-cap",
        "10000000",
        "--max-ws-per-id",
        "100000",
        // 64 posters, B and 10,000 idle sockets, all from loopback.
        "--max-connections",
        "15000",
        "--max-connections-per-ip",
        "15000",
    ]);
    let relay_pid = relay.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let b = Daemon::start();
    let b_pid = b.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    b.ctl_json(&[
        "relay",
        "register",
        "--relay",
        &relay.base(),
        "--id",
        "bob",
        "--secret",
        "bob-load-secret",
    ]);
    let alice = relay.client("alice", "alice", "alice-load-secret");
    assert_eq!(alice.register().0, 201);
    wait_for("B connected", Duration::from_secs(20), || {
        let s = b.ctl_json(&["status"]);
        s["connections"]
            .as_array()?
            .iter()
            .any(|c| c["kind"] == "relay" && c["state"] == "connected")
            .then_some(())
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .expect("client");
    let url = format!("{}/send", relay.base());
    let text = "x".repeat(a.size);

    // Throughput.
    let before = (proc_usage(relay_pid), proc_usage(b_pid));
    let start = Instant::now();
    let start_wall = std::time::SystemTime::now();
    rt.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..a.concurrency {
            let (http, url, next, text) = (http.clone(), url.clone(), next.clone(), text.clone());
            let n = a.messages;
            tasks.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let body = serde_json::json!({"from": "alice", "to": "bob", "message": text, "secret": "alice-load-secret"});
                    let r = http.post(&url).json(&body).send().await.expect("send");
                    assert!(r.status().is_success(), "status {}", r.status());
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
    let sent = start.elapsed();
    // Poll gently (a `clawlink` process per check costs CPU on a small machine); the end time
    // is the `received_at` B gave the last message, not the time we noticed.
    let deadline = Instant::now() + Duration::from_secs(600);
    while inbox_total(&b) < a.messages {
        assert!(Instant::now() < deadline, "timed out waiting for B's inbox");
        std::thread::sleep(Duration::from_millis(250));
    }
    let last = b.ctl_json(&["inbox", "--limit", "1"]);
    let last_at = last[0]["received_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let done = received_since(&last_at, start_wall).unwrap_or_else(|| start.elapsed());
    let after = (proc_usage(relay_pid), proc_usage(b_pid));
    let total = inbox_total(&b);
    assert_eq!(total, a.messages, "exactly every message once");

    // Latency at 1,000 msg/s.
    let mut listen = std::process::Command::new(bin("clawlink"))
        .arg("--socket")
        .arg(&b.socket)
        .args(["listen", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("clawlink listen");
    let stdout = listen.stdout.take().expect("stdout");
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; a.latency_messages]));
    let n = a.latency_messages;
    let reader = {
        let sent_at = sent_at.clone();
        std::thread::spawn(move || {
            let mut lat = Vec::with_capacity(n);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let now = Instant::now();
                let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                let Some(i) = v["message"]
                    .as_str()
                    .and_then(|m| m.strip_prefix("lat "))
                    .and_then(|m| m.split(' ').next())
                    .and_then(|m| m.parse::<usize>().ok())
                else {
                    continue;
                };
                if let Some(Some(t)) = sent_at.lock().ok().and_then(|s| s.get(i).copied()) {
                    lat.push(now - t);
                }
                if lat.len() >= n {
                    break;
                }
            }
            lat
        })
    };
    std::thread::sleep(Duration::from_millis(300)); // let `listen` subscribe
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut tasks = Vec::new();
        for i in 0..n {
            tick.tick().await;
            let (http, url, sent_at) = (http.clone(), url.clone(), sent_at.clone());
            let body = serde_json::json!({"from": "alice", "to": "bob", "message": format!("lat {i} {}", "y".repeat(a.size.saturating_sub(12))), "secret": "alice-load-secret"});
            tasks.push(tokio::spawn(async move {
                if let Ok(mut s) = sent_at.lock() { s[i] = Some(Instant::now()); }
                let r = http.post(&url).json(&body).send().await.expect("send");
                assert!(r.status().is_success());
            }));
        }
        for t in tasks { t.await.expect("task"); }
    });
    let lat = reader.join().expect("reader");
    let listen_usage = proc_usage(listen.id());
    let _ = listen.kill();
    let _ = listen.wait();
    let got = lat.len();
    let s = summarize(lat);

    // Idle WebSocket clients.
    let idle_before = proc_usage(relay_pid);
    let ws_url = alice.ws_url("&ack=1");
    let idle = rt.block_on(async {
        let mut socks = Vec::with_capacity(a.idle_clients);
        for _ in 0..a.idle_clients {
            let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
                .await
                .expect("ws connect");
            socks.push(ws);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let u = proc_usage(relay_pid);
        drop(socks);
        u
    });
    let relay_total = proc_usage(relay_pid);
    let b_total = proc_usage(b_pid);
    let per_conn =
        (idle.rss_kib.saturating_sub(idle_before.rss_kib)) as f64 * 1024.0 / a.idle_clients as f64;
    table(
        &format!(
            "relay: sender → relay-server → B's durable inbox ({} B messages)",
            a.size
        ),
        &[
            ("throughput: messages", a.messages.to_string()),
            ("throughput: posters", a.concurrency.to_string()),
            (
                "sends acknowledged (msg/s)",
                format!("{:.0}", a.messages as f64 / sent.as_secs_f64()),
            ),
            (
                "end to end into B's inbox (msg/s)",
                format!("{:.0}", a.messages as f64 / done.as_secs_f64()),
            ),
            (
                "relay CPU (s)",
                format!("{:.2}", after.0.cpu_secs - before.0.cpu_secs),
            ),
            (
                "B clawlinkd CPU (s)",
                format!("{:.2}", after.1.cpu_secs - before.1.cpu_secs),
            ),
            (
                "B peak RSS",
                format!("{:.1} MiB", after.1.peak_rss_kib as f64 / 1024.0),
            ),
            (
                "relay peak RSS (before the idle clients)",
                format!("{:.1} MiB", after.0.peak_rss_kib as f64 / 1024.0),
            ),
            ("latency @1000 msg/s: received", format!("{got}/{n}")),
            ("latency p50 (send → B's listen)", ms(s.p50)),
            ("latency p99", ms(s.p99)),
            ("latency max", ms(s.max)),
            ("idle WS clients", a.idle_clients.to_string()),
            (
                "relay RSS before/with clients",
                format!(
                    "{:.1} / {:.1} MiB",
                    idle_before.rss_kib as f64 / 1024.0,
                    idle.rss_kib as f64 / 1024.0
                ),
            ),
            (
                "relay RSS per idle client",
                if per_conn.is_finite() {
                    format!("{:.1} KiB", per_conn / 1024.0)
                } else {
                    "no idle clients".to_string()
                },
            ),
            (
                "whole run: relay CPU (s) / peak RSS",
                format!(
                    "{:.2} / {:.1} MiB",
                    relay_total.cpu_secs,
                    relay_total.peak_rss_kib as f64 / 1024.0
                ),
            ),
            (
                "whole run: B CPU (s) / peak RSS",
                format!(
                    "{:.2} / {:.1} MiB",
                    b_total.cpu_secs,
                    b_total.peak_rss_kib as f64 / 1024.0
                ),
            ),
            (
                "`clawlink listen` CPU (s) / peak RSS",
                format!(
                    "{:.2} / {:.1} MiB",
                    listen_usage.cpu_secs,
                    listen_usage.peak_rss_kib as f64 / 1024.0
                ),
            ),
        ],
    );
}
