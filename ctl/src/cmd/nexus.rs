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

#[derive(Subcommand)]
pub enum NexusCmd {
    /// Create a session (with --creator-agent-id, join it and keep its key).
    Create {
        #[arg(long)]
        ttl: Option<u64>,
        #[arg(long)]
        max_agents: Option<u32>,
        #[arg(long)]
        greeting: Option<String>,
        #[arg(long)]
        creator_agent_id: Option<String>,
        #[arg(long)]
        url: Option<String>,
    },
    /// Session status.
    Status {
        sid: String,
        #[arg(long)]
        url: Option<String>,
    },
    /// Join a session; the daemon then polls it continuously.
    Join {
        sid: String,
        #[arg(long)]
        agent_id: String,
        #[arg(long)]
        url: Option<String>,
    },
    /// Leave a session (frees the slot, forgets local state).
    Leave { sid: String },
    /// Generate a pairing code and link.
    Pair {
        sid: String,
        #[arg(long)]
        url: Option<String>,
    },
    /// Claim a pairing code (joins the session).
    Claim {
        code: String,
        #[arg(long)]
        agent_id: String,
        #[arg(long)]
        url: Option<String>,
    },
    /// Pairing code state.
    PairStatus {
        code: String,
        #[arg(long)]
        url: Option<String>,
    },
    /// Send a message (agent id and session key added automatically).
    Send { sid: String, text: String },
    /// Poll messages (without --after: from the stored cursor, which advances).
    Poll {
        sid: String,
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        members: bool,
    },
    /// Renew the session's TTL.
    Renew {
        sid: String,
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
