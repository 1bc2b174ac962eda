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
            // clap's text up to its usage line, on one line: what is wrong and with which option.
            let text = e.render().to_string();
            let message = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
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
