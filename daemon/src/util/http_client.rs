//! The daemon's outgoing HTTP client (relay and Nexus calls, gateway probes) and the one
//! `Retry-After` parser.
//!
//! The agent role builds one client ([`build`]) and hands clones of it to every transport
//! (`transport::Context::http`): one connection pool and one set of defaults, connect timeout
//! 10 s, `TCP_NODELAY` (requests are small and latency-bound), idle connections kept 90 s, a
//! `clawlinkd/VERSION` user agent. No overall timeout is set here: each call sets its own
//! deadline (a Nexus long poll may legitimately hold for a minute). It is not a process-wide
//! static on purpose: a client's pooled connections belong to the runtime that opened them.

use std::time::Duration;

/// A client with the daemon's defaults (cloning it shares its pool).
pub fn build() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(concat!("clawlinkd/", env!("CARGO_PKG_VERSION")))
        .build()
        // Building fails only when the TLS backend cannot initialise; a default client has
        // the same backend, so fall back to it rather than panic.
        .unwrap_or_default()
}

/// `Retry-After` as a delay: delta-seconds (the form relays and Nexus servers send), capped
/// at one hour. An HTTP date or garbage is ignored (the caller's own backoff applies).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs = v.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

/// `reqwest` error text without the URL (which may carry a secret in its query).
pub fn error_text(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

/// Reads an answer body, at most `max` bytes (a peer cannot make us buffer more).
pub async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(error_text)? {
        if out.len() + chunk.len() > max {
            return Err(format!("answer larger than {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3600)));
    }
}
