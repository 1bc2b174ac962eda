//! `kill -9` at seeded random points of 10,000-message streams, for every process on each
//! inbound path, repeated across seeds:
//!
//! - webhook → agent daemon (the daemon is killed);
//! - daemon A → `clawlinkd relay-server` → daemon B (A, the relay, or B is killed), with
//!   plaintext and again with sealed envelopes between friends;
//! - Nexus sender → `clawlinkd nexus-server` → polling daemon B (the server or B is killed).
//!
//! Several senders stream concurrently; a controller kills a process, chosen by the seed, each
//! time the number of finished sends passes the next seeded point, and restarts it at once.
//! Afterwards every acknowledged message must be in B's inbox exactly once, in send order per
//! sender. A message whose sender saw the connection die mid-request is unacknowledged: it may
//! be there or not, but never twice. A sender that could not even connect retries the same
//! message, since nothing was sent.

use clawlink::client::Client;
use clawlink::proto::{RelayRequest, Request, SendParams};
use clawlink_tests::daemon::Daemon;
use clawlink_tests::nexus::NexusServer;
use clawlink_tests::relay::RelayServer;
use clawlink_tests::wait_for;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Messages per stream; `CLAWLINK_KILL9_MESSAGES=N` changes it (the JetStream run in
/// `scripts/test.sh` uses a shorter stream to fit CI; `docs/relay-scale.md` gives the long run).
fn messages() -> usize {
    std::env::var("CLAWLINK_KILL9_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
/// Messages per sealed stream (`CLAWLINK_KILL9_SEALED_MESSAGES=N`): each costs a seal, an open
/// and a signed receipt back, so the default is shorter to fit CI.
fn sealed_messages() -> usize {
    std::env::var("CLAWLINK_KILL9_SEALED_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}
const SENDERS: usize = 4;
/// Seeds CI runs; `CLAWLINK_KILL9_SEEDS=1,2,3,...` runs others (for longer fault runs).
const SEEDS: [u64; 2] = [1, 42];

fn seeds() -> Vec<u64> {
    match std::env::var("CLAWLINK_KILL9_SEEDS") {
        Ok(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("CLAWLINK_KILL9_SEEDS: comma-separated integers")
            })
            .collect(),
        Err(_) => SEEDS.to_vec(),
    }
}

/// A small deterministic generator (xorshift), so each seed reproduces its kill points.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    /// Sends between two kills: 8% to 32% of the stream (800 to 3,200 of 10,000), so a
    /// stream sees about five.
    fn gap(&mut self, n: usize) -> usize {
        let n = n as u64;
        (n * 8 / 100 + self.below((n * 24 / 100).max(1))) as usize
    }
}

/// What one attempt to send gave.
enum Ack {
    /// The sender got the success answer.
    Yes,
    /// The request went out but no answer came: the message may or may not have landed.
    Unknown,
    /// Nothing was sent (no connection): send the same message again.
    Retry,
}

/// One sender's messages in send order, each with whether it was acknowledged.
type Sent = Vec<(String, bool)>;

/// Runs `SENDERS` threads of `total / SENDERS` messages each through `send`, calling `kill`
/// at seeded points with a victim number: the processes of a path take turns, starting from a
/// seeded one, so every seed kills each of them. Returns what each sender sent and how often
/// each process was killed.
fn stream(
    seed: u64,
    total: usize,
    send: impl Fn(usize, &str) -> Ack + Sync,
    mut kill: impl FnMut(usize) -> &'static str,
) -> (Vec<Sent>, BTreeMap<&'static str, u32>) {
    let mut rng = Rng::new(seed);
    let done = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let mut kills = BTreeMap::new();
    let sent = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..SENDERS)
            .map(|s| {
                let (send, done, finished) = (&send, &done, &finished);
                scope.spawn(move || {
                    let mut mine = Sent::new();
                    for i in 0..total / SENDERS {
                        let text = format!("seed{seed}-s{s}-{i:05}");
                        loop {
                            match send(s, &text) {
                                Ack::Yes => mine.push((text, true)),
                                Ack::Unknown => mine.push((text, false)),
                                Ack::Retry => {
                                    std::thread::sleep(Duration::from_millis(20));
                                    continue;
                                }
                            }
                            break;
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    finished.fetch_add(1, Ordering::Relaxed);
                    mine
                })
            })
            .collect();
        let mut next = rng.gap(total);
        let mut victim = rng.below(6) as usize;
        while finished.load(Ordering::Relaxed) < SENDERS {
            if done.load(Ordering::Relaxed) >= next {
                *kills.entry(kill(victim)).or_insert(0) += 1;
                victim += 1;
                next += rng.gap(total);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("sender thread"))
            .collect()
    });
    (sent, kills)
}

/// The acknowledged messages of every sender.
fn acknowledged(sent: &[Sent]) -> Vec<&str> {
    sent.iter()
        .flatten()
        .filter(|(_, a)| *a)
        .map(|(t, _)| t.as_str())
        .collect()
}

/// Compares the inbox with what was sent; panics on any loss, duplicate or reordering.
fn check(path: &str, seed: u64, kills: &BTreeMap<&str, u32>, sent: &[Sent], inbox: &[String]) {
    let mut index: HashMap<&str, (usize, usize)> = HashMap::new();
    for (s, msgs) in sent.iter().enumerate() {
        for (i, (text, _)) in msgs.iter().enumerate() {
            index.insert(text.as_str(), (s, i));
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut last: Vec<Option<usize>> = vec![None; sent.len()];
    let mut reordered = 0;
    for text in inbox {
        let Some(&(s, i)) = index.get(text.as_str()) else {
            continue;
        };
        *seen.entry(text.as_str()).or_insert(0) += 1;
        if last[s].is_some_and(|l| l >= i) {
            reordered += 1;
        }
        last[s] = Some(i);
    }
    let acked = acknowledged(sent);
    let lost = acked.iter().filter(|t| !seen.contains_key(*t)).count();
    let duplicated: usize = seen.values().map(|n| n - 1).sum();
    let unacked = sent.iter().flatten().filter(|(_, a)| !*a).count();
    let unacked_found = sent
        .iter()
        .flatten()
        .filter(|(t, a)| !*a && seen.contains_key(t.as_str()))
        .count();
    let found: usize = seen.values().sum();
    eprintln!(
        "fault run: {path}, seed {seed}, kills {kills:?}: {} acknowledged, {unacked} unacknowledged \
         ({unacked_found} of them arrived), {found} found, {lost} lost, {duplicated} duplicated, \
         {reordered} out of order",
        acked.len()
    );
    assert!(
        kills.values().sum::<u32>() >= 3,
        "{path} seed {seed}: too few kills to mean anything"
    );
    assert_eq!(
        (lost, duplicated, reordered),
        (0, 0, 0),
        "{path} seed {seed}: acknowledged messages lost, doubled or reordered"
    );
}

/// Every message text in `d`'s inbox, oldest first (through the CLI, like a user).
fn inbox_texts(d: &Daemon) -> Vec<String> {
    d.ctl_json(&["inbox"])
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["message"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until every acknowledged message is in `d`'s inbox, then returns the inbox.
fn settle(d: &Daemon, sent: &[Sent]) -> Vec<String> {
    let acked = acknowledged(sent);
    wait_for(
        "every acknowledged message in the inbox",
        Duration::from_secs(180),
        || {
            let got = inbox_texts(d);
            let have: std::collections::HashSet<&str> = got.iter().map(String::as_str).collect();
            acked.iter().all(|t| have.contains(t)).then_some(())
        },
    );
    inbox_texts(d)
}

fn quiet_daemon() -> Daemon {
    let mut d = Daemon::new();
    d.env.push(("RUST_LOG".into(), "info".into()));
    d
}

#[test]
fn webhook_stream_with_daemon_kills() {
    for seed in seeds() {
        let mut d = quiet_daemon();
        d.spawn();
        let url = format!("http://{}/message", d.listen);
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        // The webhook's `id` makes a retry after a lost answer harmless, so a webhook sender
        // always retries: every message ends up acknowledged.
        let send = |s: usize, text: &str| {
            let body = json!({"from": format!("s{s}"), "message": text, "id": text});
            match http.post(&url).json(&body).send() {
                Ok(r) if r.status() == 200 => Ack::Yes,
                _ => Ack::Retry,
            }
        };
        let (sent, kills) = stream(seed, messages(), send, |_| {
            d.kill9();
            d.spawn();
            "daemon"
        });
        let inbox = settle(&d, &sent);
        check("webhook", seed, &kills, &sent, &inbox);
        assert!(sent.iter().flatten().all(|(_, a)| *a));
    }
}

/// Waits until `d` holds a connected relay identity.
fn relay_connected(d: &Daemon) {
    wait_for("relay connection", Duration::from_secs(30), || {
        d.ctl_json(&["status"])["connections"]
            .as_array()?
            .iter()
            .any(|c| c["kind"] == "relay" && c["state"] == "connected")
            .then_some(())
    });
}

/// Waits until `d`'s outbox holds nothing still queued.
fn outbox_drained(d: &Daemon) {
    wait_for("A's outbox to drain", Duration::from_secs(120), || {
        let all = d.ctl_json(&["outbox"]);
        let queued = all.as_array()?.iter().any(|e| e["state"] == "queued");
        (!queued).then_some(())
    });
}

#[test]
fn relay_stream_with_sender_relay_and_recipient_kills() {
    relay_stream(false);
}

/// The same stream as friends: every message sealed by A, carried by the relay as ciphertext,
/// opened by B and answered with a signed receipt.
#[test]
fn sealed_envelopes_survive_kills_of_sender_server_and_recipient() {
    relay_stream(true);
}

fn relay_stream(sealed: bool) {
    let total = if sealed {
        sealed_messages()
    } else {
        messages()
    };
    for seed in seeds() {
        let mut relay = RelayServer::start(&["--id-rate", "0", "--queue-cap", "100000"]);
        let (mut a, mut b) = (quiet_daemon(), quiet_daemon());
        a.spawn();
        b.spawn();
        for (d, id) in [(&a, "alice"), (&b, "bob")] {
            d.ctl_json(&[
                "relay",
                "register",
                "--relay",
                &relay.base(),
                "--id",
                id,
                "--secret",
                &format!("{id}-secret-9f"),
            ]);
        }
        relay_connected(&b);
        relay_connected(&a);
        if sealed {
            // A invites B (named `bob`), B accepts (naming A `alice`) over the relay.
            clawlink_tests::friends::befriend(&a, &b, ("alice", "bob"), &[]);
        }
        let socket = a.socket.clone();
        // Each sender keeps one control connection, as an agent driving clawlink would.
        let conns: Vec<std::sync::Mutex<Option<Client>>> =
            (0..SENDERS).map(|_| std::sync::Mutex::new(None)).collect();
        let send = |s: usize, text: &str| {
            let mut slot = conns[s].lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                match Client::connect(&socket) {
                    Ok(c) => *slot = Some(c),
                    Err(_) => return Ack::Retry,
                }
            }
            let Some(c) = slot.as_mut() else {
                return Ack::Retry;
            };
            let req = if sealed {
                Request::Send(SendParams {
                    to: Some("bob".into()),
                    message: text.into(),
                    ..Default::default()
                })
            } else {
                Request::Relay(RelayRequest::Send {
                    relay: None,
                    to: "bob".into(),
                    message: text.into(),
                    wait: false,
                })
            };
            match c.call_raw(&req, Some(Duration::from_secs(60))) {
                // delivered, or queued: durably in A's outbox, which owes its delivery.
                Ok(v) if v["state"] == "delivered" || v["state"] == "queued" => Ack::Yes,
                Ok(v) => panic!("relay send refused: {v}"),
                Err(_) => {
                    *slot = None;
                    Ack::Unknown
                }
            }
        };
        let (sent, kills) = stream(seed, total, send, |victim| match victim % 3 {
            0 => {
                a.kill9();
                a.spawn();
                "sender daemon"
            }
            1 => {
                relay.kill9();
                relay.spawn();
                "relay server"
            }
            _ => {
                b.kill9();
                b.spawn();
                "recipient daemon"
            }
        });
        outbox_drained(&a);
        let inbox = settle(&b, &sent);
        let path = if sealed {
            "A → relay → B, sealed"
        } else {
            "A → relay → B"
        };
        check(path, seed, &kills, &sent, &inbox);
        if sealed {
            // Verified from the friend, and the relay never held the text.
            let from_friend = b.ctl_json(&["inbox", "--source", "friend", "--limit", "5"]);
            assert!(from_friend
                .as_array()
                .is_some_and(|l| !l.is_empty() && l.iter().all(|m| m["meta"]["verified"] == true)));
            let first = &sent[0][0].0;
            let leaked = clawlink_tests::files_under(&relay.data_dir)
                .iter()
                .any(|(_, bytes)| bytes.windows(first.len()).any(|w| w == first.as_bytes()));
            assert!(!leaked, "the relay's data dir holds plaintext {first:?}");
        }
    }
}

#[test]
fn nexus_stream_with_server_and_poller_kills() {
    for seed in seeds() {
        let mut srv = NexusServer::start(&[]);
        let mut b = quiet_daemon();
        b.write_config(&format!(
            "[nexus]\nurl = \"{}\"\npoll_interval_secs = 1\n",
            srv.url()
        ));
        b.spawn();
        let created = b.ctl_json(&[
            "nexus",
            "create",
            "--creator-agent-id",
            "bob",
            "--max-agents",
            "8",
        ]);
        let sid = created["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        let keys: Vec<String> = (0..SENDERS)
            .map(|s| srv.join(&sid, &format!("s{s}")))
            .collect();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let (url, path) = (srv.url(), format!("/v1/sessions/{sid}/messages"));
        // As `nexus.sh send` does: one POST per message, acknowledged by 201.
        let send = |s: usize, text: &str| {
            let r = http
                .post(format!("{url}{path}"))
                .header("X-Agent-Id", format!("s{s}"))
                .header("X-Session-Key", &keys[s])
                .json(&json!({ "text": text }))
                .send();
            match r {
                Ok(r) if r.status() == 201 => Ack::Yes,
                Ok(r) => {
                    let body: Value = r.json().unwrap_or(Value::Null);
                    panic!("nexus send refused: {body}")
                }
                Err(e) if e.is_connect() => Ack::Retry,
                Err(_) => Ack::Unknown,
            }
        };
        let (sent, kills) = stream(seed, messages(), send, |victim| {
            if victim % 2 == 0 {
                srv.kill9();
                srv.spawn();
                "nexus server"
            } else {
                b.kill9();
                b.spawn();
                "polling daemon"
            }
        });
        let inbox = settle(&b, &sent);
        check("nexus → B", seed, &kills, &sent, &inbox);
    }
}
