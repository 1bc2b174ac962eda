//! The commands. One module per group; each builds a [`Request`], calls the daemon, and prints
//! the result for a human or, with `--json`, as JSON on stdout.
//!
//! Exit codes: 0 success; 1 error (daemon down, bad input, refused by the peer, ...);
//! 2 usage error (a wrong or missing option; nothing was sent to the daemon);
//! 3 `send` accepted into the outbox but not delivered yet (the daemon keeps retrying).
//!
//! Errors go to stderr as `clawlink: WHAT` and a line saying what to do next; with `--json`
//! they go to stdout as `{"ok":false,"error":{"code":...,"message":...,"hint":...}}`, the shape
//! of the control protocol's own errors.

mod a2a;
mod ask;
mod audit;
mod contacts;
mod friend;
mod id;
mod inbox;
mod nexus;
mod out;
mod policy;
mod relay;
mod review;
mod secret_arg;
mod send;

use clap::{Parser, Subcommand};
use clawlink::client::{Client, ClientError};
use clawlink::proto::{ApiError, Request, StatusReply};
use std::path::PathBuf;
use std::process::ExitCode;

/// Control the clawlink daemon (clawlinkd).
#[derive(Parser)]
#[command(name = "clawlink", version, about, long_about = None)]
pub struct Cli {
    /// Control socket [default: $CLAWLINK_SOCKET, else $XDG_RUNTIME_DIR/clawlink/clawlink.sock,
    /// else /tmp/clawlink-$UID/clawlink.sock]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print JSON for machines instead of text for humans (errors too, on stdout).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Daemon health, inbox counts and every connection it holds.
    Status,
    /// List inbox messages (newest last), or read / ack / rm one.
    Inbox(inbox::InboxArgs),
    /// Follow inbound messages live. Blocks until Ctrl-C; exits 1 if the daemon goes away.
    Listen(inbox::ListenArgs),
    /// Manage contacts (name → gateway URL and token, or relay://HOST:PORT/ID).
    #[command(subcommand)]
    Contacts(contacts::ContactsCmd),
    /// Import contacts (and relay identity) from the seed skill's files.
    Import(contacts::ImportArgs),
    /// Send a message to a contact or a gateway URL.
    Send(send::SendArgs),
    /// Check that a gateway answers and accepts the token.
    Ping(send::PingArgs),
    /// Outbound messages not yet delivered, and recent outcomes; `outbox cancel` cancels.
    Outbox(send::OutboxArgs),
    /// Relay mode: message agents by id through a relay server.
    #[command(subcommand)]
    Relay(relay::RelayCmd),
    /// NexusMessaging sessions (stdout is JSON only, like nexus.sh).
    #[command(subcommand)]
    Nexus(nexus::NexusCmd),
    /// Stop the daemon gracefully.
    Shutdown,
    /// A2A: peers allowed to call this daemon, inbound tasks and their answers.
    #[command(subcommand)]
    A2a(a2a::A2aCmd),
    /// Ask an A2A contact and wait for its answer (exit 0 answered, 1 refused or failed, 3 no answer yet).
    Ask(ask::AskArgs),
    /// Which inbound senders may reach the local agent, and how.
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// Messages held for review: list, approve, reject.
    Review(review::ReviewArgs),
    /// The hash-chained log of inbound decisions.
    Audit(audit::AuditArgs),
    /// This daemon's clawlink identity (id, public keys, epoch, addresses), or `id rotate`.
    Id {
        #[command(subcommand)]
        cmd: Option<id::IdCmd>,
    },
    /// Friends: invites, safety numbers, pinned keys, sealed envelopes.
    #[command(subcommand)]
    Friend(friend::FriendCmd),
}

/// Exit code of a usage error (as clap's own).
pub const EXIT_USAGE: u8 = 2;

/// A usage error found after parsing (a missing secret, an unreadable --token-file, ...).
pub fn usage(msg: impl Into<String>) -> ClientError {
    ClientError::Api(ApiError::new("usage", msg))
}

/// A usage error with a hint.
pub fn usage_with_hint(msg: impl Into<String>, hint: &str) -> ClientError {
    ClientError::Api(ApiError::new("usage", msg).with_hint(hint))
}

