//! Loop and budget limits: what keeps two agents wired with `converse` from talking forever.
//!
//! - **Hops.** Every envelope clawlink sends carries a hop count (`meta.hops`, 0 for a message
//!   a person or a command wrote; a reply the agent wrote in answer to a message of `h` hops
//!   carries `h + 1`). A message arriving with `hops >= max_hops` is never delivered into a
//!   session: it drops to `notify`.
//! - **Rate.** Each peer may put at most `rate_per_minute` messages into the agent in any
//!   sliding minute. The excess is not dropped: it drops to `notify`, and all notices of one
//!   peer pending at once are batched into a single notice with a count.
//! - **Exchanges.** Each peer has a cap on *consecutive* agent-written exchanges
//!   (`max_exchanges`, default 4, below OpenClaw's `sessions_send` limit of 5 ping-pong
//!   turns). An exchange is one agent-written message in either direction: a reply our agent
//!   sent back under `converse`, or an inbound message its sender marked agent-written
//!   (`hops > 0`). A message a person wrote (`hops == 0`) resets the count. At the cap the
//!   conversation drops to `notify` until the owner resets it (`clawlink policy reset SENDER`
//!   or `policy set`). The count is durable (see `store::policy`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The limits, from `[policy]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A message with this many hops or more is never delivered into a session.
    pub max_hops: u32,
    /// Messages per peer per sliding minute into the agent.
    pub rate_per_minute: u32,
    /// Consecutive agent-written exchanges per peer before dropping to notify.
    pub max_exchanges: u32,
}

impl Default for Limits {
    /// The defaults of `[policy]` ([`crate::config::PolicyConfig`]).
    fn default() -> Self {
        super::Settings::default().limits
    }
}

/// Sliding-window counters per peer (in memory: a restart forgets them, which only ever
/// allows one more window's worth).
#[derive(Default)]
pub struct RateWindows {
    peers: Mutex<HashMap<String, VecDeque<u64>>>,
}

/// Window length.
const WINDOW_MS: u64 = 60_000;
/// Peers tracked at once; the oldest idle ones are forgotten beyond this.
const MAX_PEERS: usize = 10_000;

impl RateWindows {
    /// Counts one message of `peer` at `now_ms` if it fits in the window; whether it did.
    pub fn admit(&self, peer: &str, now_ms: u64, per_minute: u32) -> bool {
        let Ok(mut peers) = self.peers.lock() else {
            return false;
        };
        if peers.len() >= MAX_PEERS && !peers.contains_key(peer) {
            peers.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now_ms.saturating_sub(*t) < WINDOW_MS)
            });
        }
        let q = peers.entry(peer.to_string()).or_default();
        while q
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) >= WINDOW_MS)
        {
            q.pop_front();
        }
        if q.len() >= per_minute as usize {
            return false;
        }
        q.push_back(now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_rate_and_the_window_slides() {
        let w = RateWindows::default();
        assert!((0..3).all(|i| w.admit("relay:a", 1000 + i, 3)));
        assert!(!w.admit("relay:a", 2000, 3));
        assert!(w.admit("relay:b", 2000, 3), "peers are counted apart");
        assert!(w.admit("relay:a", 61_000, 3), "the window slid");
    }
}
