//! Friends across builds: this build's daemon beside another `clawlinkd` (an older release,
//! built from its tag), over one real relay of this build.
//!
//! Twice, once with each build as the inviter: a friendship by invite, then `--messages`
//! sealed messages each way, sent from several threads so that the receipts owed pile up into
//! groups. Checked, and the run fails (exit status 101) when any does not hold:
//!
//! - each side's inbox holds every message of the other exactly once, `verified`;
//! - each sender's outbox shows every one of its messages `stored` by the peer, through the
//!   peer's signed receipts (so every receipt was readable by the build it went to);
//! - neither side refused a receipt as `bad_payload` (a batched receipt sent to a build that
//!   does not read them).
//!
//! Then the other daemon is restarted on this build, with its data (an upgrade): both sides
//! must show each other's hello, and `--messages` more from it must be confirmed through
//! batched receipts (fewer receipt envelopes than messages).
//!
//! Shown: what each side's `friend list` says of the other's features, the receipt envelopes
//! and message ids this build queued (one per message towards a build that sent no hello), and
//! the other build's refusal counts (a build from before hellos refuses ours as
//! `unknown_kind`, once).
//!
//! Command: `./target/release/clawlink-load compat --other PATH/TO/OTHER/clawlinkd`.

use crate::stats::table;
use clawlink_tests::friends::{befriend, friend_when, hellos_exchanged, trust_row};
use clawlink_tests::relay::{register_daemon, RelayServer};
use clawlink_tests::{wait_for, Daemon};
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The other build's `clawlinkd`.
    #[arg(long)]
    other: PathBuf,
    /// Messages each way, per run.
    #[arg(long, default_value_t = 100)]
    messages: usize,
}

fn counter(row: &Value, key: &str) -> u64 {
    row["info"][key]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// What `d`'s friend list says of `name`'s features.
fn features(d: &Daemon, name: &str) -> String {
    match friend_when(d, name, |_| true)["features"].as_array() {
        Some(l) => format!(
            "[{}]",
            l.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "none announced".into(),
    }
}

/// Sends `n` sealed messages from `from` to its friend `to` from four threads; returns their
/// outbox ids.
fn burst(from: &Daemon, to: &str, tag: &str, n: usize) -> HashSet<String> {
    let ids = std::sync::Mutex::new(HashSet::new());
    std::thread::scope(|s| {
        for t in 0..4 {
            let ids = &ids;
            s.spawn(move || {
                for i in (t..n).step_by(4) {
                    let text = format!("{tag} {i:04}");
                    let sent = from.ctl_json(&["send", "--to", to, "--message", &text]);
                    let id = sent["id"].as_str().unwrap_or_default().to_string();
                    assert!(!id.is_empty(), "send refused: {sent}");
                    ids.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
                }
            });
        }
    });
    ids.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Waits until every id of `ids` shows `peer: stored` (or further) in `d`'s outbox.
fn all_stored(d: &Daemon, ids: &HashSet<String>, what: &str) {
    wait_for(what, Duration::from_secs(180), || {
        let outbox = d.ctl_json(&["outbox"]);
        let done = outbox
            .as_array()?
            .iter()
            .filter(|e| {
                e["id"].as_str().is_some_and(|id| ids.contains(id))
                    && matches!(e["peer"].as_str(), Some("stored" | "delivered"))
            })
            .count();
        (done == ids.len()).then_some(())
    });
}

/// Every message tagged `tag` in `d`'s inbox exactly once and verified.
fn inbox_once(d: &Daemon, tag: &str, n: usize) {
    let inbox = d.ctl_json(&["inbox", "--source", "friend", "--limit", "100000"]);
    let texts: Vec<&str> = inbox
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|m| m["meta"]["verified"] == true)
                .filter_map(|m| m["message"].as_str())
                .filter(|t| t.starts_with(tag))
                .collect()
        })
        .unwrap_or_default();
    let distinct: HashSet<&&str> = texts.iter().collect();
    assert_eq!(
        (texts.len(), distinct.len()),
        (n, n),
        "{tag}: every message once"
    );
}

/// One run: `this_invites` says which build invites.
fn one(args: &Args, this_invites: bool) {
    let relay = RelayServer::start_sled(&["--id-rate", "0"]);
    let ours = Daemon::start();
    let mut other = Daemon::new();
    other.daemon_bin = Some(args.other.clone());
    other.spawn();
    register_daemon(&ours, &relay, "ours");
    register_daemon(&other, &relay, "other");
    if this_invites {
        befriend(&ours, &other, ("ours", "other"), &[]);
    } else {
        befriend(&other, &ours, ("other", "ours"), &[]);
    }
    let n = args.messages;
    let to_other = burst(&ours, "other", "to-other", n);
    let to_ours = burst(&other, "ours", "to-ours", n);
    all_stored(
        &ours,
        &to_other,
        "this build's messages stored by the other",
    );
    all_stored(
        &other,
        &to_ours,
        "the other build's messages stored by this one",
    );
    inbox_once(&other, "to-other", n);
    inbox_once(&ours, "to-ours", n);
    let (mine, theirs) = (trust_row(&ours), trust_row(&other));
    for (who, row) in [("this build", &mine), ("the other build", &theirs)] {
        assert_eq!(
            counter(row, "refused_bad_payload"),
            0,
            "{who} refused a receipt it could not read: {row}"
        );
    }
    let refused: Vec<String> = theirs["info"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with("refused_"))
                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let views = (features(&ours, "other"), features(&other, "ours"));
    // The other daemon upgraded to this build, on the same data: at start it greets its
    // friends; this build answers its first hello with ours again (the one it sent before was
    // refused), so from then on both batch their receipts to each other.
    let mine_before = trust_row(&ours);
    assert!(other.stop(), "the other build stops cleanly");
    other.daemon_bin = None;
    other.spawn();
    hellos_exchanged(&ours, "other", &other, "ours");
    let after = burst(&other, "ours", "after-upgrade", n);
    all_stored(&other, &after, "messages after the upgrade stored");
    inbox_once(&ours, "after-upgrade", n);
    let mine_after = trust_row(&ours);
    let delta = |k: &str| counter(&mine_after, k) - counter(&mine_before, k);
    let (receipts, ids) = (delta("receipts_queued"), delta("receipt_ids_queued"));
    assert!(
        ids >= n as u64 && receipts < n as u64,
        "after the upgrade, {receipts} receipts for {ids} ids"
    );
    table(
        &format!(
            "{} invites; {n} sealed messages each way, all stored and confirmed",
            if this_invites {
                "this build"
            } else {
                "the other build"
            }
        ),
        &[
            ("this build's view of the other", views.0),
            ("the other's view of this build", views.1),
            (
                "receipt envelopes this build queued / message ids in them",
                format!(
                    "{} / {}",
                    counter(&mine, "receipts_queued"),
                    counter(&mine, "receipt_ids_queued")
                ),
            ),
            (
                "after the other daemon runs this build: receipt envelopes / ids this build queued for its messages",
                format!("{receipts} / {ids}"),
            ),
            (
                "the other build's refusals",
                if refused.is_empty() {
                    "none".into()
                } else {
                    refused.join(", ")
                },
            ),
        ],
    );
}

pub fn run(args: Args) {
    assert!(
        args.other.is_file(),
        "{} is not a file: build the other release first",
        args.other.display()
    );
    one(&args, true);
    one(&args, false);
    println!("\ncompat: every message arrived once and was confirmed, both ways, in both runs");
}
