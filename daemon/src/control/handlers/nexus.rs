//! `nexus ...`: the NexusMessaging protocol CLI's commands (`nexus.sh`), run by the daemon: a
//! thin adapter over [`crate::nexus::Nexus`] and its typed client.
//!
//! Every command answers [`NexusReply`] `{status, body, tips}`: the server's HTTP status and
//! JSON, passed through unchanged (errors included), or status 0 with `{"error":"..."}` for a
//! local failure. The CLI prints `body` on stdout and `tips` on stderr.
//!
//! Server: `--url` (or `$NEXUS_URL`, applied by the CLI) > `[nexus] url` > `https://messaging.md`.
//! A joined session stays bound to the server it was joined on.
//!
//! State: create-with-creator, join and claim save `{server, agent id, session key}` in
//! `store::nexus_client` and start the session's background poller ([`crate::nexus::poller`]).
//! `send` adds `X-Agent-Id` and `X-Session-Key`, and signs the text with our identity key
//! (beside it, in the message's `json`; our key is announced on join, see
//! [`crate::nexus::members`]). `poll` without `--after` reads from the saved
//! read cursor and advances it (messages also go into the inbox, deduplicated); `poll --after C`
//! neither uses nor saves it. `leave` forgets the session. `sessions` lists them without keys.

use super::Reply;
use crate::nexus::client::normalize;
use crate::nexus::wire::{
    ClaimAnswer, CreateAnswer, CreateRequest, JoinAnswer, RenewAnswer, SendAnswer,
};
use crate::nexus::{Answer, Nexus, DEFAULT_SERVER};
use crate::state::State;
use crate::store::nexus_client::JoinedSession;
use clawlink::proto::{NexusReply, NexusRequest};
use clawlink::Secret;
use serde_json::{json, Value};
use std::sync::Arc;

fn reply(a: Answer, tips: Vec<String>) -> Reply {
    super::json(&NexusReply {
        status: a.status,
        body: a.body,
        tips,
    })
}

/// A body the daemon writes itself, as JSON.
fn to_value<T: serde::Serialize>(body: &T) -> Result<Value, Reply> {
    serde_json::to_value(body).map_err(|e| local(format!("cannot write the answer: {e}")))
}

fn local(msg: impl Into<String>) -> Reply {
    reply(Answer::local(msg), Vec::new())
}

/// `--url`, else the session's own server, else `[nexus] url`, else the default.
fn server(
    state: &State,
    nexus: &Nexus,
    url: Option<String>,
    sid: Option<&str>,
) -> Result<String, String> {
    if let Some(u) = url.filter(|u| !u.trim().is_empty()) {
        return normalize(&u);
    }
    if let Some(s) = sid.and_then(|sid| nexus.store().get(sid).ok().flatten()) {
        return Ok(s.server);
    }
    let cfg = state.config();
    normalize(cfg.nexus.url.as_deref().unwrap_or(DEFAULT_SERVER))
}

fn se(e: crate::store::StoreError) -> Reply {
    Err(super::store_err(e))
}

fn valid_agent(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Saves a joined session, starts polling it and announces our member key in it; a tip if
/// the announce was refused (it is tried again before the next send).
async fn keep(
    nexus: &Arc<Nexus>,
    sid: &str,
    server: &str,
    agent: &str,
    key: &str,
    creator: bool,
) -> Result<Vec<String>, Reply> {
    let s = JoinedSession {
        sid: sid.to_string(),
        server: server.to_string(),
        agent_id: agent.to_string(),
        creator,
        key: Secret::new(key),
        cursor: None,
        read_cursor: None,
        expires_at: None,
        ttl: None,
        state: "active".into(),
    };
    nexus.store().put(&s).map_err(se)?;
    nexus.store().db().durable().await.map_err(se)?;
    tracing::info!(server, "joined a nexus session; polling it");
    nexus.start(sid);
    Ok(match nexus.announce(&s).await.map_err(se)? {
        Some(a) if !a.ok() => vec![format!(
            "the member key announce was refused ({}); it is tried again before the next send",
            a.code().unwrap_or("error")
        )],
        _ => Vec::new(),
    })
}

fn joined(nexus: &Nexus, sid: &str) -> Result<JoinedSession, Reply> {
    match nexus.store().get(sid) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(local(format!(
            "no session key found for session {sid}; join it first (clawlink nexus join {sid} --agent-id ID)"
        ))),
        Err(e) => Err(Err(super::store_err(e))),
    }
}

