//! Several `clawlinkd relay-server --nats` nodes in front of one real 3-node JetStream cluster
//! (R3): the seed protocol across nodes, idempotent sends across nodes, quorum loss, and
//! streams of keyed sends while relay nodes, NATS nodes, the node holding the recipient's
//! WebSocket, or the relay→NATS link fail.
//!
//! Stream checks (every fault test): every send answered 200 is received (0 acknowledged
//! lost), no text is stored under two message ids (0 doubled), and each sender's messages
//! arrive in the order it sent them. Length: `CLAWLINK_CLUSTER_MESSAGES` (default 300 per
//! stream, to keep CI short; the long run uses 10000), seeds: `CLAWLINK_CLUSTER_SEEDS` (default `1,2`).

use clawlink_tests::nats::NatsCluster;
use clawlink_tests::proxy::Proxy;
use clawlink_tests::relay::{unique_prefix, RelayServer, SeedClient, WsClient};
use clawlink_tests::{bin, run, wait_for};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Cluster = Arc<Mutex<NatsCluster>>;

fn cluster() -> Cluster {
    Arc::new(Mutex::new(NatsCluster::start(3)))
}

fn lock(c: &Cluster) -> std::sync::MutexGuard<'_, NatsCluster> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

fn messages() -> usize {
    std::env::var("CLAWLINK_CLUSTER_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn seeds() -> Vec<u64> {
    std::env::var("CLAWLINK_CLUSTER_SEEDS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn registered(relay: &RelayServer, id: &str) -> SeedClient {
    let c = relay.client(id, &format!("{id} name"), &format!("{id}-secret"));
    c.register_until_acknowledged();
    c
}

/// The same client, talking to another node.
fn via(c: &SeedClient, relay: &RelayServer) -> SeedClient {
    SeedClient::new(&relay.base(), &c.id, &c.name, &c.secret)
}

#[test]
fn the_seed_protocol_works_across_three_relay_nodes() {
    let nats = cluster();
    let prefix = unique_prefix();
    let n1 = RelayServer::start_on(&nats, &prefix, &[]);
    let n2 = RelayServer::start_on(&nats, &prefix, &[]);
    let n3 = RelayServer::start_on(&nats, &prefix, &[]);

    let bob = registered(&n1, "bob.b");
    let alice = via(&registered(&n1, "alice"), &n2);
    // Same id, same secret on another node: confirmed; another secret: 409.
    assert_eq!(via(&bob, &n3).register().0, 201);
    let thief = SeedClient::new(&n2.base(), "bob.b", "x", "other");
    assert_eq!(thief.register().0, 409);

    let (status, body) = alice.send("bob.b", "one");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["online"], false);
    let got = via(&bob, &n3).poll_all();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["message"], "one");
    assert_eq!(got[0]["fromName"], "alice name");
    assert!(
        via(&bob, &n2).poll_all().is_empty(),
        "poll deletes on every node"
    );

    // Live: bob listens on node 1, alice sends on node 2.
    let ws = bob.listen("").expect("ws on node 1");
    assert_eq!(
        ws.next(Duration::from_secs(10)).expect("hello")["type"],
        "connected"
    );
    let users = wait_for("bob online on node 3", Duration::from_secs(10), || {
        let u = via(&alice, &n3).users();
        let bob = u["users"]
            .as_array()?
            .iter()
            .find(|u| u["id"] == "bob.b")?
            .clone();
        (bob["online"] == true).then_some(u)
    });
    assert_eq!(users["count"], 2, "{users}");
    let (status, body) = alice.send("bob.b", "two");
    assert_eq!(
        (status, body["online"].clone()),
        (200, json!(true)),
        "{body}"
    );
    let pushed = ws.next_message();
    assert_eq!(pushed["data"]["message"], "two");
    assert_eq!(pushed["data"]["from"], "alice");
}

#[test]
fn a_keyed_send_retried_on_another_node_is_queued_once() {
    let nats = cluster();
    let prefix = unique_prefix();
    let n1 = RelayServer::start_on(&nats, &prefix, &[]);
    let n2 = RelayServer::start_on(&nats, &prefix, &[]);
    let bob = registered(&n1, "bob");
    let alice = registered(&n1, "alice");
    let body = json!({ "from": "alice", "to": "bob", "message": "m", "secret": alice.secret, "key": "k-1" });
    let (s1, first) = alice.post("/send", &body);
    let (s2, again) = via(&alice, &n2).post("/send", &body);
    assert_eq!((s1, s2), (200, 200), "{first} {again}");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["timestamp"], first["timestamp"]);
    assert_eq!(via(&bob, &n2).poll_all().len(), 1);
}

