//! Where push notifications may go.
//!
//! A peer that may send us tasks names the URL their final state is pushed to. Unchecked, that
//! makes this daemon a proxy into its own network: a push to `http://127.0.0.1:18789/...` (the
//! owner's gateway), `http://169.254.169.254/` (a cloud's metadata service) or a LAN host
//! would be a request from inside. So a push URL's host must resolve only to public addresses,
//! unless its `HOST:PORT` is listed in `[a2a] push_private_hosts` by the daemon's owner. The
//! check runs when the task is accepted (the caller gets -32602 with the reason) and again
//! before each delivery attempt, since a name can resolve elsewhere later.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Longest a push URL's name resolution may take.
const RESOLVE_DEADLINE: Duration = Duration::from_secs(5);

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        // 100.64.0.0/10 (carrier-grade NAT) and 0.0.0.0/8
        || (a == 100 && (b & 0xc0) == 64)
        || a == 0)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link local
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80)
}

/// Checks that `url` may receive a push: `Err` says why not.
pub async fn check(url: &str, allowed: &[String]) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "the push url is not a URL".to_string())?;
    let host = parsed
        .host_str()
        .ok_or_else(|| "the push url has no host".to_string())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let listed = allowed.iter().any(|a| {
        a.trim().eq_ignore_ascii_case(&format!("{host}:{port}"))
            || a.trim().eq_ignore_ascii_case(&format!("[{host}]:{port}"))
    });
    if listed {
        return Ok(());
    }
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            let found = tokio::time::timeout(
                RESOLVE_DEADLINE,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await
            .map_err(|_| format!("the push url's host {host:?} did not resolve in time"))?
            .map_err(|_| format!("the push url's host {host:?} does not resolve"))?;
            found.map(|a| a.ip()).collect()
        }
    };
    if addrs.is_empty() {
        return Err(format!("the push url's host {host:?} does not resolve"));
    }
    match addrs.iter().find(|ip| !is_public(**ip)) {
        Some(ip) => Err(format!(
            "the push url's host {host:?} is a loopback, private or link-local address ({ip}); \
             the daemon's owner can allow \"{host}:{port}\" in [a2a] push_private_hosts"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.50",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = private.parse().expect("ip");
            assert!(!is_public(ip), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            let ip: IpAddr = public.parse().expect("ip");
            assert!(is_public(ip), "{public}");
        }
    }

    #[tokio::test]
    async fn private_hosts_need_the_owners_allowance() {
        let none: Vec<String> = Vec::new();
        assert!(check("http://127.0.0.1:9/hook", &none).await.is_err());
        assert!(check("http://localhost:9/hook", &none).await.is_err());
        assert!(check("http://[::1]:9/hook", &none).await.is_err());
        assert!(check("http://169.254.169.254/latest", &none).await.is_err());
        let allowed = vec!["127.0.0.1:9".to_string()];
        assert!(check("http://127.0.0.1:9/hook", &allowed).await.is_ok());
        assert!(check("http://127.0.0.1:10/hook", &allowed).await.is_err());
        assert!(check("https://1.1.1.1/hook", &none).await.is_ok());
    }
}
