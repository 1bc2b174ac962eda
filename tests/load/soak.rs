//! Soak: all four roles under steady traffic for a long time, sampled for leaks.
//!
//! Started as real processes: a receiving agent daemon B, a sending agent daemon A, a
//! `clawlinkd relay-server` and a `clawlinkd nexus-server`. Three paths run at once, each at
//! a fixed `--rate` (one message every `1/rate` s on its own thread; a late message is sent at
//! once, never skipped), all `--size` bytes of text seeded by `--seed`:
//!
//! - webhook: `POST /message` into B (acknowledged = 2xx, after B's fsync);
//! - relay: A's control socket `relay.send --wait` to `bob` (acknowledged = `delivered`, the
//!   relay took it), relay → B's connected WebSocket → B's inbox;
//! - nexus: B created and joined a session; the tool joined it as `alice` and posts into it
//!   (acknowledged = 201); B's long-poll moves the messages into its inbox.
//!
//! Every `--sample-secs` it reads each process's VmRSS, `/proc/PID/fd` count and CPU seconds,
//! and the messages sent / acknowledged / received (a `listen` subscription on B counts
//! arrivals per path). At the end it waits for B to catch up, prints the samples as markdown
//! tables and a first/last/max summary, stops B, and opens B's store to check that every
//! acknowledged message is in the inbox exactly once with the text that was sent. The
//! control API cannot list that many messages in one reply (a reply frame is at most 1 MiB),
//! hence the store. Exit status 1 if anything was lost, doubled or altered, or a process died.

use crate::stats::{fd_count, proc_usage};
use clawlink::client::Client;
use clawlink::proto::{
    DeliveryState, Event, InboxQuery, ListenParams, RelayRequest, Request, SendReply,
};
use clawlink_tests::nexus::NexusServer;
use clawlink_tests::relay::RelayServer;
use clawlink_tests::{wait_for, Daemon};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// How long traffic runs, seconds.
    #[arg(long, default_value_t = 3600)]
    duration_secs: u64,
    /// Messages per second on each of the three paths.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Seconds between samples.
    #[arg(long, default_value_t = 60)]
    sample_secs: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Seed of the message text.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const PATHS: [&str; 3] = ["webhook", "relay", "nexus"];
const PROCS: [&str; 4] = ["A", "B", "relay", "nexus"];

/// Per-path message counters.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
}

/// One reading of one process.
#[derive(Clone, Copy, Default)]
struct ProcSample {
    rss_kib: u64,
    fds: usize,
    cpu_secs: f64,
}

struct Sample {
    t_secs: u64,
    procs: Vec<ProcSample>,
    sent: u64,
    acked: u64,
    received: u64,
    inbox_total: u64,
}

/// The text of message `i` on `path`: `soak PATH I ` then seeded letters, exactly `size` bytes.
fn text(path: &str, i: u64, size: usize, seed: u64) -> String {
    let mut s = format!("soak {path} {i} ");
    let mut x = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (path.len() as u64) << 56;
    while s.len() < size {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        s.push((b'a' + (r >> 59) as u8 % 26) as char);
    }
    s
}

/// Which path and index a stored text claims to be.
fn parse_text(t: &str) -> Option<(usize, u64)> {
    let mut w = t.split(' ');
    (w.next()? == "soak").then_some(())?;
    let p = w.next()?;
    let i = w.next()?.parse().ok()?;
    Some((PATHS.iter().position(|x| *x == p)?, i))
}