/// The error as the protocol's error object (code, message, what to do).
fn api_error(e: &ClientError) -> ApiError {
    let code = match e {
        ClientError::Api(a) => return a.clone(),
        ClientError::DaemonDown { .. } => "daemon_down",
        ClientError::PermissionDenied { .. } => "permission_denied",
        ClientError::VersionMismatch(_) => "version_mismatch",
        ClientError::Protocol(_) => "protocol",
    };
    let text = e.to_string();
    let (message, hint) = match text.split_once('\n') {
        Some((m, h)) => (m.to_string(), Some(h.trim().to_string())),
        None => (text, None),
    };
    ApiError {
        code: code.into(),
        message,
        hint,
    }
}

/// Prints `e` (JSON on stdout with `--json`, else text on stderr) and picks the exit code.
pub fn fail(json: bool, e: &ClientError) -> ExitCode {
    let err = api_error(e);
    if json {
        out::json(&serde_json::json!({ "ok": false, "error": err }));
    } else {
        eprintln!("clawlink: {}", err.message);
        if let Some(h) = &err.hint {
            eprintln!("  {h}");
        }
    }
    if err.code == "usage" {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::FAILURE
    }
}

/// Shared context of a command.
pub struct Ctx {
    socket: PathBuf,
    json: bool,
}

impl Ctx {
    fn connect(&self) -> Result<Client, ClientError> {
        Client::connect(&self.socket)
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, ClientError> {
    let ctx = Ctx {
        socket: clawlink::paths::socket_path(cli.socket.as_deref()),
        json: cli.json,
    };
    match cli.command {
        Command::Status => status(&ctx),
        Command::Inbox(a) => inbox::inbox(&ctx, a),
        Command::Listen(a) => inbox::listen(&ctx, a),
        Command::Contacts(c) => contacts::contacts(&ctx, c),
        Command::Import(a) => contacts::import(&ctx, a),
        Command::Send(a) => send::send(&ctx, a),
        Command::Ping(a) => send::ping(&ctx, a),
        Command::Outbox(a) => send::outbox(&ctx, a),
        Command::Relay(c) => relay::relay(&ctx, c),
        Command::Nexus(c) => nexus::nexus(&ctx, c),
        Command::A2a(c) => a2a::a2a(&ctx, c),
        Command::Ask(a) => ask::ask(&ctx, a),
        Command::Policy(c) => policy::policy(&ctx, c),
        Command::Review(a) => review::review(&ctx, a),
        Command::Audit(a) => audit::audit(&ctx, a),
        Command::Id { cmd } => id::id(&ctx, cmd),
        Command::Friend(c) => friend::friend(&ctx, c),
        Command::Shutdown => {
            ctx.connect()?.call_raw(&Request::Shutdown, None)?;
            out::done(
                &ctx,
                &serde_json::json!({"ok": true}),
                "clawlinkd is shutting down",
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn status(ctx: &Ctx) -> Result<ExitCode, ClientError> {
    let s: StatusReply = ctx.connect()?.call(&Request::Status, None)?;
    if ctx.json {
        out::json(&s);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "clawlinkd {} (protocol {}), pid {}, up {}",
        s.version,
        s.protocol,
        s.pid,
        out::duration(s.uptime_secs)
    );
    println!("data dir   {}", s.data_dir);
    println!("socket     {}", s.socket);
    println!(
        "webhook    {}",
        s.listen
            .as_deref()
            .map(|l| format!("http://{l}/message"))
            .unwrap_or_else(|| "off".into())
    );
    println!(
        "inbox      {} messages, {} unread{}",
        s.inbox.total,
        s.inbox.unread,
        if s.inbox.full {
            format!(
                " - FULL (caps {} messages, {} bytes): new messages are refused until some are deleted (`clawlink inbox rm --read` deletes those already read)",
                s.inbox.max_messages, s.inbox.max_bytes
            )
        } else {
            String::new()
        }
    );
    println!("outbox     {} pending", s.outbox_pending);
    if s.connections.is_empty() {
        println!("connections: none");
    } else {
        println!("connections:");
        for c in &s.connections {
            let rtt = c
                .rtt_ms
                .map(|r| format!(" rtt {r:.1} ms"))
                .unwrap_or_default();
            let info: Vec<String> = c.info.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "  {:<8} {:<12} {}{} {}",
                c.kind,
                c.state,
                c.target,
                rtt,
                info.join(" ")
            );
            if let Some(e) = &c.last_error {
                println!("           last error: {e}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
