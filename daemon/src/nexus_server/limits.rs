//! Per-client-IP rate limiting, like the hosted server (default 100 requests per 60 s).
//!
//! A GCRA limiter (`governor`) keyed by the client address: a burst of `requests`, refilled
//! evenly over `window`. IPv6 clients are keyed by their /64, since one host usually owns a
//! whole /64. Over the limit: 429 `rate_limit_exceeded` with `Retry-After`. `/health` is not
//! limited (monitors and readiness probes poll it). Behind a reverse proxy, pass
//! `--trust-forwarded-for` to key by the last address in `X-Forwarded-For` (the one the
//! proxy appended); never enable it without such a proxy, or clients choose their own key.

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
    trust_forwarded_for: bool,
}

/// Shared handle.
pub type RateLimitState = Arc<RateLimit>;

impl RateLimit {
    /// `requests` per `window` per client; `requests == 0` disables limiting.
    pub fn new(
        requests: u32,
        window: Duration,
        trust_forwarded_for: bool,
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
        Ok(RateLimit {
            limiter,
            trust_forwarded_for,
        })
    }

    /// Forgets clients whose allowance is full again (bounded memory); call periodically.
    pub fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    fn key(&self, peer: IpAddr, req: &Request) -> IpAddr {
        let mut ip = peer;
        if self.trust_forwarded_for {
            // Only the entry our proxy appended is trustworthy; earlier ones come from the client.
            let last = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next());
            ip = last
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .unwrap_or(peer);
        }
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }
    }
}

/// The middleware.
pub async fn limit(
    State(rl): State<RateLimitState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(limiter) = &rl.limiter {
        let key = rl.key(peer.ip(), &req);
        if let Err(not_until) = limiter.check_key(&key) {
            let wait = not_until.wait_time_from(limiter.clock().now());
            return ApiError::rate_limited(wait.as_secs_f64().ceil() as u64).into_response();
        }
    }
    next.run(req).await
}
