//! `review [approve|reject]`: messages held until their owner decides.

use super::{out, Ctx};
use clap::{Args, Subcommand};
use clawlink::client::ClientError;
use clawlink::proto::{Count, HeldMessage, Request, ReviewRequest};
use std::process::ExitCode;

#[derive(Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    cmd: Option<ReviewCmd>,
}

#[derive(Subcommand)]
enum ReviewCmd {
    /// Let a held message (or all of a sender's) reach the agent, once.
    Approve {
        /// Inbox id.
        #[arg(required_unless_present = "sender", conflicts_with = "sender")]
        id: Option<u64>,
        /// Every held message of this sender (KIND:ID).
        #[arg(long)]
        sender: Option<String>,
        /// Also deliver this sender's future messages (sets its level to deliver).
        #[arg(long)]
        always: bool,
    },
    /// Keep a held message away from the agent for good (it stays in the inbox).
    Reject {
        /// Inbox id.
        id: u64,
    },
}

/// Shortens a text for one listing line.
fn preview(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(60)
        .collect();
    if s.chars().count() > 60 {
        format!("{one}…")
    } else {
        one
    }
}

pub fn review(ctx: &Ctx, a: ReviewArgs) -> Result<ExitCode, ClientError> {
    let mut client = ctx.connect()?;
    match a.cmd {
        None => {
            let held: Vec<HeldMessage> =
                client.call(&Request::Review(ReviewRequest::List), None)?;
            if ctx.json {
                out::json(&held);
            } else if held.is_empty() {
                println!("nothing is held for review");
            } else {
                for h in &held {
                    let v = if h.verified { "verified" } else { "unverified" };
                    println!(
                        "{:>6}  {}  {} ({v})  {}",
                        h.id,
                        h.held_at,
                        h.sender,
                        preview(&h.message)
                    );
                }
                println!("approve with `clawlink review approve ID`, reject with `clawlink review reject ID`");
            }
        }
        Some(ReviewCmd::Approve { id, sender, always }) => {
            let r: Count = client.call(
                &Request::Review(ReviewRequest::Approve { id, sender, always }),
                None,
            )?;
            out::done(ctx, &r, &format!("{} message(s) approved", r.count));
        }
        Some(ReviewCmd::Reject { id }) => {
            let r: Count = client.call(&Request::Review(ReviewRequest::Reject { id }), None)?;
            out::done(
                ctx,
                &r,
                &format!("message {id} rejected; it stays in the inbox"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
