//! Session lifecycle: create, status, join, leave, renew.
//!
//! ```text
//! PUT  /v1/sessions                      {ttl?, maxAgents?, greeting?, creatorAgentId?}
//!      201 {sessionId, ttl, maxAgents, state:"active", createdAt, expiresAt, creatorAgentId?, sessionKey?}
//! GET  /v1/sessions/:id                  200 {sessionId, state, agents:[id...], ttl, maxAgents, creatorAgentId, createdAt, expiresAt}
//! POST /v1/sessions/:id/join             X-Agent-Id → 200 {status:"joined", agentsOnline, sessionKey}
//! DELETE /v1/sessions/:id/agents/:agent  X-Agent-Id, X-Session-Key → 200 {ok, sessionId, agentId, message}
//! POST /v1/sessions/:id/renew            X-Agent-Id, {ttl?} → 200 {sessionId, state, ttl, expiresAt, agents}
//! ```
//!
//! Every change is acknowledged only once durable. (`POST /v1/sessions` is accepted as well.)
//! The bodies are the shared types of [`crate::nexus::wire`].

use super::error::{ApiError, ApiResult};
use super::extract::{agent_id, json_body, session_key};
use super::state::{AppState, Session, SessionState};
use crate::nexus::wire::{
    CreateAnswer, CreateRequest, JoinAnswer, LeaveAnswer, RenewAnswer, RenewRequest, SessionStatus,
};
use crate::store::nexus_server::{AgentRecord, MessageRecord, SessionRecord};
use crate::time::{now_ms, rfc3339};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

/// Status 507 with `storage_limit_reached`: a server-wide or per-session cap is reached.
pub fn storage_full(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "storage_limit_reached",
        format!("The server holds the maximum number of {what}"),
    )
}

fn check_ttl(app: &AppState, ttl: Option<u64>) -> Result<u64, ApiError> {
    let l = &app.limits;
    let ttl = ttl.unwrap_or(l.default_ttl);
    if ttl < l.min_ttl || ttl > l.max_ttl {
        let m = format!(
            "ttl must be between {} and {} seconds",
            l.min_ttl, l.max_ttl
        );
        return Err(ApiError::invalid_request(m.clone()).detail("ttl", m));
    }
    Ok(ttl)
}

/// `PUT /v1/sessions`.
pub async fn create(
    State(app): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body: CreateRequest = json_body(body)?;
    let ttl = check_ttl(&app, body.ttl)?;
    let max_agents = body.max_agents.unwrap_or(app.limits.default_max_agents);
    if max_agents < 2 || max_agents > app.limits.max_agents_cap {
        let m = format!(
            "maxAgents must be between 2 and {}",
            app.limits.max_agents_cap
        );
        return Err(ApiError::invalid_request(m.clone()).detail("maxAgents", m));
    }
    let creator = body.creator_agent_id.filter(|c| !c.is_empty());
    if creator
        .as_deref()
        .is_some_and(|c| !super::ids::valid_agent_id(c))
    {
        return Err(ApiError::invalid_request(
            "creatorAgentId must be 1 to 128 letters, digits, '-' or '_'",
        )
        .detail("creatorAgentId", "invalid"));
    }
    let greeting = body
        .greeting
        .filter(|g| !g.is_empty())
        .map(|g| super::redact::redact(&g).0);
    if greeting
        .as_ref()
        .is_some_and(|g| g.len() > app.limits.max_message_bytes)
    {
        return Err(ApiError::too_large("The greeting is too large"));
    }
    // Counted atomically, per client too, before anything is written.
    let slot = app.sessions.admit(client.ip(), &app.limits)?;
    let now = now_ms();
    let expires_ms = now.saturating_add(ttl.saturating_mul(1000));
    let id = super::ids::new_session_id();
    let mut key = None;
    let mut agents = Vec::new();
    if let Some(c) = &creator {
        let (k, key_hash) = super::ids::new_session_key();
        agents.push(AgentRecord {
            agent_id: c.clone(),
            key_hash,
            joined_ms: now,
            last_seen_ms: now,
        });
        key = Some(k);
    }
    let rec = SessionRecord {
        ttl_secs: ttl,
        max_agents,
        creator: creator.clone(),
        created_ms: now,
        expires_ms,
        agents,
    };
    app.store.put_session(&id, &rec)?;
    let count = match greeting {
        Some(text) => {
            let m = MessageRecord {
                id: super::ids::new_message_id(),
                agent_id: "system".into(),
                text: Some(text),
                json: None,
                verified: false,
                sent_ms: now,
            };
            app.store.put_message(&id, 0, &m)?;
            1
        }
        None => 0,
    };
    app.store.db().durable().await?;
    let st = SessionState {
        rec,
        expires_ms,
        next_cursor: 1,
        visible_end: 1,
        count,
        gone: false,
    };
    let session = Session::new(id, st);
    // The creator and its key are written together, or neither.
    let (creator_agent_id, session_key) = match (creator, key) {
        (Some(c), Some(k)) => (Some(c), Some(k.expose().to_string())),
        _ => (None, None),
    };
    let out = CreateAnswer {
        created_at: rfc3339(now),
        creator_agent_id,
        expires_at: Some(rfc3339(expires_ms)),
        max_agents,
        session_id: Some(session.hex.clone()),
        session_key,
        state: "active".into(),
        ttl: Some(ttl),
    };
    tracing::debug!(ttl, max_agents, "session created");
    app.sessions.insert(session, slot);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `GET /v1/sessions/:id`.
pub async fn status(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let now = now_ms();
    let session = app.sessions.get_live(&id, now)?;
    let st = session.lock();
    st.check_live(now)?;
    Ok(Json(SessionStatus {
        agent_count: st.rec.agents.len(),
        agents: st.agent_ids(),
        created_at: rfc3339(st.rec.created_ms),
        creator_agent_id: st.rec.creator.clone(),
        expires_at: rfc3339(st.expires_ms),
        max_agents: st.rec.max_agents,
        session_id: session.hex.clone(),
        state: "active".into(),
        ttl: st.rec.ttl_secs,
    })
    .into_response())
}

/// Adds `agent` to `session` (join and claim) and writes the record; not yet durable.
/// Returns the new member's key and the member count.
pub fn add_member(
    app: &AppState,
    session: &Session,
    agent: &str,
    now: u64,
) -> Result<(clawlink::Secret, usize), ApiError> {
    let mut st = session.lock();
    st.check_live(now)?;
    if st.member(agent).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "agent_id_taken",
            "This agent id is already in the session",
        ));
    }
    if st.rec.agents.len() >= st.rec.max_agents as usize {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "session_full",
            "The session has reached maxAgents",
        ));
    }
    let (key, key_hash) = super::ids::new_session_key();
    let mut rec = st.rec.clone();
    rec.agents.push(AgentRecord {
        agent_id: agent.to_string(),
        key_hash,
        joined_ms: now,
        last_seen_ms: now,
    });
    st.commit(&app.store, &session.id, rec)?;
    Ok((key, st.rec.agents.len()))
}

