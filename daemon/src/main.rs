//! `clawlinkd`: parse the command line, pick the role, run it until shutdown.

use clap::{Parser, Subcommand};
use clawlinkd::shutdown::{self, CancellationToken};
use std::process::ExitCode;

/// The clawlink daemon: durable agent-to-agent messaging for OpenClaw.
#[derive(Parser)]
#[command(name = "clawlinkd", version, about, long_about = None)]
struct Cli {
    /// Options of the default role, the agent daemon.
    #[command(flatten)]
    agent: clawlinkd::agent::Args,
    /// More -v, more logs (info, debug, trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Subcommand)]
enum Role {
    /// Run a self-hostable relay server (the seed relay client's protocol, durable).
    RelayServer(clawlinkd::relay_server::Args),
    /// Run a NexusMessaging-compatible server that keeps messages durably.
    NexusServer(clawlinkd::nexus_server::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Everything the daemon creates (store, keys, socket) is private to its user.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    clawlinkd::logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("clawlinkd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = CancellationToken::new();
    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    if let Err(e) = shutdown::install(token.clone(), Some(reload_tx)) {
        eprintln!("clawlinkd: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let result = runtime.block_on(async move {
        match cli.role {
            None => clawlinkd::agent::run(cli.agent, token, reload_rx).await,
            Some(Role::RelayServer(args)) => clawlinkd::relay_server::run(args, token).await,
            Some(Role::NexusServer(args)) => clawlinkd::nexus_server::run(args, token).await,
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("clawlinkd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
