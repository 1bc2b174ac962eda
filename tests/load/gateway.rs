//! Sending into a REAL OpenClaw gateway: what the warm connection buys.
//!
//! - `clawlink send` wall time (process start to exit) through a running daemon whose
//!   connection to the gateway is already warm;
//! - a cold send: a fresh WebSocket, the signed handshake, one `system-event`, close
//!   ([`Pool::request_once`]), as a one-shot client without a daemon would do it;
//! - sends/s through one warm connection ([`Pool::send_message`]), one at a time and with
//!   several in flight.
//!
//! The cold figure is in-process (no process start, device key already loaded), so it is a
//! lower bound for a one-shot client.
//!
//! ```sh
//! cargo build --release --workspace
//! CLAWLINK_TEST_BIN_CLAWLINKD=$PWD/target/release/clawlinkd \
//! CLAWLINK_TEST_BIN_CLAWLINK=$PWD/target/release/clawlink \
//!   ./target/release/clawlink-load gateway --sends 200
//! ```

use crate::stats::{group_usage, ms, proc_usage, summarize, table};
use clawlink::Secret;
use clawlink_tests::gateway::Gateway;
use clawlink_tests::{bin, Daemon};
use clawlinkd::gateway::{Delivery, DeliveryMethod, Pool, PoolOptions};
use serde_json::json;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// `clawlink send` runs, and cold sends.
    #[arg(long, default_value_t = 200)]
    sends: usize,
    /// Messages for the warm-connection throughput figures.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Requests in flight on the one warm connection for the concurrent figure.
    #[arg(long, default_value_t = 16)]
    inflight: usize,
}

pub fn run(a: Args) {
    let gw = Gateway::start();
    let d = Daemon::start();
    let pid = d.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let add = d.ctl(&[
        "contacts", "add", "--name", "gw", "--url", &gw.url, "--token", &gw.token,
    ]);
    assert!(add.status.success(), "contacts add failed");
    // Warm the daemon's connection.
    assert_eq!(
        d.ctl_json(&["send", "--to", "gw", "--message", "warm-up"])["state"],
        "delivered"
    );

    let ctl = bin("clawlink");
    let before = proc_usage(pid);
    let mut warm = Vec::with_capacity(a.sends);
    for i in 0..a.sends {
        let t = Instant::now();
        let out = std::process::Command::new(&ctl)
            .arg("--socket")
            .arg(&d.socket)
            .args(["send", "--to", "gw", "--from", "load", "--message"])
            .arg(format!("warm send {i}"))
            .output()
            .expect("run clawlink");
        warm.push(t.elapsed());
        assert!(out.status.success(), "send {i} was not delivered");
    }
    let after = proc_usage(pid);

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let token = Secret::new(gw.token.clone());
    let url = gw.url.clone();
    let (cold, serial, concurrent, connections) = rt.block_on(async {
        let pool = Pool::new(PoolOptions::new(&data)).expect("pool");
        let mut cold = Vec::with_capacity(a.sends);
        for i in 0..a.sends {
            let params =
                json!({"text": format!("cold send {i}"), "idempotencyKey": format!("cold-{i}")});
            let t = Instant::now();
            pool.request_once(&url, &token, "system-event", params)
                .await
                .expect("cold send");
            cold.push(t.elapsed());
        }
        let delivery = |tag: &str, i: usize| Delivery {
            method: DeliveryMethod::SystemEvent,
            session: None,
            text: format!("{tag} {i}"),
            idempotency_key: format!("{tag}-{i}"),
        };
        pool.send_message(&url, &token, &delivery("prime", 0))
            .await
            .expect("prime");
        let t = Instant::now();
        for i in 0..a.messages {
            pool.send_message(&url, &token, &delivery("serial", i))
                .await
                .expect("serial send");
        }
        let serial = t.elapsed();
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..a.inflight {
            let (pool, url, token, next) = (pool.clone(), url.clone(), token.clone(), next.clone());
            let n = a.messages;
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let d = Delivery {
                        method: DeliveryMethod::SystemEvent,
                        session: None,
                        text: format!("concurrent {i}"),
                        idempotency_key: format!("concurrent-{i}"),
                    };
                    pool.send_message(&url, &token, &d)
                        .await
                        .expect("concurrent send");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let elapsed = t.elapsed();
        (cold, serial, elapsed, pool.rows().len())
    });
    let gw_usage = group_usage(gw.pid().unwrap_or(0));
    let d_usage = proc_usage(pid);
    let (w, c) = (summarize(warm), summarize(cold));
    let rate = |n: usize, d: std::time::Duration| format!("{:.0}", n as f64 / d.as_secs_f64());
    table(
        &format!(
            "send into a real OpenClaw gateway (system-event, loopback): {} sends, {} messages for throughput",
            a.sends, a.messages
        ),
        &[
            ("`clawlink send` wall time, warm daemon connection, p50", ms(w.p50)),
            ("`clawlink send` wall time, warm daemon connection, p99", ms(w.p99)),
            ("cold connect+handshake+send+close, p50", ms(c.p50)),
            ("cold connect+handshake+send+close, p99", ms(c.p99)),
            (
                "sends/s, one warm connection, one at a time",
                rate(a.messages, serial),
            ),
            (
                "sends/s, one warm connection, in flight",
                format!("{} ({} in flight)", rate(a.messages, concurrent), a.inflight),
            ),
            (
                "clawlinkd CPU during the CLI sends (s)",
                format!("{:.2}", after.cpu_secs - before.cpu_secs),
            ),
            (
                "clawlinkd peak RSS",
                format!("{:.1} MiB", after.peak_rss_kib as f64 / 1024.0),
            ),
            (
                "whole run: clawlinkd CPU (s) / peak RSS",
                format!(
                    "{:.2} / {:.1} MiB",
                    d_usage.cpu_secs,
                    d_usage.peak_rss_kib as f64 / 1024.0
                ),
            ),
            (
                "whole run: gateway (node, its process group) CPU (s) / peak RSS",
                format!(
                    "{:.2} / {:.1} MiB",
                    gw_usage.cpu_secs,
                    gw_usage.peak_rss_kib as f64 / 1024.0
                ),
            ),
            ("pooled connections afterwards", connections.to_string()),
        ],
    );
}
