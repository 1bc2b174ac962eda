//! Friends between test daemons: an invite from one, accepted by the other, carried over the
//! invite's addresses by the daemons themselves.

use crate::{wait_for, Daemon};
use serde_json::Value;
use std::time::Duration;

/// The friend named `name` in `d`'s list, once it is there and `ready` holds.
pub fn friend_when(d: &Daemon, name: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_for(
        &format!("friend {name} pinned"),
        Duration::from_secs(30),
        || {
            let list = d.ctl_json(&["friend", "list"]);
            list.as_array()?
                .iter()
                .find(|f| f["name"] == name && ready(f))
                .cloned()
        },
    )
}

/// `inviter` invites (naming the accepter `accepter_name`), `accepter` accepts (naming the
/// inviter `inviter_name`); the accept travels over the invite's addresses by itself.
pub fn befriend(inviter: &Daemon, accepter: &Daemon, names: (&str, &str), via: &[String]) {
    let (inviter_name, accepter_name) = names;
    let mut args = vec!["friend", "invite", "--name", accepter_name];
    for v in via {
        args.extend(["--via", v.as_str()]);
    }
    let inv = inviter.ctl_json(&args);
    let accepted = accepter.ctl_json(&[
        "friend",
        "accept",
        inv["invite"].as_str().unwrap_or_default(),
        "--name",
        inviter_name,
    ]);
    assert_eq!(accepted["friend"]["name"], inviter_name, "{accepted}");
    // The inviter opens the accept when it arrives; its signed receipt confirms the accepter.
    let at_inviter = friend_when(inviter, accepter_name, |_| true);
    let at_accepter = friend_when(accepter, inviter_name, |f| f["confirmed"] == true);
    assert_eq!(at_inviter["safety_number"], at_accepter["safety_number"]);
}

/// Waits until each of two friends has the other's hello naming `receipt-ids` (so from then
/// on each answers the other's bursts with batched receipts): `a` knows `b` as `b_name`, `b`
/// knows `a` as `a_name`. Both must be reachable by the other.
pub fn hellos_exchanged(a: &Daemon, b_name: &str, b: &Daemon, a_name: &str) {
    let reads_batches = |f: &Value| {
        f["features"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x == "receipt-ids"))
    };
    friend_when(a, b_name, reads_batches);
    friend_when(b, a_name, reads_batches);
}

/// The `trust` row of `d`'s `status` (identity, refusal and receipt counters); `null` if none.
pub fn trust_row(d: &Daemon) -> Value {
    let st = d.ctl_json(&["status"]);
    st["connections"]
        .as_array()
        .and_then(|r| r.iter().find(|c| c["kind"] == "trust").cloned())
        .unwrap_or_default()
}