/// Imports sessions saved by the protocol CLI (`~/.config/messaging/sessions/<SID>/`).
pub(super) async fn import_dir(state: &State, dir: &str) -> Result<u64, clawlink::proto::ApiError> {
    let nexus = state.transport::<Nexus>()?;
    let bad = |m: String| clawlink::proto::ApiError::new("bad_request", m);
    let entries = std::fs::read_dir(dir).map_err(|e| bad(format!("{dir}: {e}")))?;
    let mut n = 0;
    let default = server(state, &nexus, None, None).map_err(bad)?;
    for e in entries.flatten().take(10_000) {
        let path = e.path();
        if !path.is_dir() {
            continue;
        }
        let sid = e.file_name().to_string_lossy().to_string();
        let read = |names: &[&str]| {
            names.iter().find_map(|n| {
                let f = path.join(n);
                let meta = std::fs::metadata(&f).ok()?;
                if !meta.is_file() || meta.len() > 8192 {
                    return None;
                }
                let t = std::fs::read_to_string(f).ok()?;
                Some(t.trim().to_string()).filter(|t| !t.is_empty())
            })
        };
        let agent = read(&["agent-id", "agent_id", "agentId", "agent", "agent-id.txt"]);
        let key = read(&[
            "session-key",
            "session_key",
            "sessionKey",
            "key",
            "session-key.txt",
        ]);
        let (Some(agent), Some(key)) = (agent, key) else {
            continue;
        };
        let srv = match read(&["url", "server", "server-url", "server_url", "base-url"]) {
            Some(u) => normalize(&u).map_err(bad)?,
            None => default.clone(),
        };
        if !valid_agent(&agent) || sid.len() > 256 {
            continue;
        }
        let cursor = read(&["cursor", "last-cursor", "last_cursor"]);
        let s = JoinedSession {
            sid: sid.clone(),
            server: srv,
            agent_id: agent,
            creator: false,
            key: Secret::new(key),
            cursor: cursor.clone(),
            read_cursor: cursor,
            expires_at: None,
            ttl: None,
            state: "active".into(),
        };
        nexus.store().put(&s).map_err(super::store_err)?;
        n += 1;
    }
    state.db.durable().await.map_err(super::store_err)?;
    nexus.resume().map_err(super::store_err)?;
    Ok(n)
}

pub(super) async fn handle(state: &State, r: NexusRequest) -> Reply {
    let nexus = state.transport::<Nexus>()?;
    nexus.configure(&state.config().nexus);
    match run(state, &nexus, r).await {
        Ok(v) | Err(v) => v,
    }
}

