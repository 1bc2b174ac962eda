//! `converse`: the agent's reply in a peer's session goes back to that peer.
//!
//! A message at `converse` is delivered like `deliver` (`/hooks/agent` into the peer's own
//! `hook:clawlink:…` session, wrapped as untrusted). The router then records the reply owed
//! ([`crate::store::converse::Owed`]: inbox id, run id, session, sender, hops) in the same
//! batch, and this worker settles it:
//!
//! 1. **Wait for the answer.** Every [`RETRY`] the worker reads the peer's session with
//!    `chat.history {sessionKey, limit}` over the daemon's own gateway connection. The
//!    message's turn is the user entry holding its own end marker (`[clawlink] end of message
//!    ID`, which the framing keeps unique, see [`super::frame`]). The answer is the last
//!    assistant text after it and before the next user entry. While the message is the
//!    session's newest entry, the session's run (`sessionInfo.activeRunIds`, or `lastRunId`
//!    once idle) is the one answering it; it is remembered in the owed record and followed
//!    with `agent.wait {runId, timeoutMs}`, whose `terminalReply` carries the answer when the
//!    gateway gives one, and `silent`/`empty` when the agent chose not to answer. A later turn
//!    that began before the answer could be tied to this message ends it as
//!    `reply-unavailable`; after [`GIVE_UP`] it ends as `reply-timeout`.
//!    (The run id `/hooks/agent` returns is the hook's, not the agent run's: `agent.wait`
//!    answers `timeout` for it in OpenClaw 2026.9.6, hence the session's own run ids.)
//! 2. **Nothing empty.** An empty answer or a bare `NO_REPLY` is not sent; a long one is cut
//!    at [`MAX_REPLY`] bytes.
//! 3. **Send it back.**
//!    - a friend: sealed to its pinned key with `hops + 1` (signed, so the friend's loop limits
//!      can trust it) and queued in the outbox like `clawlink send --to FRIEND`. The envelope
//!      is stored in the owed record before it is queued (see `store::converse`);
//!    - an A2A peer: its task completes with the reply as the artifact (as
//!      `clawlink a2a reply` would), and a push notification follows if it asked for one.
//! 4. **Count it.** The reply is one agent-written exchange with that peer
//!    (`policy_exchanges`), and the audit log gets a `replied` record with the reply's hash.
//!
//! Only friends and A2A peers can be answered: a plain relay or Nexus message carries no hop
//! count anyone signed, so two daemons answering each other could loop unseen. The engine
//! lowers `converse` to `deliver` for other senders (with the reason in the audit log).
//!
//! Loops between two daemons wired with `converse` end at the hop limit and the exchange cap
//! ([`super::limits`]): each reply carries one hop more, and each side counts both directions.

use super::Engine;
use crate::a2a::A2a;
use crate::friend::Friends;
use crate::gateway::{GatewayError, Pool};
use crate::live_config::LiveConfig;
use crate::store::audit::{sha256_hex, Entry};
use crate::store::converse::Owed;
use crate::transport::Outbound;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Entries of the peer's session read per look.
const HISTORY: u64 = 50;
/// How long one `agent.wait` asks the gateway to wait (below the pool's request timeout).
const WAIT_MS: u64 = 5_000;
/// A turn not finished after this long is not answered.
pub const GIVE_UP: Duration = Duration::from_secs(10 * 60);
/// Pause between looks at the peer's session, and after a failed gateway call.
const RETRY: Duration = Duration::from_secs(2);
/// Look for owed replies at least this often.
const POLL: Duration = Duration::from_secs(5);
/// Longest reply sent back (the friend path's own cap is 64 KiB).
const MAX_REPLY: usize = 32 * 1024;

/// What the worker needs.
#[derive(Clone)]
pub struct Replier {
    /// Policy state (owed replies, exchange counts, audit).
    pub engine: Engine,
    /// The daemon's gateway connections.
    pub pool: Pool,
    /// The configuration (`[local_gateway]`, `[outbox] ttl_secs`).
    pub config: LiveConfig,
    /// The outbox.
    pub outbound: Outbound,
    /// The trust layer (friends' replies).
    pub friends: Option<Arc<Friends>>,
    /// The A2A endpoint (A2A peers' replies).
    pub a2a: Option<Arc<A2a>>,
}

