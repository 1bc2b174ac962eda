//! `a2a peer add|list|remove`, `a2a tasks`, `a2a reply`, `a2a reject`: the inbound side of A2A.
//!
//! `a2a peer add NAME` makes the bearer token that peer presents to this daemon's `/a2a/v1`
//! and prints it once (`--json`: `{"name","token"}`); the daemon keeps only its hash.
//! `a2a reply TASK "answer"` completes an inbound task (TASK is its id or the inbox id of its
//! message); `a2a reject TASK --reason "..."` rejects it.

use super::{out, Ctx};
use clap::Subcommand;
use clawlink::client::ClientError;
use clawlink::proto::{A2aPeerToken, A2aPeerView, A2aRequest, A2aTaskView, Count, Request};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum A2aCmd {
    /// Peers allowed to call this daemon's A2A endpoint.
    #[command(subcommand)]
    Peer(PeerCmd),
    /// Inbound A2A tasks (newest last).
    Tasks {
        /// Only tasks not final yet.
        #[arg(long)]
        open: bool,
    },
    /// Answer an inbound task: it becomes completed, with the answer as its artifact.
    Reply {
        /// Task id, or the inbox id of its message.
        task: String,
        /// The answer.
        message: String,
    },
    /// Reject an inbound task, with a reason.
    Reject {
        /// Task id, or the inbox id of its message.
        task: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum PeerCmd {
    /// Allow a peer and print its new token, once.
    Add {
        /// Lowercase name: the sender name of its messages.
        name: String,
    },
    /// List peers (tokens are never shown; only their hashes are kept).
    List,
    /// Revoke a peer's token.
    Remove {
        /// Peer name.
        name: String,
    },
}

fn call<T: serde::de::DeserializeOwned>(ctx: &Ctx, r: A2aRequest) -> Result<T, ClientError> {
    ctx.connect()?.call(&Request::A2a(r), None)
}

fn print_task(ctx: &Ctx, t: &A2aTaskView) {
    out::done(
        ctx,
        t,
        &format!(
            "{}  {:<10} from {:<16} inbox {}  context {}",
            t.id, t.state, t.peer, t.inbox_id, t.context_id
        ),
    );
}

pub fn a2a(ctx: &Ctx, c: A2aCmd) -> Result<ExitCode, ClientError> {
    match c {
        A2aCmd::Peer(PeerCmd::Add { name }) => {
            let p: A2aPeerToken = call(ctx, A2aRequest::PeerAdd { name })?;
            if ctx.json {
                out::json(&serde_json::json!({"name": p.name, "token": p.token.expose()}));
            } else {
                println!("A2A peer {:?} added. Its token (shown only now; give it to the peer, which sends `Authorization: Bearer TOKEN`):", p.name);
                println!("{}", p.token.expose());
            }
        }
        A2aCmd::Peer(PeerCmd::List) => {
            let list: Vec<A2aPeerView> = call(ctx, A2aRequest::PeerList)?;
            if ctx.json {
                out::json(&list);
            } else if list.is_empty() {
                println!("no A2A peers; add one with `clawlink a2a peer add NAME`");
            }
            for p in list.iter().filter(|_| !ctx.json) {
                println!("{:<20} added {}", p.name, p.added_at);
            }
        }
        A2aCmd::Peer(PeerCmd::Remove { name }) => {
            let c: Count = call(ctx, A2aRequest::PeerRemove { name: name.clone() })?;
            out::done(
                ctx,
                &c,
                &format!("A2A peer {name:?} removed; its token no longer works"),
            );
        }
        A2aCmd::Tasks { open } => {
            let list: Vec<A2aTaskView> = call(ctx, A2aRequest::Tasks { open })?;
            if ctx.json {
                out::json(&list);
            } else if list.is_empty() {
                println!("no A2A tasks");
            } else {
                for t in &list {
                    print_task(ctx, t);
                }
            }
        }
        A2aCmd::Reply { task, message } => {
            let t: A2aTaskView = call(ctx, A2aRequest::Reply { task, message })?;
            print_task(ctx, &t);
        }
        A2aCmd::Reject { task, reason } => {
            let t: A2aTaskView = call(ctx, A2aRequest::Reject { task, reason })?;
            print_task(ctx, &t);
        }
    }
    Ok(ExitCode::SUCCESS)
}