#[test]
fn losing_the_quorum_refuses_sends_with_503_and_a_keyed_retry_lands_once() {
    let nats = cluster();
    let prefix = unique_prefix();
    let relay = RelayServer::start_on(&nats, &prefix, &[]);
    let bob = registered(&relay, "bob");
    let alice = registered(&relay, "alice");
    assert_eq!(alice.send("bob", "before").0, 200);
    {
        let mut c = lock(&nats);
        c.kill9(1);
        c.kill9(2);
    }
    // A publish that timed out may still be committed once the quorum returns (Raft cannot
    // tell), so a 503 means "not acknowledged": the sender retries with the same key and the
    // message is then queued exactly once, whether or not the first attempt landed.
    let during = json!({ "from": "alice", "to": "bob", "message": "during", "secret": alice.secret, "key": "during-1" });
    let refused = wait_for("a 503 without quorum", Duration::from_secs(30), || {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/send", relay.base()))
            .json(&during)
            .timeout(Duration::from_secs(20))
            .send()
            .ok()?;
        match r.status().as_u16() {
            503 => Some(r),
            200 => panic!("a send was acknowledged without a quorum"),
            _ => None,
        }
    });
    assert!(refused.headers().get("retry-after").is_some());
    {
        let mut c = lock(&nats);
        c.restart(1);
        c.restart(2);
        c.wait_ready();
    }
    wait_for(
        "the refused send accepted on retry",
        Duration::from_secs(60),
        || (alice.post("/send", &during).0 == 200).then_some(()),
    );
    assert_eq!(alice.send("bob", "after").0, 200);
    let texts: Vec<String> = bob
        .poll_all()
        .iter()
        .map(|m| m["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        texts,
        ["before", "during", "after"],
        "each message queued exactly once"
    );
}

/// One keyed send: Some((status, body)) or None when the node could not be reached.
fn try_send(base: &str, body: &Value) -> Option<(u16, Value)> {
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}/send"))
        .json(body)
        .timeout(Duration::from_secs(15))
        .send()
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().unwrap_or(Value::Null)))
}

/// What can fail during a stream.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// kill -9 of a relay node the sender uses (restarted).
    RelayNode,
    /// kill -9 of one NATS node (restarted).
    NatsNode,
    /// kill -9 of the node holding the recipient's WebSocket (the recipient moves on).
    RecipientNode,
    /// The relay→NATS link of one node is cut, stalled or delayed through a TCP proxy.
    Link,
}

struct Tiny(u64);

