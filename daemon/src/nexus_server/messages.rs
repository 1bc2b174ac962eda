//! Sending and polling messages.
//!
//! ```text
//! POST /v1/sessions/:id/messages   X-Agent-Id, X-Session-Key?  {text?, json?} (at least one)
//!      201 {id:"msg_...", cursor:"N", expiresAt}
//! GET  /v1/sessions/:id/messages?after=C&members=true&wait=S&limit=N   X-Agent-Id
//!      200 {messages:[{id, agentId, text?, json?, cursor, verified, sentAt, expiresAt}], nextCursor, members?}
//! ```
//!
//! The bodies are the shared types of [`crate::nexus::wire`]; the poll's query string is read
//! here ([`PollQuery`]) and built by the client ([`crate::nexus::client`]).
//!
//! - A send with the member's key is `verified:true`, without a key `verified:false`; a wrong
//!   key is 403 `invalid_session_key`; a non-member gets 403 `forbidden`. Each send slides the
//!   session's expiry to now + ttl. 201 is returned only once the message is on disk.
//! - `after` is exclusive; without it everything is returned (the greeting is cursor `"0"`).
//!   `nextCursor` is the last returned cursor, else `after`, else `"0"`: always safe to pass
//!   back as `after`. At most `limit` (default and cap 1000) messages per answer; the rest come
//!   with the next poll.
//! - **Long-poll** (extension, advertised as `capabilities.longPoll` in `/health`):
//!   `wait=SECONDS` (0 to `capabilities.longPollMaxWait`, larger values are capped) holds the
//!   request while nothing is newer than `after`, and answers as soon as a message is durable,
//!   or with an empty list at the timeout. Without `wait` a poll is a short poll.
//! - `members=true` adds `members:[{agentId, lastSeenAt}]`; a poll counts as being seen.

use super::error::{ApiError, ApiResult};
use super::extract::{agent_id, json_body, session_key};
use super::state::AppState;
use crate::nexus::wire::{Cursor, Member, Message, PollAnswer, SendAnswer, SendRequest};
use crate::store::nexus_server::MessageRecord;
use crate::time::{now_ms, rfc3339};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use std::time::Duration;

/// `POST /v1/sessions/:id/messages`.
pub async fn send(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let agent = agent_id(&headers)?;
    let body: SendRequest = json_body(body)?;
    let (text, redacted) = match body.text.filter(|t| !t.is_empty()) {
        Some(t) => {
            let (t, changed) = super::redact::redact(&t);
            (Some(t), changed)
        }
        None => (None, false),
    };
    let json_val = body.json.filter(|j| !j.is_null());
    if text.is_none() && json_val.is_none() {
        return Err(
            ApiError::invalid_request("A message needs a non-empty text or a json value")
                .detail("text", "required"),
        );
    }
    let size =
        text.as_ref().map_or(0, String::len) + json_val.as_ref().map_or(0, |j| j.to_string().len());
    if size > app.limits.max_message_bytes {
        return Err(ApiError::too_large(format!(
            "A message may hold at most {} bytes",
            app.limits.max_message_bytes
        )));
    }
    let now = now_ms();
    let session = app.sessions.get_live(&id, now)?;
    let key = session_key(&headers);
    let (cursor, expires_ms, msg_id) = {
        let mut st = session.lock();
        st.check_live(now)?;
        let i = st
            .member(&agent)
            .ok_or_else(|| ApiError::forbidden("Only members can send to this session"))?;
        let verified = match &key {
            Some(k) if super::ids::key_matches(k.expose(), &st.rec.agents[i].key_hash) => true,
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "invalid_session_key",
                    "The session key is not valid for this agent",
                ))
            }
            None => false,
        };
        if st.count >= app.limits.max_messages_per_session {
            return Err(super::sessions::storage_full("messages in this session"));
        }
        let cursor = st.next_cursor;
        let expires_ms = now.saturating_add(st.rec.ttl_secs.saturating_mul(1000));
        let msg = MessageRecord {
            id: super::ids::new_message_id(),
            agent_id: agent,
            text,
            json: json_val,
            verified,
            sent_ms: now,
        };
        // Insert under the lock: sled then holds messages in cursor order (see state.rs).
        app.store.put_message(&session.id, cursor, &msg)?;
        app.store.set_expiry(&session.id, expires_ms)?;
        st.next_cursor += 1;
        st.count += 1;
        st.expires_ms = expires_ms;
        st.rec.agents[i].last_seen_ms = now;
        (cursor, expires_ms, msg.id)
    };
    app.store.db().durable().await?;
    session.publish(cursor + 1);
    // The session id is a capability (it lets anyone join), so it is never logged.
    tracing::debug!(cursor, bytes = size, "message stored");
    let out = SendAnswer {
        cursor: Some(Cursor::of(cursor)),
        expires_at: Some(rfc3339(expires_ms)),
        id: msg_id,
        redacted,
        warning: redacted
            .then(|| "Possible secrets in the text were replaced with [REDACTED]".to_string()),
    };
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(Deserialize)]
/// Query of a poll; all strings so that bad values get the protocol's error, not axum's.
pub struct PollQuery {
    after: Option<String>,
    members: Option<String>,
    wait: Option<String>,
    limit: Option<String>,
}