/// Calls `send(i)` for i = 0, 1, ... at `rate` per second until `end`; returns the acknowledged
/// indices.
fn pace(
    rate: u32,
    start: Instant,
    end: Instant,
    c: &Counts,
    mut send: impl FnMut(u64) -> bool,
) -> Vec<u64> {
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut acked = Vec::new();
    for i in 0u64.. {
        let due = start + period.mul_f64(i as f64);
        if due >= end {
            break;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        c.sent.fetch_add(1, Ordering::Relaxed);
        if send(i) {
            c.acked.fetch_add(1, Ordering::Relaxed);
            acked.push(i);
        } else {
            c.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    acked
}

fn pid(p: &Option<clawlink_tests::Proc>) -> u32 {
    p.as_ref().map(|p| p.pid()).unwrap_or(0)
}

fn nexus_rows(d: &Daemon, state: &str) -> usize {
    let st = d.ctl_json(&["status"]);
    let rows = st["connections"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .filter(|r| r["kind"] == "nexus" && r["state"] == state)
        .count()
}

fn relay_connected(d: &Daemon) -> bool {
    let st = d.ctl_json(&["status"]);
    let rows = st["connections"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .any(|c| c["kind"] == "relay" && c["state"] == "connected")
}

struct Setup {
    relay: RelayServer,
    nexus: NexusServer,
    a: Daemon,
    b: Daemon,
    sid: String,
    key: String,
}

fn setup(a: &Args) -> Setup {
    // The session must outlive the run: TTL = duration + 2 h, allowed by the server.
    let ttl = (a.duration_secs + 7200).to_string();
    let max_ttl = (a.duration_secs + 7200).max(86_400).to_string();
    let nexus = NexusServer::start(&[
        "--max-messages-per-session",
        "100000000",
        "--max-ttl-secs",
        &max_ttl,
    ]);
    let relay = RelayServer::start(&[]);
    let mut b = Daemon::new();
    b.write_config(&format!(
        "[nexus]\nurl = \"{}\"\nlong_poll = true\n",
        nexus.url()
    ));
    b.spawn();
    let a_d = Daemon::start();
    for (d, id) in [(&a_d, "alice"), (&b, "bob")] {
        let secret = format!("{id}-soak-secret");
        d.ctl_json(&[
            "relay",
            "register",
            "--relay",
            &relay.base(),
            "--id",
            id,
            "--name",
            id,
            "--secret",
            &secret,
        ]);
    }
    wait_for("B connected to the relay", Duration::from_secs(20), || {
        relay_connected(&b).then_some(())
    });
    let out = b.ctl(&[
        "nexus",
        "create",
        "--creator-agent-id",
        "bob",
        "--ttl",
        &ttl,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let sid = v["sessionId"].as_str().unwrap_or_default().to_string();
    assert!(
        !sid.is_empty(),
        "nexus create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = nexus.join(&sid, "alice");
    wait_for(
        "B long-polling the session",
        Duration::from_secs(20),
        || (nexus_rows(&b, "long-poll") == 1).then_some(()),
    );
    Setup {
        relay,
        nexus,
        a: a_d,
        b,
        sid,
        key,
    }
}

/// Counts what arrives in B's inbox, per path, from a `listen` subscription.
fn count_arrivals(socket: std::path::PathBuf, counts: Arc<[Counts; 3]>) {
    std::thread::spawn(move || {
        let Ok(c) = Client::connect(&socket) else {
            return;
        };
        let _ = c.subscribe(&Request::Listen(ListenParams::default()), |e| {
            if let Event::Message { message } = e {
                if let Some(p) = PATHS.iter().position(|x| *x == message.source) {
                    counts[p].received.fetch_add(1, Ordering::Relaxed);
                }
            }
            true
        });
    });
}

fn drive(s: &Setup, a: &Args, counts: &Arc<[Counts; 3]>) -> Vec<std::thread::JoinHandle<Vec<u64>>> {
    let start = Instant::now();
    let end = start + Duration::from_secs(a.duration_secs);
    let (rate, size, seed) = (a.rate, a.size, a.seed);
    let http = || {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client")
    };
    let mut threads = Vec::new();
    let (c, url, h) = (
        counts.clone(),
        format!("http://{}/message", s.b.listen),
        http(),
    );
    threads.push(std::thread::spawn(move || {
        pace(rate, start, end, &c[0], |i| {
            let body = json!({"from": "soak", "message": text("webhook", i, size, seed), "id": format!("w{i}")});
            h.post(&url).json(&body).send().is_ok_and(|r| r.status().is_success())
        })
    }));
    let (c, socket) = (counts.clone(), s.a.socket.clone());
    threads.push(std::thread::spawn(move || {
        let mut client: Option<Client> = None;
        pace(rate, start, end, &c[1], |i| {
            if client.is_none() {
                client = Client::connect(&socket).ok();
            }
            let Some(cl) = client.as_mut() else {
                return false;
            };
            let req = Request::Relay(RelayRequest::Send {
                relay: None,
                to: "bob".into(),
                message: text("relay", i, size, seed),
                wait: true,
            });
            match cl.call::<SendReply>(&req, Some(Duration::from_secs(30))) {
                Ok(r) => r.state == DeliveryState::Delivered,
                Err(_) => {
                    client = None;
                    false
                }
            }
        })
    }));
    let url = format!("{}/v1/sessions/{}/messages", s.nexus.url(), s.sid);
    let (c, key, h) = (counts.clone(), s.key.clone(), http());
    threads.push(std::thread::spawn(move || {
        pace(rate, start, end, &c[2], |i| {
            h.post(&url)
                .header("X-Agent-Id", "alice")
                .header("X-Session-Key", &key)
                .json(&json!({ "text": text("nexus", i, size, seed) }))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 201)
        })
    }));
    threads
}

/// B's inbox total from `status` (0 if B does not answer: a dead B is reported, not panicked on).
fn inbox_total(b: &Daemon) -> u64 {
    let out = b.ctl(&["status", "--json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()["inbox"]["total"]
        .as_u64()
        .unwrap_or(0)
}

fn sample(t_secs: u64, pids: &[u32], counts: &[Counts; 3], b: &Daemon) -> Sample {
    let procs = pids
        .iter()
        .map(|&p| {
            let u = proc_usage(p);
            ProcSample {
                rss_kib: u.rss_kib,
                fds: fd_count(p),
                cpu_secs: u.cpu_secs,
            }
        })
        .collect();
    let sum =
        |f: fn(&Counts) -> &AtomicU64| counts.iter().map(|c| f(c).load(Ordering::Relaxed)).sum();
    let inbox_total = inbox_total(b);
    Sample {
        t_secs,
        procs,
        sent: sum(|c| &c.sent),
        acked: sum(|c| &c.acked),
        received: sum(|c| &c.received),
        inbox_total,
    }
}

pub fn run(a: Args) {
    let mut s = setup(&a);
    let pids = [
        pid(&s.a.proc),
        pid(&s.b.proc),
        pid(&s.relay.proc),
        pid(&s.nexus.proc),
    ];
    let counts: Arc<[Counts; 3]> = Arc::default();
    count_arrivals(s.b.socket.clone(), counts.clone());
    std::thread::sleep(Duration::from_millis(300)); // let the subscription start
    let start = Instant::now();
    let mut samples = vec![sample(0, &pids, &counts, &s.b)];
    let threads = drive(&s, &a, &counts);
    let mut died = Vec::new();
    let every = Duration::from_secs(a.sample_secs.max(1));
    let mut n = 1u32;
    while start.elapsed() < Duration::from_secs(a.duration_secs) {
        let due = start + every * n;
        let stop = start + Duration::from_secs(a.duration_secs);
        std::thread::sleep(due.min(stop).saturating_duration_since(Instant::now()));
        if Instant::now() >= stop {
            break;
        }
        let smp = sample(start.elapsed().as_secs(), &pids, &counts, &s.b);
        progress(&smp);
        samples.push(smp);
        n += 1;
        let procs = [
            &mut s.a.proc,
            &mut s.b.proc,
            &mut s.relay.proc,
            &mut s.nexus.proc,
        ];
        for (name, p) in PROCS.into_iter().zip(procs) {
            if !p.as_mut().is_some_and(|p| p.running()) && !died.contains(&name) {
                died.push(name);
            }
        }
    }
    let acked: Vec<Vec<u64>> = threads
        .into_iter()
        .map(|t| t.join().unwrap_or_default())
        .collect();
    let total_acked: u64 = acked.iter().map(|v| v.len() as u64).sum();
    let drained = Instant::now();
    let caught_up = loop {
        if inbox_total(&s.b) >= total_acked {
            break true;
        }
        if drained.elapsed() > Duration::from_secs(120) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let last = sample(start.elapsed().as_secs(), &pids, &counts, &s.b);
    progress(&last);
    samples.push(last);
    let list_probe = s.b.ctl(&["inbox", "--json"]);
    let probe = if list_probe.status.success() {
        "ok".to_string()
    } else {
        String::from_utf8_lossy(&list_probe.stderr)
            .lines()
            .next()
            .unwrap_or("failed")
            .to_string()
    };
    if !s.b.stop() {
        died.push("B (unclean stop)");
    }
    let check = verify(&s.b, &acked, &a);
    report(&a, &samples, &counts, caught_up);
    verdict(&check, &died, &probe);
    if check.lost > 0 || check.doubled > 0 || check.altered > 0 || !died.is_empty() {
        std::process::exit(1);
    }
}

fn progress(s: &Sample) {
    let rss: Vec<String> = s
        .procs
        .iter()
        .zip(PROCS)
        .map(|(p, n)| format!("{n} {:.1} MiB/{} fds", p.rss_kib as f64 / 1024.0, p.fds))
        .collect();
    eprintln!(
        "t={}s sent={} acked={} received={} inbox={} | {}",
        s.t_secs,
        s.sent,
        s.acked,
        s.received,
        s.inbox_total,
        rss.join(", ")
    );
}

/// What B's store holds against what was acknowledged.
struct Check {
    acked: u64,
    stored: u64,
    lost: u64,
    doubled: u64,
    altered: u64,
    other: u64,
    error: Option<String>,
}

/// Opens B's (stopped) store and matches every stored soak message to what was acknowledged.
fn verify(b: &Daemon, acked: &[Vec<u64>], a: &Args) -> Check {
    let mut c = Check {
        acked: acked.iter().map(|v| v.len() as u64).sum(),
        stored: 0,
        lost: 0,
        doubled: 0,
        altered: 0,
        other: 0,
        error: None,
    };
    // The store starts its flusher task on open: it needs a runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _entered = rt.enter();
    let list = clawlinkd::store::Db::open(&b.data_dir)
        .and_then(|db| clawlinkd::store::inbox::Inbox::open(&db))
        .and_then(|inbox| inbox.list(&InboxQuery::default()));
    let msgs = match list {
        Ok(m) => m,
        Err(e) => {
            c.error = Some(e.to_string());
            c.lost = c.acked;
            return c;
        }
    };
    c.stored = msgs.len() as u64;
    let mut seen: Vec<std::collections::HashSet<u64>> = vec![Default::default(); 3];
    for m in &msgs {
        match parse_text(&m.message) {
            Some((p, i)) if PATHS[p] == m.source => {
                if m.message != text(PATHS[p], i, a.size, a.seed) {
                    c.altered += 1;
                }
                if !seen[p].insert(i) {
                    c.doubled += 1;
                }
            }
            _ => c.other += 1,
        }
    }
    for (p, idx) in acked.iter().enumerate() {
        c.lost += idx.iter().filter(|i| !seen[p].contains(i)).count() as u64;
    }
    c
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The samples as markdown tables, then first/last/max per process.
fn report(a: &Args, samples: &[Sample], counts: &[Counts; 3], caught_up: bool) {
    println!(
        "\nsoak: {} s at {} msg/s per path (webhook, relay, nexus), {} B messages, sampled every {} s",
        a.duration_secs, a.rate, a.size, a.sample_secs
    );
    println!("\nRSS (MiB) and open fds over time\n");
    let mut head = vec!["t (s)".to_string()];
    for p in PROCS {
        head.push(format!("{p} RSS"));
        head.push(format!("{p} fds"));
    }
    let rows: Vec<Vec<String>> = samples
        .iter()
        .map(|s| {
            let mut r = vec![s.t_secs.to_string()];
            for p in &s.procs {
                r.push(mib(p.rss_kib));
                r.push(p.fds.to_string());
            }
            r
        })
        .collect();
    markdown(&head, &rows);

    println!("\nCPU seconds (cumulative) and messages over time\n");
    let mut head = vec!["t (s)".to_string()];
    head.extend(PROCS.iter().map(|p| format!("{p} CPU s")));
    head.extend(["sent", "acked", "received", "B inbox total"].map(String::from));
    let rows: Vec<Vec<String>> = samples
        .iter()
        .map(|s| {
            let mut r = vec![s.t_secs.to_string()];
            r.extend(s.procs.iter().map(|p| format!("{:.1}", p.cpu_secs)));
            r.extend([s.sent, s.acked, s.received, s.inbox_total].map(|x| x.to_string()));
            r
        })
        .collect();
    markdown(&head, &rows);

    // Baseline = t 0 (set up, no traffic yet); first = the first sample under traffic.
    println!("\nSummary per process (first = first sample under traffic)\n");
    let head = [
        "process",
        "RSS MiB at t 0",
        "RSS first",
        "RSS last",
        "RSS max",
        "fds at t 0",
        "fds first",
        "fds last",
        "fds max",
        "CPU s",
        "% of one core",
    ]
    .map(String::from);
    let secs = samples.last().map(|s| s.t_secs).unwrap_or(0).max(1) as f64;
    let rows: Vec<Vec<String>> = PROCS
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let col: Vec<ProcSample> = samples.iter().map(|s| s.procs[k]).collect();
            let at = |i: usize| col.get(i).copied().unwrap_or_default();
            let (base, first, last) = (at(0), at(1), at(col.len().saturating_sub(1)));
            let max_rss = col.iter().map(|p| p.rss_kib).max().unwrap_or(0);
            let max_fds = col.iter().map(|p| p.fds).max().unwrap_or(0);
            let cpu = last.cpu_secs - base.cpu_secs;
            vec![
                name.to_string(),
                mib(base.rss_kib),
                mib(first.rss_kib),
                mib(last.rss_kib),
                mib(max_rss),
                base.fds.to_string(),
                first.fds.to_string(),
                last.fds.to_string(),
                max_fds.to_string(),
                format!("{cpu:.1}"),
                format!("{:.1} %", 100.0 * cpu / secs),
            ]
        })
        .collect();
    markdown(&head, &rows);

    println!("\nMessages per path\n");
    let head = [
        "path",
        "sent",
        "acknowledged",
        "send failed",
        "arrived (listen)",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = PATHS
        .iter()
        .zip(counts.iter())
        .map(|(p, c)| {
            let g = |x: &AtomicU64| x.load(Ordering::Relaxed).to_string();
            vec![
                p.to_string(),
                g(&c.sent),
                g(&c.acked),
                g(&c.failed),
                g(&c.received),
            ]
        })
        .collect();
    markdown(&head, &rows);
    if !caught_up {
        println!("\nB's inbox had not caught up 120 s after traffic stopped");
    }
}

fn verdict(c: &Check, died: &[&str], probe: &str) {
    println!("\nDelivery check (B's store opened after a clean stop)\n");
    println!("| figure | value |\n|---|---|");
    println!("| acknowledged | {} |", c.acked);
    println!("| soak messages stored | {} |", c.stored - c.other);
    println!("| lost (acknowledged, not stored) | {} |", c.lost);
    println!("| stored twice | {} |", c.doubled);
    println!("| text altered | {} |", c.altered);
    println!("| other messages in the inbox | {} |", c.other);
    println!("| `clawlink inbox --json` over the whole inbox | {probe} |");
    if let Some(e) = &c.error {
        println!("| store error | {e} |");
    }
    if !died.is_empty() {
        println!("| processes that died | {} |", died.join(", "));
    }
    let ok = c.lost == 0 && c.doubled == 0 && c.altered == 0 && died.is_empty();
    println!("\nresult: {}", if ok { "PASS" } else { "FAIL" });
}

fn markdown(head: &[String], rows: &[Vec<String>]) {
    println!("| {} |", head.join(" | "));
    println!("|{}", "---|".repeat(head.len()));
    for r in rows {
        println!("| {} |", r.join(" | "));
    }
}
