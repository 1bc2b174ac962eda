//! Sealed vs plaintext, daemon to daemon over one relay, side by side in one run.
//!
//! A and B are real daemons registered on one real relay and made friends by an invite that
//! travels over that relay (its round trip is the first figure: from `friend accept` until B
//! holds A's signed receipt). Then `--concurrency` control connections to A send `--messages`
//! each way:
//!
//! - plaintext: `clawlink relay send --to bob` (the relay reads the text);
//! - sealed: `clawlink send --to bob` to the friend (sealed, signed, opened by B, answered
//!   with a signed `stored` receipt that travels back through the relay).
//!
//! The clock runs from the first request until B's inbox holds every message of the run.

use crate::stats::table;
use clawlink::client::Client;
use clawlink::proto::{RelayRequest, Request, SendParams};
use clawlink_tests::relay::{register_daemon, RelayServer};
use clawlink_tests::{wait_for, Daemon};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Messages per run.
    #[arg(long, default_value_t = 5_000)]
    messages: usize,
    /// Concurrent control connections to A.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
}

/// `d`'s `trust` row counter `key`, if its build counts it.
fn trust_counter(d: &Daemon, key: &str) -> Option<u64> {
    clawlink_tests::friends::trust_row(d)["info"][key]
        .as_str()?
        .parse()
        .ok()
}

fn inbox_total(d: &Daemon) -> usize {
    d.ctl_json(&["status"])["inbox"]["total"]
        .as_u64()
        .unwrap_or(0) as usize
}

/// Sends `n` messages through `concurrency` connections to `a`; returns the time until `b`'s
/// inbox grew by `n`.
fn run_one(
    a: &Daemon,
    b: &Daemon,
    n: usize,
    concurrency: usize,
    req: impl Fn(&str) -> Request + Sync,
) -> Duration {
    let before = inbox_total(b);
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            let (next, req) = (&next, &req);
            s.spawn(move || {
                let mut c = Client::connect(&a.socket).expect("control socket");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let v = c
                        .call_raw(&req(&format!("{i:08}")), Some(Duration::from_secs(60)))
                        .expect("send");
                    assert!(
                        v["state"] == "delivered" || v["state"] == "queued",
                        "send refused: {v}"
                    );
                }
            });
        }
    });
    let deadline = Instant::now() + Duration::from_secs(900);
    while inbox_total(b) < before + n {
        assert!(Instant::now() < deadline, "timed out waiting for B's inbox");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

pub fn run(a_args: Args) {
    let relay = RelayServer::start(&["--id-rate", "0", "--queue-cap", "10000000"]);
    let (a, b) = (Daemon::start(), Daemon::start());
    register_daemon(&a, &relay, "alice");
    register_daemon(&b, &relay, "bob");

    // The invite round trip: B's accept reaches A over the relay, A's receipt comes back.
    let inv = a.ctl_json(&["friend", "invite", "--name", "bob"]);
    let invite = inv["invite"].as_str().unwrap_or_default().to_string();
    let start = Instant::now();
    b.ctl_json(&["friend", "accept", &invite, "--name", "alice"]);
    let mut invite_rtt = Duration::ZERO;
    wait_for("the friendship confirmed", Duration::from_secs(60), || {
        let list = b.ctl_json(&["friend", "list"]);
        let ok = list
            .as_array()?
            .iter()
            .any(|f| f["name"] == "alice" && f["confirmed"] == true);
        invite_rtt = start.elapsed();
        ok.then_some(())
    });
    // Each side's hello has reached the other: B's receipts to A are batched.
    clawlink_tests::friends::hellos_exchanged(&a, "bob", &b, "alice");
    // A names B "bob" (the invite's name); B names A "alice". A sends to "bob".
    let pad = "x".repeat(a_args.size.saturating_sub(8));
    let n = a_args.messages;
    let plain = run_one(&a, &b, n, a_args.concurrency, |i| {
        Request::Relay(RelayRequest::Send {
            relay: None,
            to: "bob".into(),
            message: format!("{i}{pad}"),
            wait: false,
        })
    });
    let sealed = run_one(&a, &b, n, a_args.concurrency, |i| {
        Request::Send(SendParams {
            to: Some("bob".into()),
            message: format!("{i}{pad}"),
            ..Default::default()
        })
    });
    // What B's receipts for the sealed run came to (one receipt may answer many messages).
    let receipts = match (
        trust_counter(&b, "receipts_queued"),
        trust_counter(&b, "receipt_ids_queued"),
    ) {
        (Some(r), Some(ids)) => format!("{r} ({ids} message ids)"),
        _ => "not counted by this build".to_string(),
    };
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    table(
        &format!(
            "A → relay → B, {n} messages of {} bytes, {} control connections",
            a_args.size, a_args.concurrency
        ),
        &[
            (
                "friend invite round trip (accept → inviter's receipt back)",
                format!("{:.1} ms", invite_rtt.as_secs_f64() * 1000.0),
            ),
            (
                "plaintext `relay send`, msg/s",
                format!("{:.0}", rate(plain)),
            ),
            (
                "sealed `send --to FRIEND`, msg/s",
                format!("{:.0}", rate(sealed)),
            ),
            (
                "sealed / plaintext",
                format!("{:.2}", rate(sealed) / rate(plain)),
            ),
            ("receipt envelopes B queued for A", receipts),
        ],
    );
}