fn number(name: &str, v: Option<&str>) -> Result<Option<u64>, ApiError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
            ApiError::invalid_request(format!("{name} must be a non-negative integer"))
                .detail(name, "not a number")
        }),
    }
}

fn render(cursor: u64, m: MessageRecord, expires: &str) -> Message {
    Message {
        agent_id: m.agent_id,
        cursor: Some(Cursor::of(cursor)),
        expires_at: Some(expires.to_string()),
        id: Some(m.id),
        json: m.json,
        sent_at: rfc3339(m.sent_ms),
        text: m.text,
        verified: m.verified,
    }
}

/// `GET /v1/sessions/:id/messages`.
pub async fn poll(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<PollQuery>, QueryRejection>,
) -> ApiResult {
    let agent = agent_id(&headers)?;
    let Query(q) = query.map_err(|_| ApiError::invalid_request("Malformed query string"))?;
    let after = number("after", q.after.as_deref())?;
    let wait = number("wait", q.wait.as_deref())?
        .unwrap_or(0)
        .min(app.limits.max_wait);
    let limit = number("limit", q.limit.as_deref())?.map_or(app.limits.max_page, |l| {
        (l as usize).clamp(1, app.limits.max_page)
    });
    let want_members = matches!(q.members.as_deref(), Some("true" | "1" | "yes"));
    let session = app.sessions.get_live(&id, now_ms())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut notified = std::pin::pin!(session.notify.notified());
    loop {
        // Registered before looking, so a send that lands in between still wakes us.
        notified.as_mut().enable();
        let now = now_ms();
        let (end, expires_ms, members) = {
            let mut st = session.lock();
            st.check_live(now)?;
            let i = st.member(&agent).ok_or_else(|| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "agent_not_in_session",
                    "This agent is not in the session",
                )
            })?;
            st.rec.agents[i].last_seen_ms = now;
            let members: Option<Vec<Member>> = want_members.then(|| {
                st.rec
                    .agents
                    .iter()
                    .map(|a| Member {
                        agent_id: a.agent_id.clone(),
                        last_seen_at: rfc3339(a.last_seen_ms),
                    })
                    .collect()
            });
            (st.visible_end, st.expires_ms, members)
        };
        let found = app.store.messages_between(&session.id, after, end, limit)?;
        if found.is_empty()
            && wait > 0
            && tokio::time::Instant::now() < deadline
            && !app.shutdown.is_cancelled()
        {
            tokio::select! {
                _ = notified.as_mut() => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = app.shutdown.cancelled() => {}
            }
            notified.set(session.notify.notified());
            continue;
        }
        let next = found.last().map(|(c, _)| *c).or(after).unwrap_or(0);
        let expires = rfc3339(expires_ms);
        let messages = found
            .into_iter()
            .map(|(c, m)| render(c, m, &expires))
            .collect();
        let out = PollAnswer {
            members,
            messages,
            next_cursor: Some(Cursor::of(next)),
        };
        return Ok(Json(out).into_response());
    }
}
