//! `nexus ...`: the NexusMessaging protocol CLI's commands, through the daemon.
//!
//! Conventions of the protocol's own CLI, kept so scripts work unchanged: stdout carries JSON
//! only (the server's JSON on success; on an HTTP error the server's error JSON and exit code
//! 1; local errors as `{"error":"..."}`), human tips go to stderr. Server: `--url`, else
//! `$NEXUS_URL`, else the daemon's saved default, else `https://messaging.md`.

use super::Ctx;
use clap::Subcommand;
use clawlink::client::ClientError;
use clawlink::proto::{NexusReply, NexusRequest, Request};
use std::process::ExitCode;

/// `--url` of the Nexus commands.
const URL_HELP: &str =
    "Nexus server [default: $NEXUS_URL, else [nexus] url in the config, else https://messaging.md]";
/// The session id argument.
const SID_HELP: &str = "Session id (see `clawlink nexus sessions`)";

#[derive(Subcommand)]
pub enum NexusCmd {
    /// Create a session (with --creator-agent-id, join it and keep its key).
    Create {
        /// Session lifetime in seconds [default: the server's].
        #[arg(long)]
        ttl: Option<u64>,
        /// Most agents that may join [default: the server's].
        #[arg(long)]
        max_agents: Option<u32>,
        /// First message of the session, shown to whoever joins.
        #[arg(long)]
        greeting: Option<String>,
        /// Join the new session as this agent id (the daemon then polls it).
        #[arg(long)]
        creator_agent_id: Option<String>,
        #[arg(long, help = URL_HELP)]
        url: Option<String>,
    },
    /// Session status.
    Status {
        #[arg(help = SID_HELP)]
        sid: String,
        #[arg(long, help = URL_HELP)]
        url: Option<String>,
    },
    /// Join a session; the daemon then polls it continuously.
    Join {
        #[arg(help = SID_HELP)]
        sid: String,
        /// Your agent id in the session.
        #[arg(long)]
        agent_id: String,
        #[arg(long, help = URL_HELP)]
        url: Option<String>,
    },
    /// Leave a session (frees the slot, forgets local state).
    Leave {
        #[arg(help = SID_HELP)]
        sid: String,
    },
    /// Generate a pairing code and link.
    Pair {
        #[arg(help = SID_HELP)]
        sid: String,
        #[arg(long, help = URL_HELP)]
        url: Option<String>,
    },
    /// Claim a pairing code (joins the session).
    Claim {
        /// The pairing code, e.g. PEARL-FOCAL-S5SJV.
        code: String,
        /// Your agent id in the session.
        #[arg(long)]
        agent_id: String,
        #[arg(long, help = URL_HELP)]
        url: Option<String>,
    },
    /// Pairing code state.
    PairStatus {
        /// The pairing code.
        code: String,
        #[arg(long, help = URL_HELP)]
        url: Option<String>,
    },
    /// Send a message (agent id and session key added automatically).
    Send {
        #[arg(help = SID_HELP)]
        sid: String,
        /// The text.
        text: String,
    },
    /// Poll messages (without --after: from the stored cursor, which advances).
    Poll {
        #[arg(help = SID_HELP)]
        sid: String,
        /// Only messages after this cursor (the stored cursor is left alone).
        #[arg(long)]
        after: Option<String>,
        /// Include the session's members in the answer.
        #[arg(long)]
        members: bool,
    },
    /// Renew the session's TTL.
    Renew {
        #[arg(help = SID_HELP)]
        sid: String,
        /// New lifetime in seconds [default: the session's].
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Sessions the daemon keeps joined.
    Sessions,
}

fn url_or_env(url: Option<String>) -> Option<String> {
    url.or_else(|| std::env::var("NEXUS_URL").ok().filter(|u| !u.is_empty()))
}

pub fn nexus(ctx: &Ctx, c: NexusCmd) -> Result<ExitCode, ClientError> {
    let req = match c {
        NexusCmd::Create {
            ttl,
            max_agents,
            greeting,
            creator_agent_id,
            url,
        } => NexusRequest::Create {
            url: url_or_env(url),
            ttl,
            max_agents,
            greeting,
            creator_agent_id,
        },
        NexusCmd::Status { sid, url } => NexusRequest::Status {
            url: url_or_env(url),
            sid,
        },
        NexusCmd::Join { sid, agent_id, url } => NexusRequest::Join {
            url: url_or_env(url),
            sid,
            agent_id,
        },
        NexusCmd::Leave { sid } => NexusRequest::Leave { sid },
        NexusCmd::Pair { sid, url } => NexusRequest::Pair {
            url: url_or_env(url),
            sid,
        },
        NexusCmd::Claim {
            code,
            agent_id,
            url,
        } => NexusRequest::Claim {
            url: url_or_env(url),
            code,
            agent_id,
        },
        NexusCmd::PairStatus { code, url } => NexusRequest::PairStatus {
            url: url_or_env(url),
            code,
        },
        NexusCmd::Send { sid, text } => NexusRequest::Send { sid, text },
        NexusCmd::Poll {
            sid,
            after,
            members,
        } => NexusRequest::Poll {
            sid,
            after,
            members,
        },
        NexusCmd::Renew { sid, ttl } => NexusRequest::Renew { sid, ttl },
        NexusCmd::Sessions => NexusRequest::Sessions,
    };
    let _ = ctx.json; // stdout is always JSON here
    let reply: Result<NexusReply, ClientError> = ctx
        .connect()
        .and_then(|mut c| c.call(&Request::Nexus(req), None));
    match reply {
        Ok(r) => {
            println!(
                "{}",
                serde_json::to_string(&r.body).unwrap_or_else(|_| "{}".into())
            );
            for tip in &r.tips {
                eprintln!("{tip}");
            }
            let failed = r.status >= 400 || (r.status == 0 && r.body.get("error").is_some());
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(e) => {
            let msg = match &e {
                ClientError::Api(a) => a.message.clone(),
                other => other.to_string(),
            };
            println!("{}", serde_json::json!({ "error": msg }));
            Ok(ExitCode::FAILURE)
        }
    }
}