async fn run(state: &State, nexus: &Arc<Nexus>, r: NexusRequest) -> Result<Reply, Reply> {
    let srv =
        |url: Option<String>, sid: Option<&str>| server(state, nexus, url, sid).map_err(local);
    let http = nexus.http();
    Ok(match r {
        NexusRequest::Create {
            url,
            ttl,
            max_agents,
            greeting,
            creator_agent_id,
        } => {
            let server = srv(url, None)?;
            let body = CreateRequest {
                creator_agent_id: creator_agent_id.clone(),
                greeting,
                max_agents: Some(max_agents.unwrap_or(2)),
                ttl,
            };
            let a = http.create(&server, &body).await;
            let got: CreateAnswer = a.read();
            let mut tips = Vec::new();
            if let (true, Some(c), Some(k), Some(sid)) =
                (a.ok(), &creator_agent_id, &got.session_key, &got.session_id)
            {
                tips.extend(keep(nexus, sid, &server, c, k, true).await?);
                nexus.note_expiry(sid, got.ttl, got.expires_at).await;
                tips.push(format!("joined as {c}; the daemon now polls this session into the inbox. Invite the other agent: clawlink nexus pair {sid}"));
            }
            reply(a, tips)
        }
        NexusRequest::Status { url, sid } => {
            let server = srv(url, Some(&sid))?;
            reply(http.status(&server, &sid).await, Vec::new())
        }
        NexusRequest::Join { url, sid, agent_id } => {
            if !valid_agent(&agent_id) {
                return Err(local("agent id must be 1-128 letters, digits, - or _"));
            }
            let server = srv(url, Some(&sid))?;
            let a = http.join(&server, &sid, &agent_id).await;
            if a.status == 409 && a.code() == Some("agent_id_taken") {
                if let Ok(Some(s)) = nexus.store().get(&sid) {
                    if s.agent_id == agent_id && !s.key.is_empty() {
                        if s.state != "active" {
                            return Ok(reply(a, Vec::new()));
                        }
                        nexus.start(&sid);
                        let body = JoinAnswer {
                            agent_id,
                            already_joined: Some(true),
                            session_id: sid,
                            status: "joined".into(),
                            ..Default::default()
                        };
                        return Ok(reply(
                            Answer {
                                status: 200,
                                body: to_value(&body)?,
                                retry_after: None,
                            },
                            vec!["already in this session (key on file); polling it".into()],
                        ));
                    }
                }
            }
            let mut tips = Vec::new();
            if let (true, Some(k)) = (a.ok(), a.read::<JoinAnswer>().session_key) {
                tips.extend(keep(nexus, &sid, &server, &agent_id, &k, false).await?);
                tips.push("joined; the daemon now polls this session into the inbox".into());
            }
            reply(a, tips)
        }
        NexusRequest::Leave { sid } => {
            let s = joined(nexus, &sid)?;
            let a = http.leave(&s).await;
            let gone = a.ok() || (a.status == 404 && a.code() == Some("session_not_found"));
            if gone {
                nexus.stop(&sid);
                nexus.forget_members(&sid);
                nexus.store().remove(&sid).map_err(se)?;
                state.db.durable().await.map_err(se)?;
            }
            reply(a, Vec::new())
        }
        NexusRequest::Pair { url, sid } => {
            let server = srv(url, Some(&sid))?;
            let a = http.pair(&server, &sid).await;
            let tips = if a.ok() {
                vec!["give the code (or the url) to the other agent: clawlink nexus claim CODE --agent-id ID".into()]
            } else {
                Vec::new()
            };
            reply(a, tips)
        }
        NexusRequest::Claim {
            url,
            code,
            agent_id,
        } => {
            if !valid_agent(&agent_id) {
                return Err(local("agent id must be 1-128 letters, digits, - or _"));
            }
            let server = srv(url, None)?;
            let a = http.claim(&server, &code, &agent_id).await;
            let mut tips = Vec::new();
            let got: ClaimAnswer = a.read();
            if let (true, Some(sid), Some(k)) = (a.ok(), &got.session_id, &got.session_key) {
                tips.extend(keep(nexus, sid, &server, &agent_id, k, false).await?);
                tips.push(format!(
                    "joined session {sid}; the daemon now polls it into the inbox"
                ));
            }
            reply(a, tips)
        }
        NexusRequest::PairStatus { url, code } => {
            let server = srv(url, None)?;
            reply(http.pair_status(&server, &code).await, Vec::new())
        }
        NexusRequest::Send { sid, text } => {
            let s = joined(nexus, &sid)?;
            let (a, tips) = nexus.send_signed(&s, &text).await.map_err(se)?;
            if a.ok() {
                let sent: SendAnswer = a.read();
                nexus.note_expiry(&sid, None, sent.expires_at).await;
            }
            reply(a, tips)
        }
        NexusRequest::Poll {
            sid,
            after,
            members,
        } => {
            let s = joined(nexus, &sid)?;
            let a = nexus.poll_once(&s, after, members).await.map_err(se)?;
            reply(a, Vec::new())
        }
        NexusRequest::Renew { sid, ttl } => {
            let s = joined(nexus, &sid)?;
            let a = http
                .renew(&s, ttl, crate::nexus::client::CLI_DEADLINE)
                .await;
            if a.ok() {
                let r: RenewAnswer = a.read();
                nexus.note_expiry(&sid, r.ttl, r.expires_at).await;
                if s.state == "active" {
                    // The TTL may have shrunk: restart the poller so its next renewal is on time.
                    nexus.start(&sid);
                }
            }
            reply(a, Vec::new())
        }
        NexusRequest::Sessions => {
            let list = nexus.store().list().map_err(se)?;
            let body: Vec<Value> = list
                .into_iter()
                .map(|s| json!({ "sessionId": s.sid, "server": s.server, "agentId": s.agent_id, "cursor": s.cursor, "readCursor": s.read_cursor, "expiresAt": s.expires_at, "ttl": s.ttl, "state": s.state }))
                .collect();
            reply(
                Answer {
                    status: 200,
                    body: Value::Array(body),
                    retry_after: None,
                },
                Vec::new(),
            )
        }
    })
}
