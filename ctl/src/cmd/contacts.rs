//! `contacts add|list|remove` and `import --from-skill DIR` (the seed's files).

use super::secret_arg::TokenArgs;
use super::{out, Ctx};
use clap::{Args, Subcommand};
use clawlink::client::ClientError;
use clawlink::proto::{
    A2aContactReply, A2aRequest, ApiError, ContactView, Count, ImportParams, ImportReply,
    NameParam, NewContact, RelayIdentity, Request,
};
use clawlink::Secret;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ContactsCmd {
    /// Add or replace a contact. Its token (stored in the daemon, never printed) comes from
    /// --token, --token-file or $CLAWLINK_TOKEN.
    Add {
        /// Name to send to (`clawlink send --to NAME`): 1-64 printable characters.
        #[arg(long)]
        name: String,
        /// ws://HOST:PORT or wss://HOST (an OpenClaw gateway), or relay://HOST:PORT/ID.
        #[arg(long, required_unless_present = "a2a", conflicts_with = "a2a")]
        url: Option<String>,
        /// An A2A agent: its origin (the Agent Card is read) or its JSON-RPC endpoint URL.
        #[arg(long)]
        a2a: Option<String>,
        // The token (gateway token, or the A2A peer's bearer token).
        #[command(flatten)]
        token: TokenArgs,
        /// Free-text description, shown by `contacts list`.
        #[arg(long, default_value = "")]
        desc: String,
    },
    /// List contacts (tokens are never shown).
    List,
    /// Remove a contact.
    Remove {
        /// The contact's name (see `clawlink contacts list`).
        #[arg(long)]
        name: String,
    },
}

/// What a gateway token grants, said once when one is saved for another machine's gateway.
const GATEWAY_TOKEN_WARNING: &str =
    "warning: a gateway token gives full control of that OpenClaw gateway \
(its operator.admin scope: it can run the agent, read sessions and change settings), far more than \
\"may send me a message\". Between clawlink daemons, prefer friends: `clawlink friend invite` / \
`clawlink friend accept` need no token and seal every message end to end (see README, Friends).";

