//! Nexus client figures, end to end through `clawlinkd nexus-server` into a daemon's durable
//! inbox:
//!
//! 1. throughput: concurrent senders post into one session; the daemon (joined, long-polling)
//!    stores everything; messages/s = N / (first send → last message in the inbox);
//! 2. send-to-inbox latency (p50/p99) of single messages, with long-poll and with short poll;
//! 3. CPU cost of keeping `--sessions` idle sessions polled, over `--idle-secs`, long-poll and
//!    short poll (`[nexus] poll_interval_secs = 3`).

use crate::stats::{ms, proc_usage, summarize, table};
use clawlink::proto::{Event, ListenParams, Request};
use clawlink_tests::nexus::NexusServer;
use clawlink_tests::{wait_for, Daemon};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Messages for the throughput run.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Single messages timed for latency, per mode.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Idle sessions for the CPU figure.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Seconds the idle CPU is measured over.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
}

fn daemon(srv: &NexusServer, long_poll: bool) -> Daemon {
    let mut d = Daemon::new();
    d.write_config(&format!(
        "[nexus]\nurl = \"{}\"\npoll_interval_secs = 3\nlong_poll = {long_poll}\n",
        srv.url()
    ));
    d.spawn();
    d
}

fn create(d: &Daemon, agent: &str) -> String {
    let out = d.ctl(&["nexus", "create", "--creator-agent-id", agent]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("create JSON");
    v["sessionId"].as_str().expect("sessionId").to_string()
}

fn rows_in(d: &Daemon, state: &str) -> usize {
    let st = d.ctl_json(&["status"]);
    let rows = st["connections"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .filter(|r| r["kind"] == "nexus" && r["state"] == state)
        .count()
}

fn inbox_total(d: &Daemon) -> u64 {
    d.ctl_json(&["status"])["inbox"]["total"]
        .as_u64()
        .unwrap_or(0)
}

pub fn run(a: Args) {
    let srv = NexusServer::start(&[
        "--max-messages-per-session",
        "10000000",
        // 64 senders, the daemon and 100 idle sessions, all from loopback.
        "--max-connections-per-ip",
        "4096",
    ]);
    throughput(&srv, &a);
    for long in [true, false] {
        latency(&srv, &a, long);
    }
    for long in [true, false] {
        idle(&srv, &a, long);
    }
    let u = proc_usage(srv.proc.as_ref().map(|p| p.pid()).unwrap_or(0));
    table(
        "nexus-server over all of the above",
        &[
            ("CPU (s)", format!("{:.2}", u.cpu_secs)),
            (
                "peak RSS",
                format!("{:.1} MiB", u.peak_rss_kib as f64 / 1024.0),
            ),
        ],
    );
}

fn throughput(srv: &NexusServer, a: &Args) {
    let d = daemon(srv, true);
    let sid = create(&d, "alice");
    let key = srv.join(&sid, "bob");
    wait_for("long-poll", Duration::from_secs(10), || {
        (rows_in(&d, "long-poll") == 1).then_some(())
    });
    let base = inbox_total(&d);
    let pid = d.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let srv_pid = srv.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let before = proc_usage(pid);
    let srv_before = proc_usage(srv_pid);
    let url = format!("{}/v1/sessions/{sid}/messages", srv.url());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let start = Instant::now();
    let sent = rt.block_on(async {
        let client = reqwest::Client::new();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..a.concurrency {
            let (client, url, next, key) = (client.clone(), url.clone(), next.clone(), key.clone());
            let n = a.messages;
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = client
                        .post(&url)
                        .header("X-Agent-Id", "bob")
                        .header("X-Session-Key", &key)
                        .json(&json!({ "text": format!("t{i}") }))
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(r.status().as_u16(), 201);
                }
            }));
        }
        for t in tasks {
            t.await.expect("sender");
        }
        start.elapsed()
    });
    let want = base + a.messages as u64;
    wait_for("inbox to catch up", Duration::from_secs(300), || {
        (inbox_total(&d) >= want).then_some(())
    });
    let all_in = start.elapsed();
    let after = proc_usage(pid);
    let srv_after = proc_usage(srv_pid);
    table(
        &format!(
            "Nexus → daemon inbox: {} messages, {} concurrent senders, one session, long-poll",
            a.messages, a.concurrency
        ),
        &[
            (
                "end-to-end msg/s (first send → last stored)",
                format!("{:.0}", a.messages as f64 / all_in.as_secs_f64()),
            ),
            (
                "server-acknowledged sends/s",
                format!("{:.0}", a.messages as f64 / sent.as_secs_f64()),
            ),
            (
                "lag of the inbox behind the last send",
                ms(all_in.saturating_sub(sent)),
            ),
            (
                "clawlinkd CPU (s)",
                format!("{:.2}", after.cpu_secs - before.cpu_secs),
            ),
            (
                "clawlinkd peak RSS",
                format!("{:.1} MiB", after.peak_rss_kib as f64 / 1024.0),
            ),
            (
                "nexus-server CPU (s)",
                format!("{:.2}", srv_after.cpu_secs - srv_before.cpu_secs),
            ),
            (
                "nexus-server peak RSS",
                format!("{:.1} MiB", srv_after.peak_rss_kib as f64 / 1024.0),
            ),
            ("messages in inbox", inbox_total(&d).to_string()),
        ],
    );
}

