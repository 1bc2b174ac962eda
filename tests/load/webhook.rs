//! Webhook ingest, idle memory and `clawlink status` wall time.

use crate::stats::{ms, proc_usage, summarize, table};
use clawlink_tests::{bin, Daemon};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Messages to send in total.
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    /// Concurrent posters.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 200)]
    pub size: usize,
}

pub fn run(a: Args) {
    let d = Daemon::start();
    let pid = d.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let before = proc_usage(pid);
    let (lat, elapsed) = post_all(&d, &a);
    let after = proc_usage(pid);
    report(&d, &a, lat, elapsed, before, after);
}

/// POSTs `a.messages` messages with `a.concurrency` posters; every latency and the wall time.
pub fn post_all(d: &Daemon, a: &Args) -> (Vec<Duration>, Duration) {
    post_to(&format!("http://{}/message", d.listen), a)
}

/// [`post_all`] to any `POST /message` URL (the seed-style listener too).
pub fn post_to(url: &str, a: &Args) -> (Vec<Duration>, Duration) {
    let url = url.to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let text: String = "x".repeat(a.size);
    let (messages, concurrency) = (a.messages, a.concurrency);
    rt.block_on(async move {
        let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().expect("client");
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..concurrency {
            let (client, url, next, text) = (client.clone(), url.clone(), next.clone(), text.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= messages {
                        break;
                    }
                    let body = serde_json::json!({"from": format!("rust{w}"), "message": text, "id": i.to_string()});
                    let t = Instant::now();
                    let r = client.post(&url).json(&body).send().await.expect("post");
                    assert!(r.status().is_success(), "status {}", r.status());
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        (all, start.elapsed())
    })
}

fn report(
    d: &Daemon,
    a: &Args,
    lat: Vec<Duration>,
    elapsed: Duration,
    before: crate::stats::ProcUsage,
    after: crate::stats::ProcUsage,
) {
    let s = summarize(lat);
    let total = d.ctl_json(&["status"])["inbox"]["total"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        total as usize, a.messages,
        "every acknowledged message must be in the inbox"
    );
    table(
        &format!(
            "webhook → durable inbox: {} messages of {} B, {} concurrent posters",
            a.messages, a.size, a.concurrency
        ),
        &[
            (
                "throughput (acknowledged msg/s)",
                format!("{:.0}", s.count as f64 / elapsed.as_secs_f64()),
            ),
            ("latency p50", ms(s.p50)),
            ("latency p99", ms(s.p99)),
            ("latency max", ms(s.max)),
            (
                "clawlinkd CPU (s)",
                format!("{:.2}", after.cpu_secs - before.cpu_secs),
            ),
            (
                "clawlinkd peak RSS",
                format!("{:.1} MiB", after.peak_rss_kib as f64 / 1024.0),
            ),
            ("messages in inbox afterwards", total.to_string()),
        ],
    );
}

pub fn idle() {
    let d = Daemon::start();
    let pid = d.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    d.ctl_json(&["status"]);
    std::thread::sleep(Duration::from_secs(2));
    let u = proc_usage(pid);
    table(
        "idle clawlinkd (started, one status call, 2 s idle)",
        &[
            ("RSS", format!("{:.1} MiB", u.rss_kib as f64 / 1024.0)),
            (
                "peak RSS",
                format!("{:.1} MiB", u.peak_rss_kib as f64 / 1024.0),
            ),
            ("CPU since start (s)", format!("{:.2}", u.cpu_secs)),
        ],
    );
}

pub fn status(runs: usize) {
    let d = Daemon::start();
    let pid = d.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let before = proc_usage(pid);
    let ctl = bin("clawlink");
    let mut lat = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let out = std::process::Command::new(&ctl)
            .arg("--socket")
            .arg(&d.socket)
            .arg("status")
            .output()
            .expect("run clawlink");
        lat.push(t.elapsed());
        assert!(out.status.success());
    }
    let s = summarize(lat);
    let after = proc_usage(pid);
    table(
        &format!("`clawlink status` wall time, process start to exit ({runs} runs)"),
        &[
            ("p50", ms(s.p50)),
            ("p99", ms(s.p99)),
            ("max", ms(s.max)),
            (
                "clawlinkd CPU during the runs (s)",
                format!("{:.2}", after.cpu_secs - before.cpu_secs),
            ),
            (
                "clawlinkd peak RSS",
                format!("{:.1} MiB", after.peak_rss_kib as f64 / 1024.0),
            ),
        ],
    );
}
