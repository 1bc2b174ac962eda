//! `clawlink-load relay-scale`: the JetStream relay at scale, measured in parts small enough to
//! run on one machine, so that BENCHMARKS.md can extrapolate from them.
//!
//! 1. **ids.** `--ids` accounts are created through the store itself
//!    ([`NatsStore::create_account`], the write `/register` makes once argon2 is done) on a
//!    real 3-node cluster with R3 buckets, from `--writers` threads. Every account carries the
//!    same real argon2 hash, taken from one `/register` through a relay node, so the records
//!    are as large as real ones; what this skips is a million argon2 runs. Reported: the
//!    creation rate, each NATS node's RSS and store on disk before and after, and `--lookups`
//!    lookups of spread-out ids (`account(id)`, one KV get each, one at a time).
//! 2. **WebSockets.** `--ws` idle WebSockets on 2 relay nodes (half each) over the same
//!    cluster, for `--ws-ids` of those ids, their sockets split over both nodes
//!    (`--max-ws-per-id` raised). Each id's first socket on a node pays one argon2 run, which is
//!    why not every socket has an id of its own. One process may hold at most `ulimit -n` file
//!    descriptors (20,000 on the machine measured), so two child processes of this tool
//!    (`ws-hold`, one per node) hold the sockets and read every frame, answering the relay's
//!    pings. Reported: each node's RSS before and with the sockets, per socket, and the
//!    CPU-seconds of every process while the sockets sit idle for `--hold-secs` (pings and the
//!    presence entries each node refreshes per id).

use crate::relay::raise_nofile;
use crate::stats::{ms, proc_usage, summarize, table};
use clawlink_tests::nats::NatsCluster;
use clawlink_tests::relay::{unique_prefix, RelayServer};
use clawlinkd::relay_server::storage::jetstream::{NatsConfig, NatsStore};
use clawlinkd::relay_server::storage::RelayBackend;
use clawlinkd::store::relay_server::AccountRecord;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Flags.
#[derive(clap::Args)]
pub struct Args {
    /// Accounts to create through the store.
    #[arg(long, default_value_t = 1_000_000)]
    ids: usize,
    /// Threads creating them.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Timed lookups after the creation.
    #[arg(long, default_value_t = 10_000)]
    lookups: usize,
    /// Idle WebSockets, half on each of the two relay nodes.
    #[arg(long, default_value_t = 20_000)]
    ws: usize,
    /// Distinct ids the sockets belong to.
    #[arg(long, default_value_t = 1_000)]
    ws_ids: usize,
    /// Seconds the sockets sit idle while CPU is counted.
    #[arg(long, default_value_t = 30)]
    hold_secs: u64,
}

/// Flags of the hidden `ws-hold` helper.
#[derive(clap::Args)]
pub struct HoldArgs {
    /// Relay base URL (`http://ADDR`).
    #[arg(long)]
    base: String,
    /// Sockets to open.
    #[arg(long)]
    count: usize,
    /// Ids they cycle through (`id(0)` .. `id(ids - 1)`).
    #[arg(long)]
    ids: usize,
}

const SECRET: &str = "scale-test-secret";

fn id(i: usize) -> String {
    format!("u{i:07}")
}

