//! `send`, `ping`, `outbox`.

use super::secret_arg::TokenArgs;
use super::{out, Ctx};
use clap::Args;
use clawlink::client::ClientError;
use clawlink::proto::{
    Cancelled, DeliveryState, OutboxCancelParams, OutboxEntry, PingParams, PingReply, Request,
    SendParams, SendReply,
};
use std::process::ExitCode;

/// Exit code of a message accepted into the outbox but not delivered yet.
pub const EXIT_QUEUED: u8 = 3;

#[derive(Args)]
pub struct SendArgs {
    /// Contact name (see `clawlink contacts list`).
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    to: Option<String>,
    /// Gateway URL (ws://HOST:PORT) or relay://HOST:PORT/ID, instead of a contact; its token
    /// comes from --token, --token-file or $CLAWLINK_TOKEN.
    #[arg(long)]
    url: Option<String>,
    // The token for --url, or one that overrides the contact's.
    #[command(flatten)]
    token: TokenArgs,
    /// The text.
    #[arg(long)]
    message: String,
    /// Your name, shown to the peer.
    #[arg(long)]
    from: Option<String>,
    /// Gateway method: system-event (default), wake, chat.send, agent.
    #[arg(long)]
    method: Option<String>,
    /// Target session key (default: the peer's main session).
    #[arg(long)]
    session: Option<String>,
    /// Block until delivered or expired. To a friend, --wait=stored or --wait=delivered also
    /// waits for its signed receipt (--wait alone is --wait=sent: a server took it).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "sent",
          value_parser = ["sent", "stored", "delivered"], value_name = "STATE")]
    wait: Option<String>,
    /// Give up after this many seconds (default: outbox.ttl_secs, a day).
    #[arg(long)]
    ttl: Option<u64>,
}

#[derive(Args)]
pub struct PingArgs {
    /// Contact name (see `clawlink contacts list`).
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    to: Option<String>,
    /// Gateway URL (ws://HOST:PORT); its token comes from --token, --token-file or
    /// $CLAWLINK_TOKEN (without one, only reachability is checked).
    #[arg(long)]
    url: Option<String>,
    // The token for --url, or one that overrides the contact's.
    #[command(flatten)]
    token: TokenArgs,
}

/// Prints a send outcome and picks the exit code.
pub fn report(ctx: &Ctx, r: &SendReply) -> ExitCode {
    if ctx.json {
        out::json(r);
    }
    let (code, human) = match r.state {
        DeliveryState::Delivered => (ExitCode::SUCCESS, format!("delivered to {} ({}, id {})", r.target, r.transport, r.id)),
        DeliveryState::Queued => (
            ExitCode::from(EXIT_QUEUED),
            format!("not delivered yet: queued in the outbox (id {}); clawlinkd keeps retrying. See `clawlink outbox`.", r.id),
        ),
        DeliveryState::Failed => (ExitCode::FAILURE, format!("delivery failed (id {})", r.id)),
        DeliveryState::Expired => (ExitCode::FAILURE, format!("delivery expired (id {})", r.id)),
        DeliveryState::Cancelled => (ExitCode::FAILURE, format!("cancelled (id {})", r.id)),
    };
    if !ctx.json {
        if r.state == DeliveryState::Delivered {
            println!("{human}");
        } else {
            eprintln!("{human}");
        }
        if let Some(e) = &r.error {
            eprintln!("  {e}");
            if let Some(h) = &e.hint {
                eprintln!("  hint: {h}");
            }
        }
    }
    code
}

/// Prints a friend send that waited for a receipt: 0 once the receipt says `want` (or
/// more), 1 when the friend rejected it, 3 when it was sent but not confirmed in time.
fn report_receipt(ctx: &Ctx, r: &SendReply, want: &str) -> ExitCode {
    if ctx.json {
        out::json(r);
    }
    let peer = r.peer.as_deref().unwrap_or("");
    let (code, human) = match peer {
        "rejected" => (
            ExitCode::FAILURE,
            format!("{} rejected the message (id {})", r.target, r.id),
        ),
        "delivered" => (
            ExitCode::SUCCESS,
            format!("{} {peer} it (id {})", r.target, r.id),
        ),
        "stored" if want == "stored" => (
            ExitCode::SUCCESS,
            format!("{} {peer} it (id {})", r.target, r.id),
        ),
        _ => (
            ExitCode::from(EXIT_QUEUED),
            format!(
                "sent (id {}), but {} has not confirmed it {want} yet; see `clawlink outbox`",
                r.id, r.target
            ),
        ),
    };
    if !ctx.json {
        if code == ExitCode::SUCCESS {
            println!("{human}");
        } else {
            eprintln!("{human}");
        }
    }
    code
}

