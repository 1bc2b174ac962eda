//! `friend invite|accept|list|verify|remove|accept-key|seal|open|receipt`.

use super::{out, Ctx};
use clap::Subcommand;
use clawlink::client::ClientError;
use clawlink::proto::{
    AcceptReply, ApiError, Count, FriendRequest, FriendView, InviteReply, OpenReply, ReceiptView,
    Request, SealedEnvelope,
};
use std::io::Read;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum FriendCmd {
    /// Print a single-use invite for one friend.
    Invite {
        /// An address to put in the invite (repeatable; default: this daemon's addresses).
        #[arg(long = "via", value_name = "ADDRESS")]
        via: Vec<String>,
        /// Validity: 90s, 15m, 2h, 1d [default: 15m].
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<u64>,
        /// Name to give whoever accepts it.
        #[arg(long)]
        name: Option<String>,
    },
    /// Accept an invite and pin the inviter's keys under NAME.
    Accept {
        /// The invite (cli1:...), or - to read it from stdin.
        invite: String,
        /// The name you will use for this friend (`clawlink send --to NAME`).
        #[arg(long)]
        name: String,
    },
    /// Friends, their safety numbers and key-change state.
    List,
    /// Record that the safety numbers were compared out of band.
    Verify {
        /// The friend.
        name: String,
    },
    /// Remove a friend.
    Remove {
        /// The friend.
        name: String,
    },
    /// Accept a friend's changed key (compare the new safety number first).
    AcceptKey {
        /// The friend.
        name: String,
    },
    /// Seal a message to a friend and print the envelope (without sending it).
    Seal {
        /// The friend it is for.
        name: String,
        /// The text to seal.
        #[arg(long)]
        message: String,
    },
    /// Open an envelope received by other means (cle1:..., or - for stdin).
    Open {
        /// The envelope (cle1:...), or - to read it from stdin.
        envelope: String,
    },
    /// The latest signed receipt for a message sent to a friend.
    Receipt {
        /// The message id the envelope carried.
        id: String,
    },
}

/// Parses `90`, `90s`, `15m`, `2h`, `1d` into seconds.
fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 90s, 15m, 2h, 1d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?}: too long"))
}

fn arg_or_stdin(v: String) -> Result<String, ClientError> {
    if v != "-" {
        return Ok(v);
    }
    let mut s = String::new();
    std::io::stdin()
        .take(1024 * 1024)
        .read_to_string(&mut s)
        .map_err(|e| ClientError::Api(ApiError::new("bad_input", format!("stdin: {e}"))))?;
    Ok(s.trim().to_string())
}

fn print_friend(f: &FriendView) {
    let verified = if f.verified {
        "verified"
    } else {
        "not verified"
    };
    println!(
        "{:<20} {}  ({verified}, epoch {})",
        f.name, f.safety_number, f.epoch
    );
    if let Some(n) = &f.new_safety_number {
        println!(
            "{:<20} KEY CHANGED without the old key's signature: new safety number {n}; {} held; `clawlink friend accept-key {}` once compared",
            "", f.held, f.name
        );
    }
}

pub fn friend(ctx: &Ctx, cmd: FriendCmd) -> Result<ExitCode, ClientError> {
    let mut client = ctx.connect()?;
    let call = |c: FriendRequest| Request::Friend(c);
    match cmd {
        FriendCmd::Invite { via, ttl, name } => {
            let r: InviteReply = client.call(
                &call(FriendRequest::Invite {
                    via,
                    ttl_secs: ttl,
                    name,
                }),
                None,
            )?;
            if ctx.json {
                out::json(
                    &serde_json::json!({"invite": r.invite, "expires_at": r.expires_at, "addresses": r.addresses}),
                );
            } else {
                println!("{}", r.invite);
                eprintln!(
                    "single use, valid until {}; give it to one friend over a channel you trust",
                    r.expires_at
                );
            }
        }
        FriendCmd::Accept { invite, name } => {
            let invite = arg_or_stdin(invite)?;
            let r: AcceptReply =
                client.call(&call(FriendRequest::Accept { invite, name }), None)?;
            if ctx.json {
                out::json(&r);
            } else {
                println!(
                    "friend {:?} pinned; safety number {}",
                    r.friend.name, r.friend.safety_number
                );
                println!(
                    "deliver this accept to the inviter ({}):",
                    r.accept.addresses.join(", ")
                );
                println!("{}", r.accept.envelope);
            }
        }
        FriendCmd::List => {
            let list: Vec<FriendView> = client.call(&call(FriendRequest::List), None)?;
            if ctx.json {
                out::json(&list);
            } else if list.is_empty() {
                println!("no friends; `clawlink friend invite` makes an invite, `clawlink friend accept` takes one");
            }
            if !ctx.json {
                list.iter().for_each(print_friend);
            }
        }
        FriendCmd::Verify { name } => {
            let f: FriendView = client.call(&call(FriendRequest::Verify { name }), None)?;
            out::done(
                ctx,
                &f,
                &format!("{:?} marked verified ({})", f.name, f.safety_number),
            );
        }
        FriendCmd::Remove { name } => {
            let c: Count =
                client.call(&call(FriendRequest::Remove { name: name.clone() }), None)?;
            out::done(ctx, &c, &format!("friend {name:?} removed"));
        }
        FriendCmd::AcceptKey { name } => {
            let r: Vec<OpenReply> =
                client.call(&call(FriendRequest::AcceptKey { name: name.clone() }), None)?;
            out::done(
                ctx,
                &r,
                &format!(
                    "new key of {name:?} accepted; {} held envelopes opened",
                    r.len()
                ),
            );
        }
        FriendCmd::Seal { name, message } => {
            let r: SealedEnvelope =
                client.call(&call(FriendRequest::Seal { name, message }), None)?;
            if ctx.json {
                out::json(&r);
            } else {
                println!("{}", r.envelope);
            }
        }
        FriendCmd::Open { envelope } => {
            let envelope = arg_or_stdin(envelope)?;
            let r: OpenReply = client.call(&call(FriendRequest::Open { envelope }), None)?;
            let rejected = r.outcome == "rejected";
            let human = format!(
                "{}{}{}",
                r.outcome,
                r.friend
                    .as_deref()
                    .map(|f| format!(" from {f}"))
                    .unwrap_or_default(),
                r.status
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            );
            if ctx.json {
                out::json(&r);
            } else if rejected {
                eprintln!(
                    "clawlink: envelope refused: {}",
                    r.status.as_deref().unwrap_or("?")
                );
            } else {
                println!("{human}");
            }
            if rejected {
                return Ok(ExitCode::FAILURE);
            }
        }
        FriendCmd::Receipt { id } => {
            let r: Option<ReceiptView> = client.call(&call(FriendRequest::Receipt { id }), None)?;
            match &r {
                Some(v) => out::done(
                    ctx,
                    &r,
                    &format!("{} by {} at {}", v.status, v.friend, v.at),
                ),
                None => out::done(ctx, &r, "no receipt yet"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
