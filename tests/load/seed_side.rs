//! Durable webhook ingest side by side with the seed's in-memory listener, in one run: one
//! Node client (`webhook_node.mjs`) drives both, then the Rust client of `clawlink-load
//! webhook` drives both. Two clients, because on two shared cores the client's own cost
//! shapes the figure: the single-threaded Node client costs about as much CPU as either server.

use crate::stats::{proc_usage, table};
use clawlink_tests::Daemon;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("load/webhook_node.mjs")
}

/// One Node client run; its JSON summary.
fn post(node: &Path, url: &str, a: &crate::webhook::Args) -> serde_json::Value {
    let out = Command::new(node)
        .arg(script())
        .args(["post", url])
        .args([a.messages, a.concurrency, a.size].map(|n| n.to_string()))
        .stderr(Stdio::inherit())
        .output()
        .expect("run the Node client");
    assert!(out.status.success(), "the Node client failed");
    serde_json::from_slice(&out.stdout).expect("the Node client's summary")
}

/// Kills the listener when the run ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(a: crate::webhook::Args) {
    let node = &clawlink_tests::gateway::gateway_env().node;
    let mut seed = Killed(
        Command::new(node)
            .arg(script())
            .arg("listen")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the seed-style listener"),
    );
    let mut line = String::new();
    BufReader::new(seed.0.stdout.take().expect("listener stdout"))
        .read_line(&mut line)
        .expect("read the listener's port");
    let port = line
        .trim()
        .strip_prefix("PORT=")
        .expect("PORT= line")
        .to_string();
    let seed_pid = seed.0.id();
    let d = Daemon::start();
    let pid = d.proc.as_ref().map(|p| p.pid()).unwrap_or(0);

    let s0 = proc_usage(seed_pid);
    let seed_run = post(node, &format!("http://127.0.0.1:{port}/message"), &a);
    let s1 = proc_usage(seed_pid);
    let d0 = proc_usage(pid);
    let ours = post(node, &format!("http://{}/message", d.listen), &a);
    let d1 = proc_usage(pid);
    let s2 = proc_usage(seed_pid);
    let (seed_lat, seed_secs) =
        crate::webhook::post_to(&format!("http://127.0.0.1:{port}/message"), &a);
    let s3 = proc_usage(seed_pid);
    let d2 = proc_usage(pid);
    let (our_lat, our_secs) = crate::webhook::post_all(&d, &a);
    let d3 = proc_usage(pid);
    let total = d.ctl_json(&["status"])["inbox"]["total"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        total as usize,
        2 * a.messages,
        "every acknowledged message must be in the inbox"
    );
    // The Rust client's latencies in the Node client's summary shape.
    let summary = |lat: Vec<std::time::Duration>, secs: std::time::Duration| {
        let s = crate::stats::summarize(lat);
        serde_json::json!({
            "count": s.count,
            "secs": secs.as_secs_f64(),
            "p50_ms": s.p50.as_secs_f64() * 1e3,
            "p99_ms": s.p99.as_secs_f64() * 1e3,
            "max_ms": s.max.as_secs_f64() * 1e3,
            "failed": 0,
        })
    };
    let (seed_rust, ours_rust) = (summary(seed_lat, seed_secs), summary(our_lat, our_secs));

    let n = a.messages as f64;
    let row = |r: &serde_json::Value, cpu: f64, rss: u64| {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        format!(
            "{:.0} msg/s; p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms; {:.2} CPU-s ({:.0} µs per message), peak RSS {:.1} MiB; {} failed",
            f("count") / f("secs").max(1e-9),
            f("p50_ms"),
            f("p99_ms"),
            f("max_ms"),
            cpu,
            cpu / n * 1e6,
            rss as f64 / 1024.0,
            r["failed"].as_u64().unwrap_or(0)
        )
    };
    table(
        &format!(
            "POST /message, {} messages of {} B, {} in flight, each client driving both servers",
            a.messages, a.size, a.concurrency
        ),
        &[
            (
                "Node client: seed-style listener (Node, in memory, no fsync)",
                row(&seed_run, s1.cpu_secs - s0.cpu_secs, s1.peak_rss_kib),
            ),
            (
                "Node client: clawlinkd webhook (sled, acknowledged after fsync)",
                row(&ours, d1.cpu_secs - d0.cpu_secs, d1.peak_rss_kib),
            ),
            (
                "Rust client: seed-style listener",
                row(&seed_rust, s3.cpu_secs - s2.cpu_secs, s3.peak_rss_kib),
            ),
            (
                "Rust client: clawlinkd webhook",
                row(&ours_rust, d3.cpu_secs - d2.cpu_secs, d3.peak_rss_kib),
            ),
            (
                "messages in clawlinkd's inbox afterwards",
                total.to_string(),
            ),
        ],
    );
}
