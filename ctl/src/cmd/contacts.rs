//! `contacts add|list|remove` and `import --from-skill DIR` (the seed's files).

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
    /// Add or replace a contact.
    Add {
        #[arg(long)]
        name: String,
        /// ws://HOST:PORT (an OpenClaw gateway) or relay://HOST:PORT/ID.
        #[arg(long, required_unless_present = "a2a", conflicts_with = "a2a")]
        url: Option<String>,
        /// An A2A agent: its origin (the Agent Card is read) or its JSON-RPC endpoint URL.
        #[arg(long)]
        a2a: Option<String>,
        /// Gateway token (stored in the daemon; never printed).
        #[arg(long, default_value = "")]
        token: String,
        /// Read the token from this file instead (keeps it off the command line).
        #[arg(long, conflicts_with = "token")]
        token_file: Option<PathBuf>,
        #[arg(long, default_value = "")]
        desc: String,
    },
    /// List contacts (tokens are never shown).
    List,
    /// Remove a contact.
    Remove {
        #[arg(long)]
        name: String,
    },
}

#[derive(Args)]
pub struct ImportArgs {
    /// The seed skill's directory (holding contacts.json and/or relay-config.json).
    #[arg(long, required_unless_present = "from_nexus")]
    from_skill: Option<PathBuf>,
    /// The Nexus protocol CLI's sessions directory (e.g. ~/.config/messaging/sessions): the
    /// daemon takes over every `<SID>/` in it (agent id, session key, cursor, server) and polls it.
    #[arg(long)]
    from_nexus: Option<PathBuf>,
}

pub fn contacts(ctx: &Ctx, c: ContactsCmd) -> Result<ExitCode, ClientError> {
    let mut client = ctx.connect()?;
    match c {
        ContactsCmd::Add {
            name,
            url,
            a2a,
            token,
            token_file,
            desc,
        } => {
            let token = match token_file {
                Some(f) => std::fs::read_to_string(&f)
                    .map_err(|e| local(format!("{}: {e}", f.display())))?
                    .trim()
                    .to_string(),
                None => token,
            };
            if let Some(a2a) = a2a {
                let r: A2aContactReply = client.call(
                    &Request::A2a(A2aRequest::ContactAdd {
                        name,
                        url: a2a,
                        token: Secret::new(token),
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
            let v: ContactView = client.call(
                &Request::ContactsAdd(NewContact {
                    name,
                    url,
                    token: Secret::new(token),
                    desc,
                }),
                None,
            )?;
            out::done(ctx, &v, &format!("contact {:?} saved ({})", v.name, v.url));
        }
        ContactsCmd::List => {
            let list: Vec<ContactView> = client.call(&Request::ContactsList, None)?;
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
            let c: Count = client.call(
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

/// Reads the seed's `contacts.json`: either a list of `{name,url,token,desc}` or a map of
/// name → `{url,token,desc}`.
fn read_contacts(path: &std::path::Path) -> Result<Vec<NewContact>, ClientError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| local(format!("{}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| local(format!("{}: not JSON: {e}", path.display())))?;
    let field = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let one = |name: String, v: &serde_json::Value| NewContact {
        name,
        url: field(v, "url"),
        token: Secret::new(field(v, "token")),
        desc: field(v, "desc"),
    };
    match &value {
        serde_json::Value::Array(items) => {
            Ok(items.iter().map(|v| one(field(v, "name"), v)).collect())
        }
        serde_json::Value::Object(map) if map.values().all(|v| v.is_object()) => {
            Ok(map.iter().map(|(k, v)| one(k.clone(), v)).collect())
        }
        _ => Err(local(format!(
            "{}: expected a list of contacts or a map of name → contact",
            path.display()
        ))),
    }
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<ExitCode, ClientError> {
    let mut params = ImportParams::default();
    let mut looked = Vec::new();
    if let Some(dir) = &a.from_skill {
        let contacts_file = dir.join("contacts.json");
        let relay_file = dir.join("relay-config.json");
        if contacts_file.exists() {
            params.contacts = read_contacts(&contacts_file)?;
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
    out::done(
        ctx,
        &r,
        &format!("imported {} contacts{relay}{nexus}", r.contacts),
    );
    Ok(ExitCode::SUCCESS)
}
