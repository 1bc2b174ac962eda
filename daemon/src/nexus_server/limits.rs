//! Per-client-IP rate limiting, like the hosted server (default 100 requests per 60 s).
//!
//! A GCRA limiter (`governor`) keyed by the client address: a burst of `requests`, refilled
//! evenly over `window`. IPv6 clients are keyed by their /64, since one host usually owns a
//! whole /64. Over the limit: 429 `rate_limit_exceeded` with `Retry-After`. `/health` is not
//! limited (monitors and readiness probes poll it). Behind a reverse proxy, pass
//! `--trust-forwarded-for` (a proxy on this machine) or `--trusted-proxy IP` to key by the last
//! address in `X-Forwarded-For` (the one the proxy appended); it is believed only from those
//! peers. The request's `ConnectInfo` is rewritten to the client's address, so handlers (the
//! per-client session cap) see the real client.

use super::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The limiter and how to find the client's address.
pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    proxies: crate::http::TrustedProxies,
}

/// Shared handle.
pub type RateLimitState = Arc<RateLimit>;

impl RateLimit {
    /// `requests` per `window` per client; `requests == 0` disables limiting.
    pub fn new(
        requests: u32,
        window: Duration,
        proxies: crate::http::TrustedProxies,
    ) -> anyhow::Result<RateLimit> {
        let limiter = match NonZeroU32::new(requests) {
            None => None,
            Some(burst) => {
                let period = window
                    .checked_div(requests)
                    .filter(|p| !p.is_zero())
                    .unwrap_or(Duration::from_nanos(1));
                let quota = Quota::with_period(period)
                    .ok_or_else(|| anyhow::anyhow!("rate limit window must be longer than zero"))?
                    .allow_burst(burst);
                Some(DefaultKeyedRateLimiter::keyed(quota))
            }
        };
        Ok(RateLimit { limiter, proxies })
    }

    /// Forgets clients whose allowance is full again (bounded memory); call periodically.
    pub fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    fn key(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            v4 => v4,
        }
    }
}

/// The middleware.
pub async fn limit(
    State(rl): State<RateLimitState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let client = crate::http::client_ip(peer.ip(), req.headers(), &rl.proxies);
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(client, peer.port())));
    if let Some(limiter) = &rl.limiter {
        let key = RateLimit::key(client);
        if let Err(not_until) = limiter.check_key(&key) {
            let wait = not_until.wait_time_from(limiter.clock().now());
            return ApiError::rate_limited(wait.as_secs_f64().ceil() as u64).into_response();
        }
    }
    next.run(req).await
}
