//! The agent daemon's configuration file (TOML).
//!
//! Found at `--config`, `$CLAWLINK_CONFIG`, else `$XDG_CONFIG_HOME/clawlink/config.toml`.
//! A missing file at the default path or at `$CLAWLINK_CONFIG` means "all defaults" (the daemon
//! runs with no config at all, and a service unit can point at a file that may not exist); a
//! missing file named by `--config` is an error, since it is most likely a typo. Unknown keys
//! are errors that name the key; syntax errors give the line and column.
//!
//! SIGHUP re-reads the file ([`reload`]). Settings read at each use are applied at once; the
//! ones bound at start (the webhook's address, token and body cap, the gateway client's
//! timeouts, the relay ping interval, turning `[local_gateway]` on) keep their running value,
//! and the log names each of them as needing a restart.
//!
//! ```toml
//! [listen]                      # the inbound webhook (POST /message)
//! addr = "127.0.0.1:19900"      # "off" disables it
//! token = "..."                 # required when addr is not loopback (Authorization: Bearer);
//!                               # without it GET /messages is refused (use `clawlink inbox`)
//! allowed_hosts = ["box.lan"]   # Host names accepted besides localhost and IP addresses
//! allowed_origins = []          # browser Origins allowed to call it (default: none)
//! max_connections = 4096        # open connections at once (kept below the fd limit)
//! public_url = "https://box.example"  # where friends reach this daemon directly (POST /envelope);
//!                               # put in invites as https://box.example/envelope
//!
//! [local_gateway]               # deliver every inbound message into the local OpenClaw agent
//! url = "ws://127.0.0.1:18789"
//! token = "..."
//! method = "system-event"       # or wake | chat.send | agent
//! session = "agent:main:main"   # default: the gateway's main session
//!
//! [gateway]
//! idle_timeout_secs = 600       # close a warm connection to a peer after this long unused
//! request_timeout_secs = 15
//!
//! [outbox]
//! ttl_secs = 86400              # give up on an undeliverable message after a day
//!
//! [inbox]                       # caps; when reached, new messages are refused (webhook 507,
//! max_messages = 100000         # relay/Nexus messages stay on their server) until some are
//! max_bytes = 268435456         # deleted; --inbox-max-messages / --inbox-max-bytes override
//!
//! [relay]
//! ping_interval_secs = 30       # a link silent for 3 intervals is dead: reconnect
//!
//! [policy]                      # what inbound messages may reach the local agent (see `policy`)
//! verified = "deliver"          # senders the transport verified (friends)
//! unverified = "review"         # relay ids, Nexus members, seed clients
//! webhook = "notify"            # the local webhook; never above "deliver"
//! max_hops = 4                  # a message with this many hops only gets a notice
//! rate_per_minute = 10          # per sender into the agent; the excess becomes one notice
//! max_exchanges = 4             # consecutive agent-written exchanges, then notify until reset
//! max_content_chars = 16000     # content cap, with an explicit truncation line
//! hooks_token = "..."           # the local gateway's hooks.token (deliver and notify use its hooks)
//! hooks_path = "/hooks"
//!
//! [nexus]
//! url = "https://messaging.md"  # default server
//! poll_interval_secs = 3         # short-poll period of each joined session
//! long_poll = true              # use the server's long-poll when /health offers it
//!
//! [a2a]                         # see crate::config::a2a
//! ```

use crate::level::Level;
use clawlink::Secret;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub mod a2a;
pub mod reload;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Webhook listener.
    pub listen: ListenConfig,
    /// Local OpenClaw agent delivery.
    pub local_gateway: Option<LocalGatewayConfig>,
    /// Gateway client tuning.
    pub gateway: GatewayConfig,
    /// Outbox policy.
    pub outbox: OutboxConfig,
    /// Inbox caps.
    pub inbox: InboxConfig,
    /// Nexus client.
    pub nexus: NexusConfig,
    /// Relay client.
    pub relay: RelayConfig,
    /// The A2A endpoint and client.
    pub a2a: a2a::A2aConfig,
    /// Inbound policy.
    pub policy: PolicyConfig,
}

