//! `inbox`, `inbox read|ack|rm [--read]`, `listen`.

use super::{out, Ctx};
use clap::{Args, Subcommand};
use clawlink::client::{Client, ClientError, Ended};
use clawlink::proto::{
    AckParams, ApiError, Count, Event, IdParam, InboxMessage, InboxQuery, ListenParams, Request,
};
use std::process::ExitCode;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InboxArgs {
    #[command(subcommand)]
    cmd: Option<InboxCmd>,
    /// Only unread messages.
    #[arg(long)]
    unread: bool,
    /// Only messages from this sender.
    #[arg(long)]
    from: Option<String>,
    /// Only messages from this source (webhook, relay, nexus, friend, a2a).
    #[arg(long)]
    source: Option<String>,
    /// Only the newest N.
    #[arg(long)]
    limit: Option<u32>,
}

#[derive(Subcommand)]
enum InboxCmd {
    /// Show one message and mark it read.
    Read {
        /// The message id (see `clawlink inbox`).
        id: u64,
    },
    /// Mark a message (or all) read.
    Ack {
        /// The message id (see `clawlink inbox`).
        id: Option<u64>,
        /// Mark every message read.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Delete a message, or every message already read (--read).
    Rm {
        /// The message id (see `clawlink inbox`).
        #[arg(required_unless_present = "read")]
        id: Option<u64>,
        /// Delete every message already read (makes room in a full inbox).
        #[arg(long, conflicts_with = "id")]
        read: bool,
    },
}

#[derive(Args)]
pub struct ListenArgs {
    /// Only messages from this source (webhook, relay, nexus, friend, a2a).
    #[arg(long)]
    pub(super) source: Option<String>,
}

fn line(m: &InboxMessage) -> String {
    let mark = if m.read { " " } else { "*" };
    format!(
        "{mark} {:>6}  {}  [{}] {}: {}",
        m.id, m.received_at, m.source, m.from, m.message
    )
}

/// Messages per request when listing; halved whenever a page would not fit in one reply.
const PAGE: u32 = 1000;

/// Lists what `q` selects, newest pages first (`before` = the oldest id so far), so that a
/// reply stays small however large the inbox is; returns everything oldest first.
fn list_paged(client: &mut Client, q: InboxQuery) -> Result<Vec<InboxMessage>, ClientError> {
    let want = q.limit.map(|l| l as usize);
    let (mut page, mut got) = (PAGE, 0usize);
    let mut pages: Vec<Vec<InboxMessage>> = Vec::new();
    let mut before = None;
    loop {
        let n = want.map_or(page, |w| page.min(u32::try_from(w - got).unwrap_or(page)));
        if n == 0 {
            break;
        }
        let req = Request::InboxList(InboxQuery {
            limit: Some(n),
            before,
            ..q.clone()
        });
        match client.call::<Vec<InboxMessage>>(&req, None) {
            Ok(list) => {
                let last = list.len() < n as usize;
                got += list.len();
                before = list.first().map(|m| m.id);
                pages.push(list);
                if last || before.is_none() {
                    break;
                }
            }
            Err(ClientError::Api(e)) if e.code == "too_large" && page > 1 => page /= 2,
            Err(e) => return Err(e),
        }
    }
    Ok(pages.into_iter().rev().flatten().collect())
}

pub fn inbox(ctx: &Ctx, a: InboxArgs) -> Result<ExitCode, ClientError> {
    let mut client = ctx.connect()?;
    match a.cmd {
        None => {
            let q = InboxQuery {
                unread: a.unread,
                from: a.from,
                source: a.source,
                limit: a.limit,
                before: None,
            };
            let list = list_paged(&mut client, q)?;
            if ctx.json {
                out::json(&list);
            } else if list.is_empty() {
                println!("no messages");
            } else {
                list.iter().for_each(|m| println!("{}", line(m)));
            }
        }
        Some(InboxCmd::Read { id }) => {
            let m: InboxMessage = client.call(&Request::InboxRead(IdParam { id }), None)?;
            if ctx.json {
                out::json(&m);
            } else {
                println!(
                    "id:       {}\nfrom:     {}\nsource:   {}\nreceived: {}\n\n{}",
                    m.id, m.from, m.source, m.received_at, m.message
                );
            }
        }
        Some(InboxCmd::Ack { id, all }) => {
            let c: Count = client.call(&Request::InboxAck(AckParams { id, all }), None)?;
            out::done(ctx, &c, &format!("{} marked read", c.count));
        }
        Some(InboxCmd::Rm { id: Some(id), .. }) => {
            let c: Count = client.call(&Request::InboxRemove(IdParam { id }), None)?;
            out::done(ctx, &c, &format!("message {id} deleted"));
        }
        Some(InboxCmd::Rm { id: None, .. }) => {
            let c: Count = client.call(&Request::InboxRemoveRead, None)?;
            out::done(ctx, &c, &format!("{} read messages deleted", c.count));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows the inbox until Ctrl-C. The daemon going away (shut down, crashed, restarted) is
/// an error, exit 1: a script that relies on `listen` must notice and start it again.
pub fn listen(ctx: &Ctx, a: ListenArgs) -> Result<ExitCode, ClientError> {
    let client = ctx.connect()?;
    if !ctx.json {
        eprintln!("listening for messages (Ctrl-C to stop)...");
    }
    let ended = client.subscribe(
        &Request::Listen(ListenParams { source: a.source }),
        |event| {
            if ctx.json {
                match &event {
                    Event::Message { message } => out::json_line(message),
                    other => out::json_line(other),
                }
            } else {
                match &event {
                    Event::Message { message } => println!("{}", line(message)),
                    Event::Lagged { missed } => eprintln!(
                        "(fell behind: {missed} messages not shown; see `clawlink inbox`)"
                    ),
                    Event::Shutdown => eprintln!("clawlinkd is shutting down"),
                }
            }
            use std::io::Write;
            std::io::stdout().flush().is_ok()
        },
    )?;
    match ended {
        Ended::Stopped => Ok(ExitCode::SUCCESS),
        Ended::Shutdown | Ended::Closed => Err(ClientError::Api(
            ApiError::new(
                "daemon_gone",
                if ended == Ended::Shutdown {
                    "clawlinkd shut down; listening stopped"
                } else {
                    "clawlinkd closed the connection; listening stopped"
                },
            )
            .with_hint("messages that arrive meanwhile wait in the inbox (`clawlink inbox --unread`); start clawlinkd and run `clawlink listen` again"),
        )),
    }
}
