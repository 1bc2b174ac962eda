//! [`Backoff`]: the one retry schedule of the daemon.
//!
//! Every retry loop (outbox lanes, relay connections, gateway connection actors, the
//! local-agent worker, Nexus pollers) waits `min`, then doubles up to `max`, each wait
//! multiplied by a random factor in `[1 - jitter, 1 + jitter)` so that many clients failing
//! together do not retry in step. A peer's own request (`Retry-After`, `retryAfterMs`) is a
//! floor, never undercut. [`Backoff::reset`] starts over after a success; loops that hold a
//! connection call it once the connection has been stable for a while.

use rand::Rng;
use std::time::Duration;

/// A jittered exponential backoff. See the module docs.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: f64,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`, doubles up to `max`, ±25 % jitter.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            jitter: 0.25,
            next: min,
        }
    }

    /// The same schedule with jitter `j` (a fraction, clamped to `0..=1`).
    pub fn with_jitter(mut self, j: f64) -> Backoff {
        self.jitter = j.clamp(0.0, 1.0);
        self
    }

    /// The next wait (jittered, at least `floor` when the peer asked for one), and doubles
    /// the base for the time after.
    pub fn next_wait(&mut self, floor: Option<Duration>) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let factor = if self.jitter > 0.0 {
            rand::thread_rng().gen_range(1.0 - self.jitter..1.0 + self.jitter)
        } else {
            1.0
        };
        let wait = base.mul_f64(factor).min(self.max);
        wait.max(floor.unwrap_or_default())
    }

    /// Starts over from `min` (after a success).
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// The longest wait this schedule produces on its own.
    pub fn max(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b =
            Backoff::new(Duration::from_millis(100), Duration::from_millis(350)).with_jitter(0.0);
        let waits: Vec<u128> = (0..4).map(|_| b.next_wait(None).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_wait(None), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_in_bounds_and_floor_wins() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        for _ in 0..100 {
            b.reset();
            let w = b.next_wait(None);
            assert!(w >= Duration::from_millis(750) && w < Duration::from_millis(1250));
        }
        b.reset();
        assert_eq!(
            b.next_wait(Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
    }
}
