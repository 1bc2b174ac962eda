//! What a SIGHUP can change while the daemon runs, and what needs a restart.
//!
//! Some settings are read at each use (`[outbox]`, `[inbox]`, `[nexus]`, the fields of an enabled
//! `[local_gateway]`): a reload applies them at once. Others are bound when the daemon starts:
//! the webhook's socket, token and body cap, the gateway client's timeouts, the relay ping
//! interval, and whether the local-agent worker runs at all. For those, [`merge`] keeps the
//! running value in the effective config (so what the daemon reports is what it does) and names
//! each changed key, which the daemon logs as needing a restart. A later reload that still
//! differs names it again, until the daemon is restarted.

use super::Config;

/// The outcome of a reload.
#[derive(Debug)]
pub struct Reloaded {
    /// The configuration now in effect: the new file, except keys bound at start.
    pub effective: Config,
    /// Keys whose new value in the file takes effect only after a restart.
    pub restart_needed: Vec<&'static str>,
    /// Keys whose new value took effect now.
    pub applied: Vec<&'static str>,
}

/// Merges a freshly loaded `new` file into the `running` configuration.
pub fn merge(running: &Config, new: Config) -> Reloaded {
    let mut effective = new;
    let mut restart_needed = Vec::new();
    let mut applied = Vec::new();
    // Bound at start: keep the running value and say so.
    macro_rules! bound {
        ($($key:literal => $($field:ident).+),* $(,)?) => {$(
            if effective.$($field).+ != running.$($field).+ {
                effective.$($field).+ = running.$($field).+.clone();
                restart_needed.push($key);
            }
        )*};
    }
    bound!(
        "listen.addr" => listen.addr,
        "listen.token" => listen.token,
        "listen.max_body" => listen.max_body,
        "gateway.idle_timeout_secs" => gateway.idle_timeout_secs,
        "gateway.request_timeout_secs" => gateway.request_timeout_secs,
        "relay.ping_interval_secs" => relay.ping_interval_secs,
    );
    // The local-agent worker starts only when the section exists at start; once running it
    // reads the section at each delivery (and stops delivering when it is removed).
    if running.local_gateway.is_none() && effective.local_gateway.is_some() {
        effective.local_gateway = None;
        restart_needed.push("local_gateway");
    } else if effective.local_gateway != running.local_gateway {
        applied.push("local_gateway");
    }
    // Read at each use.
    macro_rules! live {
        ($($key:literal => $($field:ident).+),* $(,)?) => {$(
            if effective.$($field).+ != running.$($field).+ {
                applied.push($key);
            }
        )*};
    }
    live!(
        "outbox.ttl_secs" => outbox.ttl_secs,
        "inbox.max_messages" => inbox.max_messages,
        "inbox.max_bytes" => inbox.max_bytes,
        "nexus.url" => nexus.url,
        "nexus.poll_interval_secs" => nexus.poll_interval_secs,
        "nexus.long_poll" => nexus.long_poll,
    );
    Reloaded {
        effective,
        restart_needed,
        applied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn bound_keys_keep_their_running_value_and_are_named() {
        let running = parse("[listen]\ntoken = \"old\"\n[outbox]\nttl_secs = 10\n");
        let r = merge(
            &running,
            parse("[listen]\ntoken = \"new\"\n[outbox]\nttl_secs = 20\n[local_gateway]\nurl = \"ws://127.0.0.1:1\"\n"),
        );
        assert_eq!(r.restart_needed, vec!["listen.token", "local_gateway"]);
        assert_eq!(r.applied, vec!["outbox.ttl_secs"]);
        assert_eq!(r.effective.listen.token, running.listen.token);
        assert!(r.effective.local_gateway.is_none());
        assert_eq!(r.effective.outbox.ttl_secs, 20);
        // Unchanged: nothing to say.
        let again = merge(
            &r.effective,
            parse("[listen]\ntoken = \"old\"\n[outbox]\nttl_secs = 20\n"),
        );
        assert!(again.restart_needed.is_empty() && again.applied.is_empty());
    }
}