/// Bytes the files under `p` occupy on disk, in MiB.
fn disk_mib(p: &Path) -> f64 {
    fn walk(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if !m.is_dir() {
            return m.blocks() * 512;
        }
        std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| walk(&e.path())).sum())
            .unwrap_or(0)
    }
    walk(p) as f64 / (1024.0 * 1024.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn cpu(pids: &[u32]) -> Vec<f64> {
    pids.iter().map(|p| proc_usage(*p).cpu_secs).collect()
}

/// Creates `a.ids` accounts (id 0 already exists) and times `a.lookups` lookups; prints a table.
fn ids(
    a: &Args,
    rt: &tokio::runtime::Handle,
    store: &NatsStore,
    hash: &str,
    nats_pids: &[u32],
    nats_dir: &Path,
) {
    let rss = |pids: &[u32]| -> Vec<u64> { pids.iter().map(|p| proc_usage(*p).rss_kib).collect() };
    let (rss0, disk0, cpu0) = (rss(nats_pids), disk_mib(nats_dir), cpu(nats_pids));
    let me = std::process::id();
    let my_cpu0 = proc_usage(me).cpu_secs;
    let next = AtomicUsize::new(1);
    let failed = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..a.writers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= a.ids {
                    return;
                }
                if i.is_multiple_of(100_000) {
                    eprintln!("created {i} accounts in {:.0} s", t.elapsed().as_secs_f64());
                }
                let rec = AccountRecord {
                    name: format!("scale {i}"),
                    secret_hash: hash.to_string(),
                    created_ms: clawlinkd::time::now_ms(),
                };
                // A write JetStream did not take in time is retried, as a client would.
                let ok = (0..5)
                    .any(|_| matches!(rt.block_on(store.create_account(&id(i), &rec)), Ok(None)));
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let took = t.elapsed();
    let (rss1, cpu1) = (rss(nats_pids), cpu(nats_pids));
    let my_cpu = proc_usage(me).cpu_secs - my_cpu0;
    let disk1 = disk_mib(nats_dir);
    // Spread over the whole id range (a prime stride), one at a time.
    let mut lat = Vec::with_capacity(a.lookups);
    let mut missing = 0;
    for k in 0..a.lookups {
        let i = (k * 7_919 + 13) % a.ids;
        let t = Instant::now();
        let found = rt.block_on(store.account(&id(i)));
        lat.push(t.elapsed());
        if !matches!(found, Ok(Some(_))) {
            missing += 1;
        }
    }
    let s = summarize(lat);
    let mut rows: Vec<(String, String)> = vec![
        (
            "accounts created".into(),
            format!("{} (failed: {})", a.ids - 1, failed.into_inner()),
        ),
        (
            "creation rate".into(),
            format!(
                "{:.0} /s over {:.1} s, {} writer threads",
                (a.ids - 1) as f64 / took.as_secs_f64(),
                took.as_secs_f64(),
                a.writers
            ),
        ),
        (
            "CPU of this tool (the store's client) while creating".into(),
            format!("{my_cpu:.1} s"),
        ),
        (
            "NATS store on disk, 3 nodes, before / after".into(),
            format!("{disk0:.1} / {disk1:.1} MiB"),
        ),
        (
            "disk per account, 3 replicas together".into(),
            format!("{:.0} B", (disk1 - disk0) * 1_048_576.0 / a.ids as f64),
        ),
        (
            "lookups of spread-out ids, p50 / p99 / max".into(),
            format!(
                "{} / {} / {} ({} lookups, {missing} not found)",
                ms(s.p50),
                ms(s.p99),
                ms(s.max),
                s.count
            ),
        ),
    ];
    for (k, ((r0, r1), (c0, c1))) in rss0
        .iter()
        .zip(&rss1)
        .zip(cpu0.iter().zip(&cpu1))
        .enumerate()
    {
        rows.push((
            format!("nats {}: RSS before / after, CPU while creating", k + 1),
            format!(
                "{} / {} ({:.0} B per account), {:.1} s",
                mib(*r0),
                mib(*r1),
                r1.saturating_sub(*r0) as f64 * 1024.0 / a.ids as f64,
                c1 - c0
            ),
        ));
    }
    let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    table(
        &format!(
            "{} ids in JetStream KV (R3, 3 NATS nodes), created through the store",
            a.ids
        ),
        &rows,
    );
}

/// A `ws-hold` child holding `count` sockets on `base`; returns once they are all open.
fn holder(
    base: &str,
    count: usize,
    ids: usize,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .args([
            "ws-hold",
            "--base",
            base,
            "--count",
            &count.to_string(),
            "--ids",
            &ids.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn ws-hold");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    assert!(
        line.starts_with("ready"),
        "ws-hold did not get its sockets open: {line:?}"
    );
    (child, out)
}

/// Opens and holds the sockets (see [`HoldArgs`]); prints `ready`, then waits for stdin to end
/// and prints how many the relay closed meanwhile.
pub fn hold(a: HoldArgs) {
    use futures_util::StreamExt;
    raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let closed = Arc::new(AtomicUsize::new(0));
        let ws_base = a.base.replacen("http", "ws", 1);
        for k in 0..a.count {
            let url = format!("{ws_base}/ws?id={}&secret={SECRET}", id(k % a.ids.max(1)));
            let mut tries = 0;
            let mut ws = loop {
                match tokio_tungstenite::connect_async(url.as_str()).await {
                    Ok((ws, _)) => break ws,
                    // The relay sheds argon2 work with 503 when busy: retry shortly.
                    Err(e) if tries < 100 => {
                        tries += 1;
                        if tries == 100 {
                            eprintln!("ws-hold: socket {k}: {e}");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("ws-hold: socket {k} refused: {e}"),
                }
            };
            let closed = Arc::clone(&closed);
            tokio::spawn(async move {
                while let Some(Ok(_)) = ws.next().await {}
                closed.fetch_add(1, Ordering::Relaxed);
            });
        }
        println!("ready {}", a.count);
        let _ = std::io::stdout().flush();
        let _ =
            tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
        println!("closed {}", closed.load(Ordering::Relaxed));
    });
}

/// Runs both parts on one cluster.
pub fn run(a: Args) {
    assert!(
        a.ids >= 2 && a.ws_ids >= 1 && a.ws_ids <= a.ids,
        "need 2 <= ids and 1 <= ws-ids <= ids"
    );
    raise_nofile();
    let cluster = Arc::new(Mutex::new(NatsCluster::start(3)));
    let prefix = unique_prefix();
    let (urls, nats_pids, nats_dir) = {
        let c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        (c.urls(), c.pids(), c.dir.path().to_path_buf())
    };
    let per_id = a.ws.div_ceil(2).div_ceil(a.ws_ids).to_string();
    let conns = (a.ws / 2 + 1000).to_string();
    let relay_args = [
        "--id-rate",
        "0",
        "--auth-rate",
        "0",
        "--ip-rate",
        "0",
        "--registrations-per-hour",
        "0",
        "--max-ws-per-id",
        &per_id,
        "--max-connections",
        &conns,
        "--max-connections-per-ip",
        &conns,
    ];
    let n1 = RelayServer::start_on(&cluster, &prefix, &relay_args);
    assert_eq!(n1.client(&id(0), "scale 0", SECRET).register().0, 201);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = NatsConfig {
        urls: urls.split(',').map(str::to_string).collect(),
        creds: None,
        prefix: prefix.clone(),
        replicas: 3,
        queue_cap: 10_000,
        max_bytes: -1,
        max_message_bytes: 64 * 1024,
    };
    let store = rt
        .block_on(NatsStore::open(&cfg))
        .expect("open the JetStream store");
    let hash = rt
        .block_on(store.account(&id(0)))
        .expect("read account 0")
        .expect("account 0 registered")
        .secret_hash;
    ids(&a, rt.handle(), &store, &hash, &nats_pids, &nats_dir);

    let n2 = RelayServer::start_on(&cluster, &prefix, &relay_args);
    let relay_pids: Vec<u32> = [&n1, &n2]
        .iter()
        .filter_map(|n| n.proc.as_ref().map(|p| p.pid()))
        .collect();
    let rss0: Vec<u64> = relay_pids.iter().map(|p| proc_usage(*p).rss_kib).collect();
    let per_node = a.ws / 2;
    let t = Instant::now();
    let mut holders: Vec<_> = [&n1, &n2]
        .iter()
        .map(|n| holder(&n.base(), per_node, a.ws_ids))
        .collect();
    let opened = t.elapsed();
    let holder_pids: Vec<u32> = holders.iter().map(|(c, _)| c.id()).collect();
    let all: Vec<u32> = relay_pids
        .iter()
        .chain(&nats_pids)
        .chain(&holder_pids)
        .copied()
        .collect();
    let cpu0 = cpu(&all);
    std::thread::sleep(Duration::from_secs(a.hold_secs)); // the measured idle period itself
    let cpu1 = cpu(&all);
    let rss1: Vec<u64> = relay_pids.iter().map(|p| proc_usage(*p).rss_kib).collect();
    let mut closed = 0;
    for (child, out) in holders.iter_mut() {
        drop(child.stdin.take());
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        closed += line
            .trim()
            .strip_prefix("closed ")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        let _ = child.wait();
    }
    let mut rows: Vec<(String, String)> = vec![
        (
            "sockets".into(),
            format!("{} ({per_node} per node), {} ids", per_node * 2, a.ws_ids),
        ),
        (
            "time to open them all".into(),
            format!("{:.1} s", opened.as_secs_f64()),
        ),
        (
            "closed by the relay during the hold".into(),
            closed.to_string(),
        ),
    ];
    for (k, (r0, r1)) in rss0.iter().zip(&rss1).enumerate() {
        rows.push((
            format!("relay node {}: RSS before / with the sockets", k + 1),
            format!(
                "{} / {} ({:.1} KiB per socket)",
                mib(*r0),
                mib(*r1),
                r1.saturating_sub(*r0) as f64 / per_node as f64
            ),
        ));
    }
    let names = [
        "relay node 1",
        "relay node 2",
        "nats 1",
        "nats 2",
        "nats 3",
        "holder 1",
        "holder 2",
    ];
    for ((n, c0), c1) in names.iter().zip(&cpu0).zip(&cpu1) {
        rows.push((
            format!("CPU {n} over the {} s idle", a.hold_secs),
            format!("{:.2} s", c1 - c0),
        ));
    }
    let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    table("idle WebSockets over 2 relay nodes (JetStream R3)", &rows);
}