impl Tiny {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Streams `n` keyed messages alice → bob through two relay nodes while `fault` strikes at
/// random points; bob listens in ack mode. Returns the faults injected.
fn stream_with(fault: Fault, seed: u64) -> u32 {
    let n = messages();
    let nats = cluster();
    let prefix = unique_prefix();
    let proxy = Proxy::start(lock(&nats).addr(0));
    let node0 = match fault {
        Fault::Link => RelayServer::start_with_nats_urls(
            &nats,
            &format!("nats://{}", proxy.addr),
            &prefix,
            &["--id-rate", "0", "--queue-cap", "100000"],
        ),
        _ => RelayServer::start_on(&nats, &prefix, &["--id-rate", "0", "--queue-cap", "100000"]),
    };
    let mut nodes = [
        node0,
        RelayServer::start_on(&nats, &prefix, &["--id-rate", "0", "--queue-cap", "100000"]),
    ];
    let alice = registered(&nodes[0], "alice");
    let bob = registered(&nodes[0], "bob");
    let mut rng = Tiny(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // bob listens on node 0 (the one that fails), in ack mode.
    let mut ws: Option<WsClient> = bob.listen("&ack=1").ok();
    let mut received: Vec<(String, String)> = Vec::new();
    let drain = |ws: &Option<WsClient>, received: &mut Vec<(String, String)>| {
        if let Some(w) = ws {
            while let Some(f) = w.next(Duration::from_millis(0)) {
                if f["type"] == "message" {
                    let id = f["id"].as_str().unwrap_or_default().to_string();
                    received.push((
                        id.clone(),
                        f["data"]["message"].as_str().unwrap_or_default().into(),
                    ));
                    w.ack(&id);
                }
            }
        }
    };
    let mut acked: Vec<String> = Vec::new();
    let mut faults = 0;
    let mut next_fault = 1 + rng.below(n as u64 / 3) as usize;
    let mut stalled = false;
    for i in 0..n {
        if i == next_fault {
            faults += 1;
            next_fault += 1 + rng.below(n as u64 / 3) as usize;
            match fault {
                Fault::RelayNode | Fault::RecipientNode => {
                    nodes[0].kill9();
                    drain(&ws, &mut received);
                    nodes[0].spawn();
                    if let Fault::RecipientNode = fault {
                        // The recipient reconnects to the other node.
                        ws = via(&bob, &nodes[1]).listen("&ack=1").ok();
                    } else {
                        ws = bob.listen("&ack=1").ok();
                    }
                }
                Fault::NatsNode => {
                    let k = rng.below(3) as usize;
                    let mut c = lock(&nats);
                    c.kill9(k);
                    c.restart(k);
                }
                Fault::Link => match rng.below(3) {
                    0 => proxy.cut(),
                    1 => {
                        proxy.stall(!stalled);
                        stalled = !stalled;
                    }
                    _ => proxy.delay(rng.below(50)),
                },
            }
        }
        let text = format!("m{i}");
        let body = json!({ "from": "alice", "to": "bob", "message": text, "secret": alice.secret, "key": format!("k{i}") });
        // Retry until acknowledged, alternating nodes; a retry carries the same key.
        let mut attempt = 0;
        loop {
            let node = &nodes[(i + attempt) % 2];
            match try_send(&node.base(), &body) {
                Some((200, _)) => break,
                Some((429 | 500 | 503, _)) | None => {}
                Some((s, b)) => panic!("send {i} got {s}: {b}"),
            }
            attempt += 1;
            assert!(attempt < 400, "send {i} never acknowledged");
            std::thread::sleep(Duration::from_millis(50));
        }
        acked.push(text);
        drain(&ws, &mut received);
    }
    if stalled {
        proxy.stall(false);
    }
    proxy.delay(0);
    // Whatever was not pushed yet arrives on a fresh connection to the healthy node.
    drop(ws.take());
    let last = via(&bob, &nodes[1])
        .listen("&ack=1")
        .expect("final listener");
    let seen = |r: &Vec<(String, String)>| {
        r.iter()
            .map(|(_, t)| t.clone())
            .collect::<std::collections::HashSet<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while seen(&received).len() < acked.len() && std::time::Instant::now() < deadline {
        if let Some(f) = last.next(Duration::from_millis(500)) {
            if f["type"] == "message" {
                let id = f["id"].as_str().unwrap_or_default().to_string();
                received.push((
                    id.clone(),
                    f["data"]["message"].as_str().unwrap_or_default().into(),
                ));
                last.ack(&id);
            }
        }
    }
    check(fault, seed, &acked, &received);
    faults
}

fn check(fault: Fault, seed: u64, acked: &[String], received: &[(String, String)]) {
    let what = format!("{fault:?} seed {seed}");
    // 0 doubled: one text, one id (a redelivery repeats the id, never invents a new one).
    let mut ids: HashMap<&str, &str> = HashMap::new();
    for (id, text) in received {
        if let Some(prev) = ids.insert(text.as_str(), id.as_str()) {
            assert_eq!(prev, id, "{what}: {text} stored twice");
        }
    }
    // 0 lost.
    let lost: Vec<&String> = acked
        .iter()
        .filter(|t| !ids.contains_key(t.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{what}: {} acknowledged messages lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    // Order: the first arrival of each message follows the sender's order.
    let mut seen = BTreeSet::new();
    let order: Vec<usize> = received
        .iter()
        .filter(|(_, text)| seen.insert(text.clone()))
        .map(|(_, text)| text.trim_start_matches('m').parse().unwrap_or(usize::MAX))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{what}: out of order: {order:?}"
    );
}

#[test]
fn killing_a_relay_node_mid_stream_loses_nothing_acknowledged() {
    for seed in seeds() {
        assert!(stream_with(Fault::RelayNode, seed) > 0);
    }
}

#[test]
fn killing_a_nats_node_mid_stream_loses_nothing_acknowledged() {
    for seed in seeds() {
        assert!(stream_with(Fault::NatsNode, seed) > 0);
    }
}

#[test]
fn killing_the_node_holding_the_recipients_websocket_loses_nothing() {
    for seed in seeds() {
        assert!(stream_with(Fault::RecipientNode, seed) > 0);
    }
}

#[test]
fn cutting_stalling_and_delaying_the_link_to_nats_loses_nothing() {
    for seed in seeds() {
        assert!(stream_with(Fault::Link, seed) > 0);
    }
}

#[test]
fn migrating_a_sled_relay_moves_accounts_and_queues_and_a_second_run_changes_nothing() {
    let mut old = RelayServer::start_sled(&[]);
    let bob = registered(&old, "bob");
    let alice = registered(&old, "alice");
    for t in ["a", "b", "c"] {
        assert_eq!(alice.send("bob", t).0, 200);
    }
    assert!(old.stop(), "sled relay stops cleanly");
    let nats = cluster();
    let prefix = unique_prefix();
    let migrate = || {
        let out = run(std::process::Command::new(bin("clawlinkd"))
            .args(["relay-server", "migrate", "--from-sled"])
            .arg(&old.data_dir)
            .args(["--to-nats", &lock(&nats).urls(), "--nats-prefix", &prefix]));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "migrate: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let first = migrate();
    assert!(
        first.contains("2 accounts created") && first.contains("3 messages queued"),
        "{first}"
    );
    let second = migrate();
    assert!(
        second.contains("0 accounts created") && second.contains("0 messages queued"),
        "{second}"
    );
    let node = RelayServer::start_on(&nats, &prefix, &[]);
    let got: Vec<Value> = via(&bob, &node).poll_all();
    let texts: Vec<&str> = got.iter().filter_map(|m| m["message"].as_str()).collect();
    assert_eq!(texts, ["a", "b", "c"]);
    assert_eq!(
        via(&alice, &node).send("bob", "d").0,
        200,
        "secrets moved too"
    );
    assert_eq!(
        SeedClient::new(&node.base(), "alice", "x", "wrong")
            .send("bob", "e")
            .0,
        401
    );
}