/// A `ws://`/`wss://` URL whose host is not this machine (loopback is the user's own gateway).
fn gateway_of_another_machine(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
    else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

#[derive(Args)]
pub struct ImportArgs {
    /// The seed skill's directory (holding contacts.json and/or relay-config.json). A contact
    /// with an http:// or https:// URL is taken as ws:// or wss://, as the seed did; one that is
    /// still invalid is skipped with a warning.
    #[arg(long, required_unless_present = "from_nexus")]
    from_skill: Option<PathBuf>,
    /// The Nexus protocol CLI's sessions directory (e.g. ~/.config/messaging/sessions): the
    /// daemon takes over every `<SID>/` in it (agent id, session key, cursor, server) and polls it.
    #[arg(long)]
    from_nexus: Option<PathBuf>,
}

pub fn contacts(ctx: &Ctx, c: ContactsCmd) -> Result<ExitCode, ClientError> {
    match c {
        ContactsCmd::Add {
            name,
            url,
            a2a,
            token,
            desc,
        } => {
            let token = token.resolve(true)?.unwrap_or_default();
            if let Some(a2a) = a2a {
                let r: A2aContactReply = ctx.connect()?.call(
                    &Request::A2a(A2aRequest::ContactAdd {
                        name,
                        url: a2a,
                        token,
                        desc,
                    }),
                    None,
                )?;
                let agent = r
                    .agent
                    .as_deref()
                    .map(|a| {
                        format!(
                            " (agent {a:?}, skills: {})",
                            if r.skills.is_empty() {
                                "none listed".into()
                            } else {
                                r.skills.join(", ")
                            }
                        )
                    })
                    .unwrap_or_default();
                out::done(
                    ctx,
                    &r,
                    &format!("A2A contact {:?} saved: {}{agent}", r.name, r.endpoint),
                );
                return Ok(ExitCode::SUCCESS);
            }
            let url = url.unwrap_or_default();
            if !token.is_empty() && gateway_of_another_machine(&url) {
                eprintln!("{GATEWAY_TOKEN_WARNING}");
            }
            let v: ContactView = ctx.connect()?.call(
                &Request::ContactsAdd(NewContact {
                    name,
                    url,
                    token,
                    desc,
                    added_at: None,
                }),
                None,
            )?;
            out::done(ctx, &v, &format!("contact {:?} saved ({})", v.name, v.url));
        }
        ContactsCmd::List => {
            let list: Vec<ContactView> = ctx.connect()?.call(&Request::ContactsList, None)?;
            if ctx.json {
                out::json(&list);
            } else if list.is_empty() {
                println!("no contacts; add one with `clawlink contacts add --name NAME --url URL --token TOKEN`");
            } else {
                for c in &list {
                    let desc = if c.desc.is_empty() {
                        String::new()
                    } else {
                        format!("  ({})", c.desc)
                    };
                    println!("{:<20} {}  token {}{}", c.name, c.url, c.token, desc);
                }
            }
        }
        ContactsCmd::Remove { name } => {
            let c: Count = ctx.connect()?.call(
                &Request::ContactsRemove(NameParam { name: name.clone() }),
                None,
            )?;
            out::done(ctx, &c, &format!("contact {name:?} removed"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn local(msg: String) -> ClientError {
    ClientError::Api(ApiError::new("bad_input", msg))
}

/// The seed's `contacts.json`: either a list of `{name,url,token,description,addedAt}` or a
/// map of name → `{url,token,description,addedAt}` (`desc` is read too). An `http(s)://` URL
/// becomes `ws(s)://`, as the seed's own client did; each rewrite is returned as a note.
fn read_contacts(path: &std::path::Path) -> Result<(Vec<NewContact>, Vec<String>), ClientError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| local(format!("{}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| local(format!("{}: not JSON: {e}", path.display())))?;
    let field =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let mut notes = Vec::new();
    let mut one = |name: String, v: &serde_json::Value| {
        let mut url = field(v, "url").unwrap_or_default();
        for (from, to) in [("http://", "ws://"), ("https://", "wss://")] {
            if let Some(rest) = url.strip_prefix(from) {
                let rewritten = format!("{to}{rest}");
                notes.push(format!(
                    "contact {name:?}: {url} taken as {rewritten}, as the seed did"
                ));
                url = rewritten;
            }
        }
        NewContact {
            url,
            token: Secret::new(field(v, "token").unwrap_or_default()),
            desc: field(v, "description")
                .or_else(|| field(v, "desc"))
                .unwrap_or_default(),
            added_at: field(v, "addedAt"),
            name,
        }
    };
    let contacts = match &value {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| one(field(v, "name").unwrap_or_default(), v))
            .collect(),
        serde_json::Value::Object(map) if map.values().all(|v| v.is_object()) => {
            map.iter().map(|(k, v)| one(k.clone(), v)).collect()
        }
        _ => {
            return Err(local(format!(
                "{}: expected a list of contacts or a map of name → contact",
                path.display()
            )))
        }
    };
    Ok((contacts, notes))
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<ExitCode, ClientError> {
    let mut params = ImportParams::default();
    let mut looked = Vec::new();
    if let Some(dir) = &a.from_skill {
        let contacts_file = dir.join("contacts.json");
        let relay_file = dir.join("relay-config.json");
        if contacts_file.exists() {
            let (contacts, notes) = read_contacts(&contacts_file)?;
            params.contacts = contacts;
            notes.iter().for_each(|n| eprintln!("clawlink: {n}"));
        }
        if relay_file.exists() {
            let text = std::fs::read_to_string(&relay_file)
                .map_err(|e| local(format!("{}: {e}", relay_file.display())))?;
            let id: RelayIdentity = serde_json::from_str(&text)
                .map_err(|e| local(format!("{}: {e}", relay_file.display())))?;
            params.relay = Some(id);
        }
        looked.push(format!(
            "neither {} nor {} exists",
            contacts_file.display(),
            relay_file.display()
        ));
    }
    if let Some(dir) = &a.from_nexus {
        let abs =
            std::fs::canonicalize(dir).map_err(|e| local(format!("{}: {e}", dir.display())))?;
        params.nexus_dir = Some(abs.display().to_string());
    }
    if params.contacts.is_empty() && params.relay.is_none() && params.nexus_dir.is_none() {
        return Err(local(format!("nothing to import: {}", looked.join("; "))));
    }
    let r: ImportReply = ctx.connect()?.call(&Request::Import(params), None)?;
    let relay = if r.relay {
        " and the relay identity"
    } else {
        ""
    };
    let nexus = if a.from_nexus.is_some() {
        format!(", {} Nexus sessions (now polled)", r.nexus_sessions)
    } else {
        String::new()
    };
    if !ctx.json {
        for s in &r.skipped {
            eprintln!("clawlink: warning: skipped contact {s}");
        }
    }
    out::done(
        ctx,
        &r,
        &format!("imported {} contacts{relay}{nexus}", r.contacts),
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::gateway_of_another_machine as other;

    #[test]
    fn only_other_machines_gateways_get_the_token_warning() {
        assert!(other("ws://192.168.1.50:18789"));
        assert!(other("wss://claw.example/path"));
        assert!(!other("ws://127.0.0.1:18789"));
        assert!(!other("ws://localhost:18789"));
        assert!(!other("ws://[::1]:18789"));
        assert!(!other("relay://r.example:3900/bob"));
    }
}
