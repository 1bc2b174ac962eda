//! What keeps browsers and other local users out of the webhook.
//!
//! A web page can make the visitor's browser send requests to `127.0.0.1:19900`. Three checks
//! stop it, before any handler runs:
//!
//! - **Host** (DNS rebinding: a page whose name later resolves to 127.0.0.1 can read the
//!   answers). Accepted: an IP address (a loopback one, the bound one, or any one when bound
//!   to `0.0.0.0`/`::`), `localhost`, or a name in `[listen] allowed_hosts`; a port, if any,
//!   is ignored. A rebinding page always carries its own DNS name, so it gets **421**. A
//!   request without `Host` (HTTP/1.0 tools) passes: browsers always send one.
//! - **Origin**: browsers add it to cross-origin requests. Present and not in
//!   `[listen] allowed_origins` (exact match, e.g. `http://localhost:3000`): **403**.
//! - **Content-Type** on `POST`: must be `application/json` (parameters allowed), else **415**.
//!   A cross-origin page cannot send that without a CORS preflight, and preflights (`OPTIONS`)
//!   are never answered with permission.

use axum::http::{header, HeaderMap, Method, StatusCode};
use std::net::{IpAddr, SocketAddr};

/// The accepted Hosts and Origins.
#[derive(Debug, Clone)]
pub struct Guard {
    bound: IpAddr,
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl Guard {
    /// For a listener bound to `bound`, with the configured extra names and origins.
    pub fn new(bound: SocketAddr, hosts: &[String], origins: &[String]) -> Guard {
        Guard {
            bound: bound.ip().to_canonical(),
            hosts: hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            origins: origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// `Ok` or the status and reason to refuse with.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("").to_ascii_lowercase();
            if !self.host_ok(&host) {
                return Err((
                    StatusCode::MISDIRECTED_REQUEST,
                    format!("Host {host:?} is not this webhook's; add it to [listen] allowed_hosts if it is"),
                ));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin
                .to_str()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_ascii_lowercase();
            if !self.origins.contains(&origin) {
                return Err((
                    StatusCode::FORBIDDEN,
                    "requests from web pages are refused (Origin not in [listen] allowed_origins)"
                        .into(),
                ));
            }
        }
        if method == Method::POST && !is_json(headers) {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send Content-Type: application/json".into(),
            ));
        }
        Ok(())
    }

    fn host_ok(&self, host: &str) -> bool {
        let name = strip_port(host);
        if let Ok(ip) = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            let ip = ip.to_canonical();
            return ip.is_loopback() || ip == self.bound || self.bound.is_unspecified();
        }
        name == "localhost" || self.hosts.iter().any(|h| h == name)
    }
}

/// `name` of `name:port`, `[v6]` of `[v6]:port`; a bare IPv6 address is kept whole.
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn hosts_origins_and_content_types() {
        let g = Guard::new(
            "127.0.0.1:19900".parse().expect("addr"),
            &["box.lan".into()],
            &["http://localhost:3000".into()],
        );
        let get = Method::GET;
        for ok in [
            "127.0.0.1:19900",
            "localhost",
            "LOCALHOST:1",
            "[::1]:19900",
            "box.lan:19900",
        ] {
            assert!(
                g.check(&get, &headers(&[(header::HOST, ok)])).is_ok(),
                "{ok}"
            );
        }
        for bad in ["evil.attacker.example:19900", "localhost.evil", "192.0.2.1"] {
            let e = g.check(&get, &headers(&[(header::HOST, bad)]));
            assert_eq!(
                e.map_err(|e| e.0),
                Err(StatusCode::MISDIRECTED_REQUEST),
                "{bad}"
            );
        }
        let e = g.check(&get, &headers(&[(header::ORIGIN, "https://evil.example")]));
        assert_eq!(e.map_err(|e| e.0), Err(StatusCode::FORBIDDEN));
        assert!(g
            .check(
                &get,
                &headers(&[(header::ORIGIN, "http://localhost:3000/")])
            )
            .is_ok());
        let post = Method::POST;
        let e = g.check(&post, &headers(&[(header::CONTENT_TYPE, "text/plain")]));
        assert_eq!(e.map_err(|e| e.0), Err(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        assert!(g
            .check(
                &post,
                &headers(&[(header::CONTENT_TYPE, "application/json; charset=utf-8")])
            )
            .is_ok());
        let any = Guard::new("0.0.0.0:1".parse().expect("addr"), &[], &[]);
        assert!(any
            .check(&get, &headers(&[(header::HOST, "192.0.2.1:1")]))
            .is_ok());
    }
}
