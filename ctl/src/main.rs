//! `clawlink`: the control CLI of the clawlink daemon. Every command talks to `clawlinkd`
//! over its local socket; see the `clawlink` library docs for the protocol.

mod cmd;

use clap::error::ErrorKind;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // With --json a usage error is JSON too; `--json` is looked for by hand because the
    // command line that failed to parse is exactly what we could not read.
    let json = std::env::args_os().any(|a| a == "--json");
    let cli = match cmd::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) if json => {
            let text = e.render().to_string();
            let message = text
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string();
            return cmd::fail(
                true,
                &cmd::usage_with_hint(message, "see `clawlink --help`"),
            );
        }
        Err(e) => e.exit(),
    };
    let json = cli.json;
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => cmd::fail(json, &e),
    }
}
