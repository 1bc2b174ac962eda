//! `relay setup|register|send|poll|users|listen`: the seed's `relay-client.js` commands.

use super::secret_arg::{SecretSource, RELAY_SECRET_ENV};
use super::usage_with_hint;
use super::{out, Ctx};
use clap::Subcommand;
use clawlink::client::ClientError;
use clawlink::proto::{ApiError, InboxMessage, RelayRequest, Request, SendReply, StatusReply};
use std::path::PathBuf;
use std::process::ExitCode;

/// `--relay URL` of the relay commands.
const RELAY_HELP: &str =
    "Relay server URL, e.g. http://relay.example:3900 [default: the one saved by `relay setup`]";

#[derive(Subcommand)]
pub enum RelayCmd {
    /// Save the default relay server URL.
    Setup {
        /// Relay server URL, e.g. http://relay.example:3900.
        #[arg(long)]
        relay: String,
    },
    /// Register an id on the relay; the daemon then stays connected and stores every message.
    /// The secret comes from --secret, --secret-file or $CLAWLINK_RELAY_SECRET.
    Register {
        /// The id others send to (relay://HOST:PORT/ID).
        #[arg(long)]
        id: String,
        /// Display name shown in `relay users`.
        #[arg(long, default_value = "")]
        name: String,
        /// The id's secret; `-` reads it from stdin. A value typed here shows in `ps`: prefer
        /// --secret-file, `--secret -` or $CLAWLINK_RELAY_SECRET
        #[arg(long, value_name = "SECRET|-")]
        secret: Option<String>,
        /// Read the secret from the first line of FILE
        #[arg(long, value_name = "FILE", conflicts_with = "secret")]
        secret_file: Option<PathBuf>,
        #[arg(long, help = RELAY_HELP)]
        relay: Option<String>,
    },
    /// Send a message to an id on the relay.
    Send {
        /// The recipient's id (see `clawlink relay users`).
        #[arg(long)]
        to: String,
        /// The text.
        #[arg(long)]
        message: String,
        #[arg(long, help = RELAY_HELP)]
        relay: Option<String>,
        /// Block until the relay accepted it or it expired.
        #[arg(long)]
        wait: bool,
    },
    /// Fetch messages queued on the relay into the inbox and show them.
    Poll {
        #[arg(long, help = RELAY_HELP)]
        relay: Option<String>,
    },
    /// List the relay's users.
    Users {
        #[arg(long, help = RELAY_HELP)]
        relay: Option<String>,
    },
    /// Follow relay messages live (they are also stored in the inbox). Blocks until Ctrl-C;
    /// exits 1 if the daemon goes away.
    Listen,
}

pub fn relay(ctx: &Ctx, c: RelayCmd) -> Result<ExitCode, ClientError> {
    let req = match c {
        RelayCmd::Listen => {
            // Nothing can arrive without an identity: say so instead of waiting forever.
            let s: StatusReply = ctx.connect()?.call(&Request::Status, None)?;
            let relays: Vec<&str> = s
                .connections
                .iter()
                .filter(|c| c.kind == "relay")
                .map(|c| c.target.as_str())
                .collect();
            if relays.is_empty() {
                return Err(ClientError::Api(
                    ApiError::new(
                        "no_identity",
                        "no relay identity is registered, so no relay message can arrive: run `clawlink relay register --relay URL --id ID` first (see its --help for the secret)",
                    ),
                ));
            }
            if !ctx.json {
                eprintln!("listening on {}", relays.join(", "));
            }
            return super::inbox::listen(ctx, super::inbox::ListenArgs::for_source("relay"));
        }
        RelayCmd::Setup { relay } => RelayRequest::Setup { relay },
        RelayCmd::Register {
            id,
            name,
            secret,
            secret_file,
            relay,
        } => {
            let secret = SecretSource {
                value: secret,
                file: secret_file,
                env: Some(RELAY_SECRET_ENV),
                flag: "--secret",
            }
            .resolve()?
            .ok_or_else(|| {
                usage_with_hint(
                    "relay register needs the id's secret",
                    "give --secret-file FILE, --secret - (stdin) or $CLAWLINK_RELAY_SECRET",
                )
            })?;
            RelayRequest::Register {
                relay,
                id,
                name,
                secret,
            }
        }
        RelayCmd::Send {
            to,
            message,
            relay,
            wait,
        } => {
            let r: SendReply = ctx.connect()?.call(
                &Request::Relay(RelayRequest::Send {
                    relay,
                    to,
                    message,
                    wait,
                }),
                None,
            )?;
            return Ok(super::send::report(ctx, &r));
        }
        RelayCmd::Poll { relay } => {
            let list: Vec<InboxMessage> = ctx
                .connect()?
                .call(&Request::Relay(RelayRequest::Poll { relay }), None)?;
            if ctx.json {
                out::json(&list);
            } else if list.is_empty() {
                println!("no new messages");
            } else {
                for m in &list {
                    println!("[{}] {}: {}", m.received_at, m.from, m.message);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        RelayCmd::Users { relay } => RelayRequest::Users { relay },
    };
    let kind = match &req {
        RelayRequest::Setup { .. } => "setup",
        RelayRequest::Register { .. } => "register",
        _ => "users",
    };
    let v = ctx.connect()?.call_raw(&Request::Relay(req), None)?;
    if ctx.json {
        out::json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    match kind {
        "setup" => println!("relay set to {}", s("relay")),
        "register" => println!(
            "registered {} ({}) on {}; clawlinkd stays connected and stores every message",
            s("id"),
            s("name"),
            s("relay")
        ),
        _ => {
            let users = v
                .get("users")
                .and_then(|u| u.as_array())
                .cloned()
                .unwrap_or_default();
            println!("{} users", users.len());
            for u in users {
                let online = if u.get("online").and_then(|o| o.as_bool()).unwrap_or(false) {
                    "online"
                } else {
                    "offline"
                };
                println!(
                    "  {:<20} {:<20} {online}",
                    u.get("id").and_then(|x| x.as_str()).unwrap_or(""),
                    u.get("name").and_then(|x| x.as_str()).unwrap_or("")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl super::inbox::ListenArgs {
    /// Listen to one source only.
    pub fn for_source(source: &str) -> Self {
        Self {
            source: Some(source.to_string()),
        }
    }
}
