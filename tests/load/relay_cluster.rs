//! `clawlink-load relay-cluster`: end-to-end throughput and latency at a fixed send rate,
//! sled on one relay node against JetStream R3 (a real 3-node cluster) behind 2 relay nodes,
//! in one run, with the CPU seconds of every process.
//!
//! Senders POST keyed `/send`s at `--rate` msg/s in total (spread over `--senders` threads;
//! with JetStream they alternate between the two relay nodes); the recipient listens on
//! `/ws?ack=1` on the first node and acks each push. Latency is first POST start → push
//! received. A send answered other than 200 (a 503 while JetStream elects a leader, say) is
//! sent again with the same key after 100 ms, as a real sender does, up to [`MAX_TRIES`]
//! times; the answers are counted and reported.

use crate::stats::{ms, proc_usage, summarize, table};
use clawlink_tests::nats::NatsCluster;
use clawlink_tests::relay::{unique_prefix, RelayServer, SeedClient};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Flags.
#[derive(clap::Args)]
pub struct Args {
    /// Total send rate, msg/s.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds of sending per backend.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Sender threads.
    #[arg(long, default_value_t = 16)]
    senders: u64,
}

/// Most tries of one send.
const MAX_TRIES: usize = 20;

struct Outcome {
    sent: usize,
    /// Answers other than 200, by status (0: no answer), each followed by another try.
    refused: BTreeMap<u16, usize>,
    received: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

fn drive(a: &Args, nodes: &[&RelayServer]) -> Outcome {
    let alice = nodes[0].client("alice", "Alice", "alice-secret");
    let bob = nodes[0].client("bob", "Bob", "bob-secret");
    assert_eq!(alice.register().0, 201);
    assert_eq!(bob.register().0, 201);
    let ws = bob.listen("&ack=1").expect("recipient websocket");
    let total = (a.rate * a.secs) as usize;
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let refused: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
    let given_up = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..a.senders)
        .map(|k| {
            let base = nodes[k as usize % nodes.len()].base();
            let started = Arc::clone(&started);
            let (refused, given_up) = (Arc::clone(&refused), Arc::clone(&given_up));
            let (per, every) = (
                total / a.senders as usize,
                Duration::from_secs_f64(a.senders as f64 / a.rate as f64),
            );
            std::thread::spawn(move || {
                let c = SeedClient::new(&base, "alice", "Alice", "alice-secret");
                let mut sent = 0;
                for i in 0..per {
                    // Paced against the schedule, not the previous send.
                    let due = t0 + every * i as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let text = format!("{k}:{i}");
                    started
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(text.clone(), Instant::now());
                    let body = json!({ "from": "alice", "to": "bob", "message": text,
                        "secret": "alice-secret", "key": text });
                    for attempt in 1..=MAX_TRIES {
                        let status = c.try_post("/send", &body).map_or(0, |r| r.0);
                        if status == 200 {
                            sent += 1;
                            break;
                        }
                        *refused
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(status)
                            .or_default() += 1;
                        if attempt == MAX_TRIES {
                            given_up.fetch_add(1, Ordering::SeqCst);
                        } else {
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                sent
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(a.secs * 4 + 30);
    let expected = (total / a.senders as usize) * a.senders as usize;
    while latencies.len() < expected - given_up.load(Ordering::SeqCst) && Instant::now() < deadline
    {
        let Some(f) = ws.next(Duration::from_millis(200)) else {
            continue;
        };
        if f["type"] != "message" {
            continue;
        }
        let now = Instant::now();
        if let Some(id) = f["id"].as_str() {
            ws.ack(id);
        }
        let text = f["data"]["message"].as_str().unwrap_or_default();
        if let Some(s) = started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(text)
        {
            latencies.push(now - s);
        }
    }
    let wall = t0.elapsed();
    let sent = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    let refused = refused.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Outcome {
        sent,
        refused,
        received: latencies.len(),
        wall,
        latencies,
    }
}

fn cpu(pids: &[u32]) -> f64 {
    pids.iter().map(|p| proc_usage(*p).cpu_secs).sum()
}

fn report(title: &str, a: &Args, o: Outcome, cpu_rows: Vec<(String, f64)>) {
    let s = summarize(o.latencies);
    let mut rows: Vec<(String, String)> = vec![
        ("offered rate".into(), format!("{} msg/s", a.rate)),
        (
            "acknowledged / received".into(),
            format!("{} / {}", o.sent, o.received),
        ),
        (
            "throughput".into(),
            format!("{:.0} msg/s", o.received as f64 / o.wall.as_secs_f64()),
        ),
        (
            "answers other than 200, each sent again".into(),
            match o.refused.is_empty() {
                true => "none".into(),
                false => o
                    .refused
                    .iter()
                    .map(|(k, n)| format!("{k} × {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        ),
        ("latency p50".into(), ms(s.p50)),
        ("latency p99".into(), ms(s.p99)),
        ("latency max".into(), ms(s.max)),
    ];
    rows.extend(
        cpu_rows
            .into_iter()
            .map(|(k, v)| (format!("CPU {k}"), format!("{v:.2} s"))),
    );
    let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    table(title, &rows);
}

/// Runs both backends, one after the other.
pub fn run(a: Args) {
    let sled = RelayServer::start_sled(&["--id-rate", "0", "--queue-cap", "1000000"]);
    let pid = sled.proc.as_ref().map(|p| p.pid()).unwrap_or(0);
    let before = cpu(&[pid]);
    let o = drive(&a, &[&sled]);
    let used = cpu(&[pid]) - before;
    report("sled, 1 relay node", &a, o, vec![("relay".into(), used)]);
    drop(sled);

    let cluster = Arc::new(Mutex::new(NatsCluster::start(3)));
    let prefix = unique_prefix();
    let args = ["--id-rate", "0", "--queue-cap", "1000000"];
    let n1 = RelayServer::start_on(&cluster, &prefix, &args);
    let n2 = RelayServer::start_on(&cluster, &prefix, &args);
    let relay_pids: Vec<u32> = [&n1, &n2]
        .iter()
        .filter_map(|n| n.proc.as_ref().map(|p| p.pid()))
        .collect();
    let nats_pids = cluster.lock().unwrap_or_else(|e| e.into_inner()).pids();
    let before: Vec<f64> = relay_pids
        .iter()
        .chain(&nats_pids)
        .map(|p| cpu(&[*p]))
        .collect();
    let o = drive(&a, &[&n1, &n2]);
    let names = ["relay node 1", "relay node 2", "nats 1", "nats 2", "nats 3"];
    let rows = relay_pids
        .iter()
        .chain(&nats_pids)
        .zip(before)
        .zip(names)
        .map(|((p, b), n)| (n.to_string(), cpu(&[*p]) - b))
        .collect();
    report("JetStream R3 (3 NATS nodes), 2 relay nodes", &a, o, rows);
}