/// `[policy]`: default levels, limits, and the local gateway's hooks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Level of senders the transport verified.
    pub verified: Level,
    /// Level of everyone else.
    pub unverified: Level,
    /// Level of the local webhook (capped at `deliver`).
    pub webhook: Level,
    /// Hop count at which a message only gets a notice.
    pub max_hops: u32,
    /// Messages per sender per minute into the agent.
    pub rate_per_minute: u32,
    /// Consecutive agent-written exchanges before a conversation drops to notify.
    pub max_exchanges: u32,
    /// Content cap, characters.
    pub max_content_chars: usize,
    /// The local gateway's `hooks.token`.
    pub hooks_token: Option<Secret>,
    /// The local gateway's `hooks.path`.
    pub hooks_path: String,
}

impl Default for PolicyConfig {
    /// The engine's defaults (`crate::policy::Settings::default` reads them from here).
    fn default() -> Self {
        Self {
            verified: Level::Deliver,
            unverified: Level::Review,
            webhook: Level::Notify,
            max_hops: 4,
            rate_per_minute: 10,
            max_exchanges: 4,
            max_content_chars: 16_000,
            hooks_token: None,
            hooks_path: "/hooks".into(),
        }
    }
}

/// `[listen]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// `HOST:PORT`, or `off`.
    pub addr: String,
    /// Bearer token required on `POST /message` (mandatory off loopback).
    pub token: Option<Secret>,
    /// Largest accepted body, bytes.
    pub max_body: usize,
    /// `Host` names accepted besides `localhost` and IP addresses (DNS-rebinding defence).
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s allowed to call the webhook; any other `Origin` gets 403.
    pub allowed_origins: Vec<String>,
    /// Most connections open at once.
    pub max_connections: usize,
    /// The base URL friends reach this listener at (`POST {public_url}/envelope`), if any.
    pub public_url: Option<String>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:19900".into(),
            token: None,
            max_body: 64 * 1024,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_connections: 4096,
            public_url: None,
        }
    }
}

impl ListenConfig {
    /// The address to bind, or `None` when disabled.
    pub fn socket_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        if self.addr.eq_ignore_ascii_case("off") || self.addr.is_empty() {
            return Ok(None);
        }
        self.addr.parse().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "listen.addr {:?} is not HOST:PORT (e.g. 127.0.0.1:19900) or \"off\"",
                self.addr
            )
        })
    }
}

/// `[local_gateway]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalGatewayConfig {
    /// Gateway URL.
    pub url: String,
    /// Gateway token.
    #[serde(default)]
    pub token: Secret,
    /// Delivery method.
    #[serde(default = "default_method")]
    pub method: String,
    /// Session key (default: the gateway's main session).
    #[serde(default)]
    pub session: Option<String>,
}

fn default_method() -> String {
    "system-event".into()
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Close a warm connection after this many idle seconds.
    pub idle_timeout_secs: u64,
    /// Per-request timeout.
    pub request_timeout_secs: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 600,
            request_timeout_secs: 15,
        }
    }
}

/// `[outbox]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Default time to live of an outbound message.
    pub ttl_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self { ttl_secs: 86_400 }
    }
}

/// `[inbox]`: how much the inbox may hold (see [`crate::store::inbox_counts`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboxConfig {
    /// Most messages stored.
    pub max_messages: u64,
    /// Most bytes of stored messages.
    pub max_bytes: u64,
}

impl Default for InboxConfig {
    /// The store's defaults (`store::inbox_counts::DEFAULT_MAX_MESSAGES`, `DEFAULT_MAX_BYTES`:
    /// a test checks they agree).
    fn default() -> Self {
        Self {
            max_messages: 100_000,
            max_bytes: 256 << 20,
        }
    }
}

