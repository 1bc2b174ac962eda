//! `clawlink`: the control CLI of the clawlink daemon. Every command talks to `clawlinkd`
//! over its local socket; see the `clawlink` library docs for the protocol.

mod cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clawlink: {e}");
            ExitCode::FAILURE
        }
    }
}
