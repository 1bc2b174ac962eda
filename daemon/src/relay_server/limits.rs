//! Rate limits (GCRA, via `governor`), each with a burst of twice its rate:
//!
//! - **per client IP**, on every request: `--ip-rate` per second;
//! - **per client IP, expensive work**: registrations and secret checks that miss the
//!   verification cache (each costs an argon2 run): `--auth-rate` per second;
//! - **per sender id**, on `/send`: `--id-rate` per second.
//!
//! Loopback peers are exempt from the per-IP limits: behind a local reverse proxy every client
//! would otherwise share the proxy's one address, and local load tests would measure the
//! limiter. The per-id limit applies to everyone. A rate of 0 disables that limit. Limited
//! requests get 429 with `Retry-After`. Idle keys are pruned every minute so the tables stay
//! small under address churn.

use super::error::ApiError;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The relay's limiters.
pub(crate) struct Limits {
    ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    auth: Option<DefaultKeyedRateLimiter<IpAddr>>,
    id: Option<DefaultKeyedRateLimiter<String>>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(governor::RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

fn exempt(ip: &IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

impl Limits {
    /// Limiters with these per-second rates (0 = off).
    pub(crate) fn new(ip_rate: u32, auth_rate: u32, id_rate: u32) -> Limits {
        Limits {
            ip: limiter(ip_rate),
            auth: limiter(auth_rate),
            id: limiter(id_rate),
        }
    }

    /// Any request from `ip`.
    pub(crate) fn request(&self, ip: IpAddr) -> Result<(), ApiError> {
        match &self.ip {
            Some(l) if !exempt(&ip) => l
                .check_key(&ip.to_canonical())
                .map_err(|_| ApiError::too_many("too many requests from this address", 1)),
            _ => Ok(()),
        }
    }

    /// An argon2 run (registration, uncached secret check) for `ip`.
    pub(crate) fn expensive(&self, ip: IpAddr) -> Result<(), ApiError> {
        match &self.auth {
            Some(l) if !exempt(&ip) => l.check_key(&ip.to_canonical()).map_err(|_| {
                ApiError::too_many(
                    "too many registrations or secret checks from this address",
                    1,
                )
            }),
            _ => Ok(()),
        }
    }

    /// A send by `id`.
    pub(crate) fn send(&self, id: &str) -> Result<(), ApiError> {
        match &self.id {
            Some(l) => l
                .check_key(&id.to_string())
                .map_err(|_| ApiError::too_many("this id is sending too fast", 1)),
            None => Ok(()),
        }
    }

    fn prune(&self) {
        if let Some(l) = &self.ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.auth {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.id {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Prunes idle keys every minute until `shutdown`.
pub(crate) async fn housekeeping(limits: Arc<Limits>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => limits.prune(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_exempt_from_ip_limits_but_ids_are_limited() {
        let l = Limits::new(1, 1, 1);
        let lo: IpAddr = [127, 0, 0, 1].into();
        let remote: IpAddr = [192, 0, 2, 1].into();
        assert!((0..10).all(|_| l.request(lo).is_ok()));
        assert!((0..10).any(|_| l.request(remote).is_err()));
        assert!((0..10).any(|_| l.send("a").is_err()));
        let off = Limits::new(0, 0, 0);
        assert!((0..100).all(|_| off.request(remote).is_ok() && off.send("a").is_ok()));
    }
}
