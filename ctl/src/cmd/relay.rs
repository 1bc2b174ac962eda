//! `relay setup|register|send|poll|users|listen`: the seed's `relay-client.js` commands.

use super::{out, Ctx};
use clap::Subcommand;
use clawlink::client::ClientError;
use clawlink::proto::{InboxMessage, RelayRequest, Request, SendReply};
use clawlink::Secret;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum RelayCmd {
    /// Save the default relay server URL.
    Setup {
        #[arg(long)]
        relay: String,
    },
    /// Register an id on the relay; the daemon then stays connected and stores every message.
    Register {
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        secret: String,
        #[arg(long)]
        relay: Option<String>,
    },
    /// Send a message to an id on the relay.
    Send {
        #[arg(long)]
        to: String,
        #[arg(long)]
        message: String,
        #[arg(long)]
        relay: Option<String>,
        /// Block until the relay accepted it or it expired.
        #[arg(long)]
        wait: bool,
    },
    /// Fetch messages queued on the relay into the inbox and show them.
    Poll {
        #[arg(long)]
        relay: Option<String>,
    },
    /// List the relay's users.
    Users {
        #[arg(long)]
        relay: Option<String>,
    },
    /// Follow relay messages live (they are also stored in the inbox).
    Listen,
}

pub fn relay(ctx: &Ctx, c: RelayCmd) -> Result<ExitCode, ClientError> {
    let mut client = ctx.connect()?;
    let req = match c {
        RelayCmd::Listen => {
            return super::inbox::listen(ctx, super::inbox::ListenArgs::for_source("relay"));
        }
        RelayCmd::Setup { relay } => RelayRequest::Setup { relay },
        RelayCmd::Register {
            id,
            name,
            secret,
            relay,
        } => RelayRequest::Register {
            relay,
            id,
            name,
            secret: Secret::new(secret),
        },
        RelayCmd::Send {
            to,
            message,
            relay,
            wait,
        } => {
            let r: SendReply = client.call(
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
            let list: Vec<InboxMessage> =
                client.call(&Request::Relay(RelayRequest::Poll { relay }), None)?;
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
    let v = client.call_raw(&Request::Relay(req), None)?;
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
