//! Secrets given to a command without putting them on its command line.
//!
//! A value after `--token` or `--secret` is visible to every local user in `ps` for as long
//! as the command runs (a `send --wait` can run for a day). So each secret can also come from
//! a file (`--token-file F`, its first line), from standard input (`--token -`) or from an
//! environment variable (`$CLAWLINK_TOKEN`, `$CLAWLINK_RELAY_SECRET`). The order is: the
//! option, the file, the variable. A plain value still works, as the seed's commands took it.

use super::usage;
use clawlink::client::ClientError;
use clawlink::Secret;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest secret read from a file or stdin.
const MAX_SECRET: u64 = 16 * 1024;

/// Environment variable of gateway tokens (`send --url`, `ping --url`, `contacts add`).
pub const TOKEN_ENV: &str = "CLAWLINK_TOKEN";
/// Environment variable of the relay secret (`relay register`).
pub const RELAY_SECRET_ENV: &str = "CLAWLINK_RELAY_SECRET";

/// Where a secret may come from.
pub struct SecretSource<'a> {
    /// `--token VALUE` or `--token -` (stdin).
    pub value: Option<String>,
    /// `--token-file FILE`.
    pub file: Option<PathBuf>,
    /// The environment variable consulted last, if any.
    pub env: Option<&'a str>,
    /// The option's name, for errors (`--token`).
    pub flag: &'a str,
}

impl SecretSource<'_> {
    /// The secret, or `None` when none was given anywhere.
    pub fn resolve(self) -> Result<Option<Secret>, ClientError> {
        let flag = self.flag;
        let secret = match (self.value, self.file) {
            (Some(v), _) if v == "-" => read_first_line(std::io::stdin().lock(), "stdin", flag)?,
            (Some(v), _) => v,
            (None, Some(f)) => read_file(&f, flag)?,
            (None, None) => match self.env.and_then(|k| std::env::var(k).ok()) {
                Some(v) if !v.is_empty() => v,
                _ => return Ok(None),
            },
        };
        Ok(Some(Secret::new(secret)))
    }
}

fn read_file(path: &Path, flag: &str) -> Result<String, ClientError> {
    let file = std::fs::File::open(path)
        .map_err(|e| usage(format!("{flag}-file {}: {e}", path.display())))?;
    read_first_line(file, &path.display().to_string(), flag)
}

/// The first line of `r` (without its line ending), which must not be empty.
fn read_first_line(r: impl Read, what: &str, flag: &str) -> Result<String, ClientError> {
    let mut text = String::new();
    r.take(MAX_SECRET)
        .read_to_string(&mut text)
        .map_err(|e| usage(format!("{flag}: reading {what}: {e}")))?;
    let line = text.lines().next().unwrap_or_default().trim_end();
    if line.is_empty() {
        return Err(usage(format!(
            "{flag}: {what} is empty; it must hold the secret on its first line"
        )));
    }
    Ok(line.to_string())
}

/// `--token` and `--token-file`, shared by `send`, `ping` and `contacts add`.
#[derive(clap::Args)]
pub struct TokenArgs {
    /// Gateway token; `-` reads it from stdin. A value typed here shows in `ps`: prefer
    /// --token-file, `--token -` or $CLAWLINK_TOKEN
    #[arg(long, value_name = "TOKEN|-")]
    token: Option<String>,
    /// Read the gateway token from the first line of FILE
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token; `$CLAWLINK_TOKEN` is consulted only when `use_env`.
    pub fn resolve(self, use_env: bool) -> Result<Option<Secret>, ClientError> {
        SecretSource {
            value: self.token,
            file: self.token_file,
            env: use_env.then_some(TOKEN_ENV),
            flag: "--token",
        }
        .resolve()
    }
}