pub fn send(ctx: &Ctx, a: SendArgs) -> Result<ExitCode, ClientError> {
    let token = a.token.resolve(a.url.is_some())?;
    let params = SendParams {
        to: a.to,
        url: a.url,
        token,
        message: a.message,
        from: a.from,
        method: a.method,
        session: a.session,
        wait: a.wait.is_some(),
        wait_for: a.wait.clone().filter(|w| w != "sent"),
        ttl_secs: a.ttl,
    };
    let r: SendReply = ctx.connect()?.call(&Request::Send(params), None)?;
    match a.wait.as_deref() {
        Some(want @ ("stored" | "delivered")) if r.state == DeliveryState::Delivered => {
            Ok(report_receipt(ctx, &r, want))
        }
        _ => Ok(report(ctx, &r)),
    }
}

pub fn ping(ctx: &Ctx, a: PingArgs) -> Result<ExitCode, ClientError> {
    let token = a.token.resolve(a.url.is_some())?;
    let p = PingParams {
        to: a.to,
        url: a.url,
        token,
    };
    let r: PingReply = ctx.connect()?.call(&Request::Ping(p), None)?;
    let ok = r.reachable && r.auth_ok != Some(false) && r.error.is_none();
    if ctx.json {
        out::json(&r);
    } else {
        let rtt = r
            .rtt_ms
            .map(|v| format!("{v:.1} ms"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{}: {}",
            r.url,
            if r.reachable {
                "reachable"
            } else {
                "UNREACHABLE"
            }
        );
        match r.auth_ok {
            Some(true) => println!(
                "  auth ok, protocol {}, gateway {}, rtt {rtt}",
                r.protocol.unwrap_or(0),
                r.server_version.as_deref().unwrap_or("?")
            ),
            Some(false) => println!("  auth FAILED"),
            None if r.reachable => println!("  (no token: reachability only), rtt {rtt}"),
            None => {}
        }
        if let Some(e) = &r.error {
            eprintln!("  {e}");
            if let Some(h) = &e.hint {
                eprintln!("  hint: {h}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `clawlink outbox [cancel ...]`.
#[derive(Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    cmd: Option<OutboxCmd>,
}

#[derive(clap::Subcommand)]
enum OutboxCmd {
    /// Cancel pending messages: one by id, every one to a contact, or all of them.
    Cancel {
        /// The outbox id (from `send` or `clawlink outbox`).
        #[arg(required_unless_present_any = ["to", "all"], conflicts_with_all = ["to", "all"])]
        id: Option<String>,
        /// Every pending message to this contact name (or URL, as given to `send`).
        #[arg(long, conflicts_with = "all")]
        to: Option<String>,
        /// Every pending message.
        #[arg(long)]
        all: bool,
    },
}

pub fn outbox(ctx: &Ctx, a: OutboxArgs) -> Result<ExitCode, ClientError> {
    if let Some(OutboxCmd::Cancel { id, to, all }) = a.cmd {
        let p = OutboxCancelParams { id, to, all };
        let ended: Vec<Cancelled> = ctx.connect()?.call(&Request::OutboxCancel(p), None)?;
        if ctx.json {
            out::json(&ended);
        } else if ended.is_empty() {
            println!("nothing pending to cancel");
        } else {
            for c in &ended {
                println!("{}  {:?}", c.id, c.state);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let list: Vec<OutboxEntry> = ctx.connect()?.call(&Request::OutboxList, None)?;
    if ctx.json {
        out::json(&list);
    } else if list.is_empty() {
        println!("outbox is empty");
    } else {
        for e in &list {
            let err = e
                .last_error
                .as_deref()
                .map(|x| format!("  last error: {x}"))
                .unwrap_or_default();
            let peer = e
                .peer
                .as_deref()
                .map(|p| format!("  peer: {p}"))
                .unwrap_or_default();
            println!(
                "{}  {:<9?} {:<7} {} attempts {}  until {}{}{}",
                e.id, e.state, e.transport, e.to, e.attempts, e.deadline, peer, err
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