fn latency(srv: &NexusServer, a: &Args, long: bool) {
    let d = daemon(srv, long);
    let sid = create(&d, "alice");
    let key = srv.join(&sid, "bob");
    let state = if long { "long-poll" } else { "polling" };
    wait_for("poller", Duration::from_secs(10), || {
        (rows_in(&d, state) == 1).then_some(())
    });
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let sink = arrived.clone();
    let socket = d.socket.clone();
    std::thread::spawn(move || {
        let c = clawlink::client::Client::connect(&socket).expect("connect");
        let req = Request::Listen(ListenParams {
            source: Some("nexus".into()),
        });
        let _ = c.subscribe(&req, |e| {
            if let Event::Message { message } = e {
                if let Ok(mut m) = sink.lock() {
                    m.insert(message.message, Instant::now());
                }
            }
            true
        });
    });
    std::thread::sleep(Duration::from_millis(300));
    let pid = d.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let before = proc_usage(pid);
    let samples = if long { a.samples } else { a.samples.min(20) };
    let mut lat = Vec::new();
    for i in 0..samples {
        let text = format!("lat{i}");
        let t = Instant::now();
        let ans = srv.post_message(&sid, "bob", Some(&key), &json!({ "text": text }));
        assert_eq!(ans.0, 201);
        let at = wait_for("arrival", Duration::from_secs(30), || {
            arrived.lock().ok().and_then(|m| m.get(&text).copied())
        });
        lat.push(at.duration_since(t));
        // Each wait above ends just after a poll; start the next send at a spread of phases
        // of the 3 s short-poll period (a fixed pause would always hit the same phase).
        let pause = if long { 20 } else { (i as u64 * 733) % 3000 };
        std::thread::sleep(Duration::from_millis(pause));
    }
    let s = summarize(lat);
    let after = proc_usage(pid);
    table(
        &format!(
            "send → stored in the inbox ({} samples, {})",
            s.count,
            if long {
                "long-poll"
            } else {
                "short poll every 3 s"
            }
        ),
        &[
            ("p50", ms(s.p50)),
            ("p99", ms(s.p99)),
            ("max", ms(s.max)),
            (
                "clawlinkd CPU (s)",
                format!("{:.2}", after.cpu_secs - before.cpu_secs),
            ),
            (
                "clawlinkd peak RSS",
                format!("{:.1} MiB", after.peak_rss_kib as f64 / 1024.0),
            ),
        ],
    );
}

fn idle(srv: &NexusServer, a: &Args, long: bool) {
    let d = daemon(srv, long);
    for i in 0..a.sessions {
        create(&d, &format!("idle{i}"));
    }
    let state = if long { "long-poll" } else { "polling" };
    wait_for("every session polled", Duration::from_secs(60), || {
        (rows_in(&d, state) == a.sessions).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let pid = d.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let before = proc_usage(pid);
    std::thread::sleep(Duration::from_secs(a.idle_secs));
    let after = proc_usage(pid);
    let cpu = after.cpu_secs - before.cpu_secs;
    table(
        &format!(
            "{} idle joined sessions, {} s, {}",
            a.sessions,
            a.idle_secs,
            if long {
                "long-poll"
            } else {
                "short poll every 3 s"
            }
        ),
        &[
            ("clawlinkd CPU (s)", format!("{cpu:.2}")),
            (
                "% of one core",
                format!("{:.2} %", 100.0 * cpu / a.idle_secs as f64),
            ),
            ("RSS", format!("{:.1} MiB", after.rss_kib as f64 / 1024.0)),
            (
                "peak RSS",
                format!("{:.1} MiB", after.peak_rss_kib as f64 / 1024.0),
            ),
        ],
    );
}
