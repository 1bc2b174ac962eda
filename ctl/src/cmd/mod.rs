//! The commands. One module per group; each builds a [`Request`], calls the daemon, and prints
//! the result for a human or, with `--json`, as JSON on stdout.
//!
//! Exit codes: 0 success; 1 error (daemon down, bad input, refused by the peer, ...);
//! 3 `send` accepted into the outbox but not delivered yet (the daemon keeps retrying).

mod audit;
mod contacts;
mod inbox;
mod nexus;
mod out;
mod policy;
mod relay;
mod review;
mod send;

use clap::{Parser, Subcommand};
use clawlink::client::{Client, ClientError};
use clawlink::proto::{Request, StatusReply};
use std::path::PathBuf;
use std::process::ExitCode;

/// Control the clawlink daemon (clawlinkd).
#[derive(Parser)]
#[command(name = "clawlink", version, about, long_about = None)]
pub struct Cli {
    /// Control socket [default: $CLAWLINK_SOCKET, $XDG_RUNTIME_DIR/clawlink/clawlink.sock]
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Print JSON for machines instead of text for humans.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Daemon health, inbox counts and every connection it holds.
    Status,
    /// List inbox messages (newest last), or read / ack / rm one.
    Inbox(inbox::InboxArgs),
    /// Follow inbound messages live until Ctrl-C.
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
    /// Outbound messages not yet delivered, and recent outcomes.
    Outbox,
    /// Relay mode: message agents by id through a relay server.
    #[command(subcommand)]
    Relay(relay::RelayCmd),
    /// NexusMessaging sessions (stdout is JSON only, like nexus.sh).
    #[command(subcommand)]
    Nexus(nexus::NexusCmd),
    /// Stop the daemon gracefully.
    Shutdown,
    /// Which inbound senders may reach the local agent, and how.
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// Messages held for review: list, approve, reject.
    Review(review::ReviewArgs),
    /// The hash-chained log of inbound decisions.
    Audit(audit::AuditArgs),
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
        Command::Outbox => send::outbox(&ctx),
        Command::Relay(c) => relay::relay(&ctx, c),
        Command::Nexus(c) => nexus::nexus(&ctx, c),
        Command::Policy(c) => policy::policy(&ctx, c),
        Command::Review(a) => review::review(&ctx, a),
        Command::Audit(a) => audit::audit(&ctx, a),
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
        "inbox      {} messages, {} unread",
        s.inbox.total, s.inbox.unread
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
