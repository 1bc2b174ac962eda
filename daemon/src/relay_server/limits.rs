//! Rate limits (GCRA, via `governor`), keyed by the **client** address: the TCP peer, or,
//! when the peer is a trusted reverse proxy (`--trust-forwarded-for` for a proxy on this
//! machine, `--trusted-proxy IP` for others), the address that proxy appended to
//! `X-Forwarded-For`. [`client_ip`] rewrites the request's `ConnectInfo` to that address
//! before any handler runs, so everything downstream sees the real client.
//!
//! - **per client, every request**: `--ip-rate` per second (burst twice that). A loopback
//!   client (a local tool, not a proxied one) is exempt, so local load tests measure the relay;
//! - **per client, expensive work**: registrations and secret checks that miss the
//!   verification cache (each costs an argon2 run): `--auth-rate` per second (burst twice
//!   that). **Never** exempt: behind a local proxy without `--trust-forwarded-for` every client
//!   shares the proxy's budget, which is slow for all but never a free brute-force;
//! - **per client, new registrations**: `--registrations-per-hour` (burst the same);
//! - **per sender id**, on `/send`: `--id-rate` per second.
//!
//! A rate of 0 disables that limit. Limited requests get 429 with `Retry-After`. Idle keys are
//! pruned every minute, so the tables stay small under address churn.

use super::error::ApiError;
use crate::http::TrustedProxies;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The relay's limiters.
pub(crate) struct Limits {
    ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    auth: Option<DefaultKeyedRateLimiter<IpAddr>>,
    register: Option<DefaultKeyedRateLimiter<IpAddr>>,
    id: Option<DefaultKeyedRateLimiter<String>>,
    /// Whose `X-Forwarded-For` is believed.
    pub proxies: TrustedProxies,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(governor::RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

/// IPv6 clients are keyed by their /64 (one host usually owns a whole /64).
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Per-second, per-hour and per-id rates (0 = off).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    /// Requests per second per client.
    pub ip: u32,
    /// argon2 runs per second per client.
    pub auth: u32,
    /// New registrations per hour per client.
    pub register_per_hour: u32,
    /// Sends per second per sender id.
    pub id: u32,
}

impl Limits {
    /// Limiters with these rates.
    pub(crate) fn new(rates: Rates, proxies: TrustedProxies) -> Limits {
        let register = NonZeroU32::new(rates.register_per_hour)
            .map(|n| governor::RateLimiter::keyed(Quota::per_hour(n).allow_burst(n)));
        Limits {
            ip: limiter(rates.ip),
            auth: limiter(rates.auth),
            register,
            id: limiter(rates.id),
            proxies,
        }
    }

    /// Any request from client `ip`.
    pub(crate) fn request(&self, ip: IpAddr) -> Result<(), ApiError> {
        match &self.ip {
            Some(l) if !ip.to_canonical().is_loopback() => l
                .check_key(&key(ip))
                .map_err(|_| ApiError::too_many("too many requests from this address", 1)),
            _ => Ok(()),
        }
    }

    /// An argon2 run (registration, uncached secret check) for client `ip`.
    pub(crate) fn expensive(&self, ip: IpAddr) -> Result<(), ApiError> {
        match &self.auth {
            Some(l) => l.check_key(&key(ip)).map_err(|_| {
                ApiError::too_many(
                    "too many registrations or secret checks from this address",
                    1,
                )
            }),
            None => Ok(()),
        }
    }

    /// A new registration from client `ip`.
    pub(crate) fn register(&self, ip: IpAddr) -> Result<(), ApiError> {
        match &self.register {
            Some(l) => l.check_key(&key(ip)).map_err(|_| {
                ApiError::too_many(
                    "too many new registrations from this address this hour",
                    600,
                )
            }),
            None => Ok(()),
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
        for l in [&self.ip, &self.auth, &self.register].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.id {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Replaces the request's `ConnectInfo` with the client's address (see the module doc).
pub(crate) fn client_ip(limits: &Limits, req: &mut axum::extract::Request) -> Option<IpAddr> {
    use axum::extract::ConnectInfo;
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>()?.0;
    let ip = crate::http::client_ip(peer.ip(), req.headers(), &limits.proxies);
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(ip, peer.port())));
    Some(ip)
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
    fn loopback_is_limited_on_secrets_but_not_on_plain_requests() {
        let rates = Rates {
            ip: 1,
            auth: 1,
            register_per_hour: 1,
            id: 1,
        };
        let l = Limits::new(rates, TrustedProxies::default());
        let lo: IpAddr = [127, 0, 0, 1].into();
        let remote: IpAddr = [192, 0, 2, 1].into();
        assert!((0..10).all(|_| l.request(lo).is_ok()));
        assert!((0..10).any(|_| l.request(remote).is_err()));
        assert!((0..10).any(|_| l.expensive(lo).is_err()));
        assert!(l.register(lo).is_ok() && l.register(lo).is_err());
        assert!((0..10).any(|_| l.send("a").is_err()));
        let off = Rates {
            ip: 0,
            auth: 0,
            register_per_hour: 0,
            id: 0,
        };
        let off = Limits::new(off, TrustedProxies::default());
        assert!((0..100).all(|_| off.request(remote).is_ok()
            && off.expensive(lo).is_ok()
            && off.send("a").is_ok()));
    }
}