/// Runs the worker until `shutdown`: each owed reply gets its own task.
pub async fn run(r: Replier, tracker: TaskTracker, shutdown: CancellationToken) {
    let busy: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let wake = r.engine.converse_wake();
    loop {
        match r.engine.converse.all() {
            Ok(owed) => {
                for o in owed {
                    let fresh = busy.lock().map(|mut b| b.insert(o.id)).unwrap_or(false);
                    if !fresh {
                        continue;
                    }
                    let (r, busy, stop) = (r.clone(), busy.clone(), shutdown.clone());
                    tracker.spawn(async move {
                        let id = o.id;
                        tokio::select! {
                            _ = settle(&r, o) => {}
                            _ = stop.cancelled() => {}
                        }
                        if let Ok(mut b) = busy.lock() {
                            b.remove(&id);
                        }
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the replies owed"),
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Settles one owed reply: waits, reads, sends, counts. Returns when it is done or dropped;
/// a store failure leaves it owed for the next look.
async fn settle(r: &Replier, mut o: Owed) {
    let text = match &o.sealed {
        Some(_) => None,
        None => loop {
            match reply_of(r, &mut o).await {
                Ok(Some(t)) => break Some(t),
                Ok(None) => {}
                // The gateway is down or refuses: its turn may still finish; look again.
                Err(e) => tracing::debug!(id = o.id, error = %e, "waiting for the agent's reply"),
            }
            if crate::time::now_ms().saturating_sub(o.started_ms) > GIVE_UP.as_millis() as u64 {
                tracing::warn!(id = o.id, sender = %o.sender, hook_run = %o.run_id, "no answer from the agent in time; no reply sent");
                forget(r, &o, "reply-timeout", None);
                return;
            }
            tokio::time::sleep(RETRY).await;
        },
    };
    if let Some(Reply::None(why)) = text {
        forget(r, &o, why, None);
        return;
    }
    let sent = match (&text, o.sender.split_once(':')) {
        (_, Some(("friend", name))) => to_friend(r, o.clone(), name, text).await,
        (Some(Reply::Text(t)), Some(("a2a", _))) => to_a2a(r, &o, t).await,
        _ => Err(format!("{} cannot be answered", o.sender)),
    };
    match sent {
        Ok(hash) => {
            let n = r.engine.store.exchanges(&o.sender).unwrap_or(0);
            if let Err(e) = r.engine.store.set_exchanges(&o.sender, n.saturating_add(1)) {
                tracing::warn!(error = %e, "the exchange count could not be written");
            }
            forget(r, &o, "replied", hash);
        }
        Err(e) => {
            tracing::warn!(id = o.id, sender = %o.sender, hook_run = %o.run_id, error = %e, "the agent's reply was not sent");
            forget(r, &o, "reply-failed", None);
        }
    }
}

/// What the agent answered.
enum Reply {
    /// This text.
    Text(String),
    /// Nothing to send, and why (the audit action).
    None(&'static str),
}

/// The reply once the turn is over; `Ok(None)` while it runs.
async fn reply_of(r: &Replier, o: &mut Owed) -> Result<Option<Reply>, GatewayError> {
    let cfg = r.config.get();
    let Some(lg) = cfg.local_gateway.clone() else {
        return Err(GatewayError::local("[local_gateway] is not configured"));
    };
    let call = |method: &'static str, params: Value| {
        let (pool, url, token) = (r.pool.clone(), lg.url.clone(), lg.token.clone());
        async move { pool.request(&url, &token, method, params).await }
    };
    if o.agent_run.is_none() {
        let history = call(
            "chat.history",
            json!({"sessionKey": o.session, "limit": HISTORY}),
        )
        .await?;
        if let Some(found) = reply_in(&history, o.id) {
            return Ok(Some(found));
        }
        match run_of(&history, o.id) {
            Turn::NotYet => return Ok(None),
            Turn::Unknown => return Ok(Some(Reply::None("reply-unavailable"))),
            Turn::Run(id) => {
                o.agent_run = Some(id);
                if let Err(e) = r.engine.converse.put(o) {
                    tracing::warn!(error = %e, "the owed reply could not be updated");
                }
            }
        }
    }
    let run = o.agent_run.clone().unwrap_or_default();
    let waited = call("agent.wait", json!({"runId": run, "timeoutMs": WAIT_MS})).await?;
    tracing::debug!(id = o.id, run = %run, hook_run = %o.run_id, status = ?waited.get("status"), "agent.wait answered");
    match waited.get("status").and_then(Value::as_str) {
        Some("ok") => {}
        Some("error") => return Ok(Some(Reply::None("reply-run-failed"))),
        _ => return Ok(None),
    }
    let t = waited.get("terminalReply");
    match t.and_then(|t| t.get("disposition")).and_then(Value::as_str) {
        Some("visible") => {
            if let Some(text) = t.and_then(|t| t.get("text")).and_then(Value::as_str) {
                return Ok(Some(reply_text(text)));
            }
        }
        Some("silent" | "empty") => return Ok(Some(Reply::None("no-reply"))),
        _ => {}
    }
    // Hook runs (OpenClaw 2026.9.6) end without a terminal reply: the answer is read from the
    // session once it is written there.
    let history = call(
        "chat.history",
        json!({"sessionKey": o.session, "limit": HISTORY}),
    )
    .await?;
    Ok(reply_in(&history, o.id))
}

/// Which agent run answers inbox message `id`, from a `chat.history` answer.
enum Turn {
    /// Its turn has not started.
    NotYet,
    /// This run (the session's only active run while the message is its newest user entry,
    /// or its last run once it is idle).
    Run(String),
    /// A later turn started before the run was seen: it cannot be told apart.
    Unknown,
}

fn run_of(history: &Value, id: u64) -> Turn {
    match turn_of(history, id) {
        None => return Turn::NotYet,
        Some((msgs, at)) if msgs[at + 1..].iter().any(|m| role(m) == Some("user")) => {
            return Turn::Unknown
        }
        Some(_) => {}
    }
    let info = history.get("sessionInfo");
    let str_of = |k: &str| info.and_then(|i| i.get(k)).and_then(Value::as_str);
    let active: Vec<&str> = info
        .and_then(|i| i.get("activeRunIds"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let busy = info.and_then(|i| i.get("hasActiveRun")) == Some(&Value::Bool(true));
    match (busy, active.as_slice(), str_of("lastRunId")) {
        (true, [one], _) => Turn::Run((*one).to_string()),
        (true, _, _) => Turn::NotYet,
        (false, _, Some(last)) => Turn::Run(last.to_string()),
        (false, _, None) => Turn::NotYet,
    }
}

fn reply_text(t: &str) -> Reply {
    let t = t.trim();
    if t.is_empty() || t == "NO_REPLY" {
        return Reply::None("no-reply");
    }
    Reply::Text(crate::text::truncate_bytes(t, MAX_REPLY).to_string())
}

/// The agent's answer to inbox message `id` in a `chat.history` answer (`messages`, each
/// with `role` and `content` as a string or a list of `{type:"text", text}` parts): the last
/// assistant text after the user entry holding `[clawlink] end of message {id}` and before
/// the next user entry. `None` while the turn runs; no reply when a later turn began without
/// an answer (OpenClaw leaves silent answers out of the history).
fn reply_in(history: &Value, id: u64) -> Option<Reply> {
    let (msgs, at) = turn_of(history, id)?;
    let mut answer = None;
    for m in &msgs[at + 1..] {
        match role(m) {
            Some("user") => {
                return Some(answer.map_or(Reply::None("no-reply"), |t: String| reply_text(&t)))
            }
            Some("assistant") => {
                if let Some(t) = text_of(m) {
                    answer = Some(t);
                }
            }
            _ => {}
        }
    }
    answer.map(|t| reply_text(&t))
}

/// The entries of a `chat.history` answer and the index of the newest user entry holding
/// message `id`'s end marker ([`super::frame::end_marker`]), if there is one.
fn turn_of(history: &Value, id: u64) -> Option<(&[Value], usize)> {
    let marker = super::frame::end_marker(id);
    let msgs = history.get("messages")?.as_array()?;
    let at = msgs.iter().rposition(|m| {
        role(m) == Some("user") && text_of(m).is_some_and(|t| ends_message(&t, &marker))
    })?;
    Some((msgs, at))
}

/// Whether `t` holds `marker` not followed by another digit (message 1 is not message 11).
fn ends_message(t: &str, marker: &str) -> bool {
    t.match_indices(marker).any(|(at, _)| {
        !t[at + marker.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

fn role(m: &Value) -> Option<&str> {
    m.get("role").and_then(Value::as_str)
}

fn text_of(m: &Value) -> Option<String> {
    match m.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let t: Vec<&str> = parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!t.is_empty()).then(|| t.join("\n"))
        }
        _ => None,
    }
}

/// Seals the reply to friend `name` (or reuses the envelope sealed before a crash) and queues
/// it; the reply's content hash.
async fn to_friend(
    r: &Replier,
    mut o: Owed,
    name: &str,
    text: Option<Reply>,
) -> Result<Option<String>, String> {
    let friends = r.friends.as_ref().ok_or("no trust layer")?;
    let (id, envelope, hash) = match (&o.sealed, text) {
        (Some((id, env)), _) => (id.clone(), env.clone(), None),
        (None, Some(Reply::Text(t))) => {
            let hops = u8::try_from(o.hops.saturating_add(1)).unwrap_or(u8::MAX);
            let out = friends
                .trust
                .seal_message_hops(name, &t, hops)
                .map_err(|e| e.to_string())?;
            o.sealed = Some((out.id.clone(), out.text.clone()));
            r.engine.converse.put(&o).map_err(|e| e.to_string())?;
            (out.id, out.text, Some(sha256_hex(&t)))
        }
        (None, _) => return Err("no reply".into()),
    };
    let store = r.outbound.store();
    // Only an envelope sealed before a restart can already be in the outbox: look it up then,
    // not for every reply.
    let resumed = hash.is_none();
    let queued = resumed
        && store
            .all()
            .map_err(|e| e.to_string())?
            .iter()
            .any(|rec| rec.id == id);
    if !queued {
        let out = crate::trust::engine::Outgoing {
            friend: name.to_string(),
            id,
            text: envelope,
        };
        let ttl = r.config.get().outbox.ttl_secs;
        let record = crate::friend::transport::record(store, &out, "message", ttl)
            .map_err(|e| e.to_string())?;
        r.outbound
            .enqueue(record)
            .await
            .map_err(|e| e.to_string())?;
    }
    tracing::info!(friend = %name, hops = o.hops + 1, "the agent's reply is queued for the friend");
    Ok(hash)
}

/// Completes the A2A task the message belongs to with the reply.
async fn to_a2a(r: &Replier, o: &Owed, text: &str) -> Result<Option<String>, String> {
    let a2a = r.a2a.as_ref().ok_or("no A2A endpoint")?;
    let task = a2a
        .tasks
        .find(&o.id.to_string())
        .map_err(|e| e.to_string())?
        .ok_or("the message is not an A2A task")?;
    if task.task.status.state.is_terminal() {
        // Answered by hand (`clawlink a2a reply`) meanwhile: nothing more to send.
        return Ok(None);
    }
    a2a.tasks.complete(&r.outbound, task, text).await?;
    Ok(Some(sha256_hex(text)))
}

/// Ends an owed reply: audits `action` (with the reply's hash, when one was sent) and removes
/// the record.
fn forget(r: &Replier, o: &Owed, action: &str, hash: Option<String>) {
    let (kind, _) = o.sender.split_once(':').unwrap_or(("", ""));
    let logged = r.engine.audit.append(Entry {
        source: kind.to_string(),
        sender: o.sender.clone(),
        verified: kind == "friend" || kind == "a2a",
        level: "converse".into(),
        action: action.to_string(),
        session: Some(o.session.clone()),
        message: o.id,
        content_sha256: hash.unwrap_or_default(),
    });
    if let Err(e) = logged.and_then(|_| r.engine.audit.sync()) {
        tracing::warn!(error = %e, "the reply's audit record could not be written");
    }
    if let Err(e) = r.engine.converse.done(o.id) {
        tracing::warn!(error = %e, "the settled reply could not be removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: Option<Reply>) -> Option<String> {
        match r {
            Some(Reply::Text(t)) => Some(t),
            Some(Reply::None(why)) => Some(format!("<{why}>")),
            None => None,
        }
    }

    #[test]
    fn the_reply_is_the_answer_after_the_message() {
        let user = |id: u64| {
            json!({"role": "user", "content": [{"type": "text",
            "text": format!("<<<EXTERNAL_UNTRUSTED_CONTENT>>>\n[clawlink] message {id} …\n[clawlink] end of message {id}")}]})
        };
        let said = |t: &str| json!({"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}, {"type": "text", "text": t}]});
        let h = json!({"messages": [user(1), said("one"), user(2), said("two a"), said("two")]});
        assert_eq!(text(reply_in(&h, 1)).as_deref(), Some("one"));
        assert_eq!(text(reply_in(&h, 2)).as_deref(), Some("two"));
        assert_eq!(text(reply_in(&h, 3)), None, "not in the history yet");
        let running = json!({"messages": [said("old"), user(4)]});
        assert_eq!(text(reply_in(&running, 4)), None, "still running");
        let silent = json!({"messages": [user(5), user(6), said("six")]});
        assert_eq!(text(reply_in(&silent, 5)).as_deref(), Some("<no-reply>"));
        // Message 1's marker must not match message 11's.
        let h = json!({"messages": [user(11), said("eleven")]});
        assert_eq!(text(reply_in(&h, 1)), None);
        assert_eq!(text(reply_in(&json!({}), 1)), None);
    }

    #[test]
    fn silence_is_no_reply() {
        assert!(matches!(reply_text("  NO_REPLY "), Reply::None(_)));
        assert!(matches!(reply_text(""), Reply::None(_)));
        assert!(matches!(reply_text("yes"), Reply::Text(t) if t == "yes"));
    }
}