/// `POST /v1/sessions/:id/join`.
pub async fn join(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let agent = agent_id(&headers)?;
    let now = now_ms();
    let session = app.sessions.get_live(&id, now)?;
    let (key, online) = add_member(&app, &session, &agent, now)?;
    app.store.db().durable().await?;
    tracing::debug!(agent = %agent, online, "joined");
    Ok(Json(JoinAnswer {
        agent_id: agent,
        agents_online: Some(online),
        already_joined: None,
        session_id: session.hex.clone(),
        session_key: Some(key.expose().to_string()),
        status: "joined".into(),
    })
    .into_response())
}

/// `DELETE /v1/sessions/:id/agents/:agentId`.
pub async fn leave(
    State(app): State<AppState>,
    Path((id, target)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let now = now_ms();
    let session = app.sessions.get_live(&id, now)?;
    let caller = headers
        .get("x-agent-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let Some(key) = session_key(&headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_session_key",
            "The X-Session-Key header is required",
        ));
    };
    {
        let mut st = session.lock();
        st.check_live(now)?;
        let Some(i) = st.member(&target) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "agent_not_found",
                "No such agent in this session",
            ));
        };
        if !super::ids::key_matches(key.expose(), &st.rec.agents[i].key_hash) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_session_key",
                "The session key is not valid for this agent",
            ));
        }
        if caller.is_some_and(|c| c != target) {
            return Err(ApiError::forbidden("An agent can only remove itself"));
        }
        if st.rec.creator.as_deref() == Some(target.as_str()) {
            return Err(ApiError::forbidden("The creator cannot leave the session"));
        }
        let mut rec = st.rec.clone();
        rec.agents.remove(i);
        st.commit(&app.store, &session.id, rec)?;
    }
    app.store.db().durable().await?;
    Ok(Json(LeaveAnswer {
        agent_id: target,
        message: "Agent left the session".into(),
        ok: true,
        session_id: session.hex.clone(),
    })
    .into_response())
}

/// `POST /v1/sessions/:id/renew`.
pub async fn renew(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let agent = agent_id(&headers)?;
    let body: RenewRequest = json_body(body)?;
    let now = now_ms();
    let session = app.sessions.get_live(&id, now)?;
    let key = session_key(&headers);
    let out = {
        let mut st = session.lock();
        st.check_live(now)?;
        let i = st
            .member(&agent)
            .ok_or_else(|| ApiError::forbidden("Only members can renew the session"))?;
        if key
            .as_ref()
            .is_some_and(|k| !super::ids::key_matches(k.expose(), &st.rec.agents[i].key_hash))
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_session_key",
                "The session key is not valid for this agent",
            ));
        }
        let ttl = check_ttl(&app, Some(body.ttl.unwrap_or(st.rec.ttl_secs)))?;
        let mut rec = st.rec.clone();
        rec.ttl_secs = ttl;
        rec.agents[i].last_seen_ms = now;
        st.expires_ms = now.saturating_add(ttl.saturating_mul(1000));
        st.commit(&app.store, &session.id, rec)?;
        RenewAnswer {
            agents: st.agent_ids(),
            expires_at: Some(rfc3339(st.expires_ms)),
            session_id: session.hex.clone(),
            state: "active".into(),
            ttl: Some(ttl),
        }
    };
    app.store.db().durable().await?;
    Ok(Json(out).into_response())
}
