//! Latency and throughput of `system-event` deliveries against a real gateway.
//!
//! Run: `cargo bench -p clawlink-tests --bench gateway` (starts its own gateway; env
//! `GW_BENCH_N` = samples per latency series, default 200; `GW_BENCH_THROUGHPUT_N` = requests
//! in the throughput runs, default 3000).
//!
//! - warm: one request at a time through the pool's kept-open connection;
//! - cold: a fresh connect + handshake (challenge, signed device, hello-ok) + request + close;
//! - throughput: requests/s through one warm connection, one at a time and with 32 in flight.

use clawlink::Secret;
use clawlink_tests::gateway::Gateway;
use clawlinkd::gateway::{Delivery, DeliveryMethod, Pool, PoolOptions};
use serde_json::json;
use std::time::{Duration, Instant};

fn env_n(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let mean = v.iter().sum::<Duration>().as_secs_f64() * 1000.0 / v.len().max(1) as f64;
    println!(
        "{name:<8} n={:<4} p50={:.2} ms  p99={:.2} ms  mean={mean:.2} ms  max={:.2} ms",
        v.len(),
        pct(&v, 0.5),
        pct(&v, 0.99),
        pct(&v, 1.0)
    );
}

fn delivery(i: usize, tag: &str) -> Delivery {
    Delivery {
        method: DeliveryMethod::SystemEvent,
        session: None,
        text: format!("bench {tag} {i}"),
        idempotency_key: format!("{tag}-{i}"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo test --all-targets` runs bench binaries without `--bench`: only compile-check then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("gateway bench: run it with `cargo bench -p clawlink-tests --bench gateway`");
        return Ok(());
    }
    let n = env_n("GW_BENCH_N", 200);
    let tn = env_n("GW_BENCH_THROUGHPUT_N", 3000);
    let gw = Gateway::start();
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let pool = Pool::new(PoolOptions::new(dir.path()))?;
        let token = Secret::new(gw.token.clone());
        for i in 0..20 {
            pool.send_message(&gw.url, &token, &delivery(i, "warmup")).await?;
        }

        let mut warm = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            pool.send_message(&gw.url, &token, &delivery(i, "warm")).await?;
            warm.push(t.elapsed());
        }

        let mut cold = Vec::with_capacity(n);
        for i in 0..n {
            let d = delivery(i, "cold");
            let params = json!({"text": d.text, "idempotencyKey": d.idempotency_key});
            let t = Instant::now();
            pool.request_once(&gw.url, &token, "system-event", params).await?;
            cold.push(t.elapsed());
        }

        let t = Instant::now();
        for i in 0..tn {
            pool.send_message(&gw.url, &token, &delivery(i, "seq")).await?;
        }
        let seq_rate = tn as f64 / t.elapsed().as_secs_f64();

        let t = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..32 {
            let (pool, token, url) = (pool.clone(), token.clone(), gw.url.clone());
            tasks.push(tokio::spawn(async move {
                for i in (w..tn).step_by(32) {
                    pool.send_message(&url, &token, &delivery(i, "par")).await?;
                }
                Ok::<(), clawlinkd::gateway::GatewayError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let par_rate = tn as f64 / t.elapsed().as_secs_f64();

        println!("system-event against openclaw 2026.9.6 on loopback ({} CPUs)", std::thread::available_parallelism().map_or(0, |n| n.get()));
        report("warm", warm);
        report("cold", cold);
        println!("throughput, one warm connection: {seq_rate:.0} req/s one at a time, {par_rate:.0} req/s with 32 in flight ({tn} requests each)");
        println!("pool rows: {:?}", pool.rows());
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    drop(gw);
    Ok(())
}
