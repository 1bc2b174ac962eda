//! The replay window.
//!
//! An envelope's timestamp must lie between [`MAX_AGE_MS`] in the past (the outbox may retry
//! for a day, and a relay may hold a message for longer) and [`MAX_SKEW_MS`] in the future.
//! Inside the window every `(sender id, message id)` is remembered durably with the SHA-256
//! of the envelope bytes ([`crate::store::trust`]):
//!
//! - the same bytes again are a *duplicate* (multipath or a retry): answered again, stored once;
//! - the same id with other bytes is a *replay* and refused.
//!
//! Seen ids older than the window are pruned; an envelope that old is refused by its timestamp
//! anyway, so forgetting its id cannot let it back in.

use super::Refusal;

/// Oldest timestamp accepted: 30 days.
pub const MAX_AGE_MS: u64 = 30 * 24 * 3600 * 1000;
/// Furthest future timestamp accepted: 5 minutes of clock skew.
pub const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// Whether `ts_ms` is inside the window at `now_ms`.
pub fn check_time(ts_ms: u64, now_ms: u64) -> Result<(), Refusal> {
    if ts_ms.saturating_add(MAX_AGE_MS) < now_ms || ts_ms > now_ms.saturating_add(MAX_SKEW_MS) {
        return Err(Refusal::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_edges() {
        let now = 100 * MAX_AGE_MS;
        assert!(check_time(now, now).is_ok());
        assert!(check_time(now - MAX_AGE_MS, now).is_ok());
        assert_eq!(check_time(now - MAX_AGE_MS - 1, now), Err(Refusal::Stale));
        assert!(check_time(now + MAX_SKEW_MS, now).is_ok());
        assert_eq!(check_time(now + MAX_SKEW_MS + 1, now), Err(Refusal::Stale));
        assert_eq!(check_time(u64::MAX, now), Err(Refusal::Stale));
    }
}
