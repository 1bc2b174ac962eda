//! `policy list|set|unset|reset`: which inbound senders may reach the local agent, and how.

use super::{out, Ctx};
use clap::Subcommand;
use clawlink::client::ClientError;
use clawlink::proto::{Count, PolicyList, PolicyRequest, PolicySetReply, Request};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Rules, defaults, limits and running exchange counts.
    List,
    /// Set a sender's level: block, review, notify, deliver or converse. SENDER is KIND:ID
    /// (relay:alice, nexus:SID/bob, friend:carol, webhook:local) or KIND:* for a whole kind.
    /// Messages already held from it follow the new level.
    Set {
        /// The sender, KIND:ID as `policy list` shows it (e.g. `relay:alice`, `webhook:local`).
        sender: String,
        /// block, review, notify, deliver or converse.
        level: String,
    },
    /// Remove a sender's rule; its default applies again.
    Unset {
        /// The sender.
        sender: String,
    },
    /// Reset a sender's count of consecutive agent-written exchanges (after the cap).
    Reset {
        /// The sender.
        sender: String,
    },
}

pub fn policy(ctx: &Ctx, c: PolicyCmd) -> Result<ExitCode, ClientError> {
    let mut client = ctx.connect()?;
    match c {
        PolicyCmd::List => {
            let l: PolicyList = client.call(&Request::Policy(PolicyRequest::List), None)?;
            if ctx.json {
                out::json(&l);
                return Ok(ExitCode::SUCCESS);
            }
            println!("defaults:");
            for (k, v) in &l.defaults {
                println!("  {k:<12} {v}");
            }
            println!("rules:{}", if l.rules.is_empty() { " none" } else { "" });
            for r in &l.rules {
                println!("  {:<40} {}", r.sender, r.level);
            }
            let limits: Vec<String> = l.limits.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("limits: {}", limits.join(" "));
            for (s, n) in &l.exchanges {
                println!("exchanges: {s} {n}");
            }
        }
        PolicyCmd::Set { sender, level } => {
            let r: PolicySetReply =
                client.call(&Request::Policy(PolicyRequest::Set { sender, level }), None)?;
            let released = if r.released > 0 {
                format!("; {} held message(s) released", r.released)
            } else {
                String::new()
            };
            out::done(ctx, &r, &format!("{} → {}{released}", r.sender, r.level));
        }
        PolicyCmd::Unset { sender } => {
            let r: Count = client.call(&Request::Policy(PolicyRequest::Unset { sender }), None)?;
            out::done(
                ctx,
                &r,
                if r.count > 0 {
                    "rule removed"
                } else {
                    "there was no such rule"
                },
            );
        }
        PolicyCmd::Reset { sender } => {
            let r: Count = client.call(&Request::Policy(PolicyRequest::Reset { sender }), None)?;
            out::done(ctx, &r, &format!("exchange count reset (was {})", r.count));
        }
    }
    Ok(ExitCode::SUCCESS)
}
