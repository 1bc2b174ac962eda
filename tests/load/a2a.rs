//! A2A figures: durable `SendMessage` ingest, and what `clawlink ask` adds over the peer's
//! own answer time.

use crate::stats::{ms, proc_usage, summarize, table};
use clawlink_tests::a2a::{peer_add, send_params, SdkServer};
use clawlink_tests::Daemon;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct IngestArgs {
    /// Messages to send in total.
    #[arg(long, default_value_t = 5_000)]
    messages: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

/// `SendMessage` (returnImmediately) → durable inbox + task, each answered after fsync.
pub fn ingest(a: IngestArgs) {
    let d = Daemon::new();
    d.write_config("[a2a]\nrate_limit_per_minute = 0\n");
    let mut d = d;
    d.spawn();
    let token = peer_add(&d, "load");
    let pid = d.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let before = proc_usage(pid);
    let url = format!("http://{}/a2a/v1", d.listen);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (lat, elapsed) = rt.block_on(async move {
        let client = reqwest::Client::new();
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..a.concurrency {
            let (client, url, next, token) = (client.clone(), url.clone(), next.clone(), token.clone());
            workers.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= a.messages {
                        break;
                    }
                    let body = serde_json::json!({"jsonrpc": "2.0", "id": i, "method": "SendMessage",
                        "params": send_params(&format!("load message {i} {}", "x".repeat(160)), &format!("load-{i}"))});
                    let t = Instant::now();
                    let r = client.post(&url).bearer_auth(&token).json(&body).send().await.expect("post");
                    let v: serde_json::Value = r.json().await.expect("json");
                    assert_eq!(v["result"]["task"]["status"]["state"], "TASK_STATE_SUBMITTED", "{v}");
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.expect("worker"));
        }
        (all, start.elapsed())
    });
    let after = proc_usage(pid);
    let s = summarize(lat);
    let total = d.ctl_json(&["status"])["inbox"]["total"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        total as usize, a.messages,
        "every accepted message is in the inbox"
    );
    table(
        &format!(
            "A2A SendMessage → durable inbox and task: {} messages, {} concurrent callers",
            a.messages, a.concurrency
        ),
        &[
            (
                "throughput (accepted msg/s)",
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

#[derive(clap::Args)]
pub struct AskArgs {
    /// Questions asked, one after another.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// How long the peer's agent takes to answer, ms.
    #[arg(long, default_value_t = 1000)]
    answer_ms: u64,
}

/// `clawlink ask` to the A2A SDK server whose agent answers after `answer_ms`: wall time of
/// the command minus the peer's answer time.
pub fn ask(a: AskArgs) {
    let d = Daemon::start();
    let peer = SdkServer::start("-", a.answer_ms, "answer");
    d.ctl_json(&["contacts", "add", "--name", "peer", "--a2a", &peer.endpoint]);
    let mut lat = Vec::with_capacity(a.runs);
    for i in 0..a.runs {
        let t = Instant::now();
        let v = d.ctl_json(&["ask", "--to", "peer", &format!("question {i}")]);
        lat.push(t.elapsed());
        assert_eq!(v["state"], "completed", "{v}");
    }
    let answer = Duration::from_millis(a.answer_ms);
    let s = summarize(lat.iter().map(|l| l.saturating_sub(answer)).collect());
    table(
        &format!(
            "`clawlink ask` overhead over a peer that answers in {} ms ({} runs)",
            a.answer_ms, a.runs
        ),
        &[
            ("overhead p50", ms(s.p50)),
            ("overhead p99", ms(s.p99)),
            ("overhead max", ms(s.max)),
        ],
    );
}