/// `[nexus]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NexusConfig {
    /// Default server.
    pub url: Option<String>,
    /// Seconds between polls of a joined session (short polling).
    pub poll_interval_secs: u64,
    /// Long-poll servers that offer it (`capabilities.longPoll` in `/health`); set false
    /// behind proxies that cut long requests.
    pub long_poll: bool,
}

impl Default for NexusConfig {
    fn default() -> Self {
        Self {
            url: None,
            poll_interval_secs: 3,
            long_poll: true,
        }
    }
}

/// `[relay]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Seconds between WebSocket pings to a relay; three silent intervals mean a dead link.
    pub ping_interval_secs: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            ping_interval_secs: 30,
        }
    }
}

impl Config {
    /// Reads `path`; a missing file gives the defaults unless `required` (it was named by
    /// `--config`), which makes it an error.
    pub fn load(path: &Path, required: bool) -> anyhow::Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "config {}: no such file (--config must name an existing file; \
                 drop the option to run with the defaults)",
                path.display()
            ),
            Err(e) => anyhow::bail!("config {}: {e}", path.display()),
        };
        let cfg =
            Self::parse(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text; an error says where: `line L, column C: what`.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => {
                let before = text.get(..span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("line {line}, column {column}: {}", e.message().trim_end())
            }
            None => e.message().trim_end().to_string(),
        })
    }

    /// Checks relations between fields.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(addr) = self.listen.socket_addr()? {
            let has_token = self.listen.token.as_ref().is_some_and(|t| !t.is_empty());
            if !crate::http::is_loopback(&addr) && !has_token {
                anyhow::bail!(
                    "listen.addr {addr} is reachable from other machines but no listen.token is set; \
                     set [listen] token = \"...\" (senders then use Authorization: Bearer) or bind 127.0.0.1"
                );
            }
        }
        if let Some(lg) = &self.local_gateway {
            if !(lg.url.starts_with("ws://") || lg.url.starts_with("wss://")) {
                anyhow::bail!(
                    "local_gateway.url {:?} must start with ws:// or wss://",
                    lg.url
                );
            }
        }
        Ok(())
    }
}

/// Where the config was looked for (for status and logs).
pub fn resolve_path(explicit: Option<&Path>) -> PathBuf {
    clawlink::paths::config_path(explicit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_and_policy_defaults_are_the_store_and_engine_defaults() {
        let inbox = InboxConfig::default();
        let caps = crate::store::inbox_counts::Caps::default();
        assert_eq!(
            (inbox.max_messages, inbox.max_bytes),
            (caps.max_messages, caps.max_bytes)
        );
        let set = crate::policy::Settings::default();
        let d = set.defaults;
        assert_eq!(
            (d.verified, d.unverified, d.webhook),
            (Level::Deliver, Level::Review, Level::Notify)
        );
        let l = set.limits;
        assert_eq!((l.max_hops, l.rate_per_minute, l.max_exchanges), (4, 10, 4));
        assert_eq!(set.max_content_chars, 16_000);
    }

    #[test]
    fn unknown_keys_are_named_and_public_listen_needs_a_token() {
        let err = toml::from_str::<Config>("[listen]\nadress = \"x\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("adress"), "{err}");
        let cfg: Config =
            toml::from_str("[listen]\naddr = \"0.0.0.0:19900\"\n").unwrap_or_default();
        assert!(cfg.validate().is_err());
        let cfg: Config = toml::from_str("[listen]\naddr = \"0.0.0.0:19900\"\ntoken = \"t\"\n")
            .unwrap_or_default();
        assert!(cfg.validate().is_ok());
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let err = Config::parse("[outbox]\nttl_secs = 5\n[gateway\n")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("line 3, column "), "{err}");
        let err = Config::parse("[outbox]\n  ttl_secs = \"x\"\n")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("line 2, column 14:"), "{err}");
    }
}
