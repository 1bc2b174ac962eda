//! Pairing codes: a short, speakable code that lets a second agent join a session without
//! ever seeing the session id beforehand.
//!
//! ```text
//! PUT  /v1/pair                {sessionId}  → 201 {code, url:"<base>/p/CODE", expiresAt}
//! POST /v1/pair/:code/claim    X-Agent-Id   → 200 {sessionId, status:"claimed", sessionKey, agentId}
//! GET  /v1/pair/:code/status                → 200 {state:"pending"|"claimed"|"expired"}
//! GET  /p/:code                             → instructions (see instructions.rs)
//! ```
//!
//! A code is single use: claims are serialised, and the code is marked claimed in the same
//! critical section that adds the member. A claim that fails (session full, agent id taken)
//! leaves the code usable. Unknown codes are 404 `code_not_found`; expired or used ones 404
//! `code_expired_or_used`. Codes live `--pair-code-expiry-secs` (default 600) and are swept
//! an hour after they expire. (`POST /v1/pair` is accepted as well.) The bodies are the shared
//! types of [`crate::nexus::wire`].

use super::error::{ApiError, ApiResult};
use super::extract::{agent_id, json_body};
use super::state::AppState;
use crate::nexus::wire::{ClaimAnswer, PairAnswer, PairRequest, PairStatusAnswer};
use crate::store::nexus_server::PairRecord;
use crate::time::{now_ms, rfc3339};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

/// What a code looks like now (the wire type, used by the instructions page too).
pub use crate::nexus::wire::PairState;

/// How long an expired or claimed code is remembered (so `status` can say so), ms.
pub const PAIR_RETENTION_MS: u64 = 3_600_000;

fn code_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "code_not_found",
        "Pairing code not found",
    )
}

/// The state of `code`, or `None` if it is unknown.
pub fn lookup(app: &AppState, code: &str, now: u64) -> Result<Option<PairState>, ApiError> {
    let Some(code) = super::ids::normalize_pair_code(code) else {
        return Ok(None);
    };
    let Some(rec) = app.store.get_pair(&code)? else {
        return Ok(None);
    };
    Ok(Some(if rec.claimed_by.is_some() {
        PairState::Claimed
    } else if now >= rec.expires_ms || app.sessions.get_live(&rec.session_id, now).is_err() {
        PairState::Expired
    } else {
        PairState::Pending
    }))
}

/// The base URL links are built on: `--public-url`, else the request's Host.
pub fn base_url(app: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &app.public_url {
        return u.clone();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let sane = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    format!("http://{}", if sane { host } else { "localhost" })
}

/// `PUT /v1/pair`.
pub async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body: PairRequest = json_body(body)?;
    let Some(sid) = body.session_id.filter(|s| !s.is_empty()) else {
        return Err(
            ApiError::invalid_request("sessionId is required").detail("sessionId", "required")
        );
    };
    let now = now_ms();
    let session = app.sessions.get_live(&sid, now)?;
    let expires_ms = now.saturating_add(app.limits.pair_ttl.saturating_mul(1000));
    let rec = PairRecord {
        session_id: session.hex.clone(),
        created_ms: now,
        expires_ms,
        claimed_by: None,
    };
    let mut code = None;
    for _ in 0..16 {
        let candidate = super::ids::new_pair_code();
        if app.store.insert_pair(&candidate, &rec)? {
            code = Some(candidate);
            break;
        }
    }
    let code = code.ok_or_else(|| ApiError::internal("no free pairing code after 16 draws"))?;
    app.store.db().durable().await?;
    let url = format!("{}/p/{code}", base_url(&app, &headers));
    Ok((
        StatusCode::CREATED,
        Json(PairAnswer {
            code,
            expires_at: rfc3339(expires_ms),
            url,
        }),
    )
        .into_response())
}

/// `POST /v1/pair/:code/claim`.
pub async fn claim(
    State(app): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let agent = agent_id(&headers)?;
    let code = super::ids::normalize_pair_code(&code).ok_or_else(code_not_found)?;
    let now = now_ms();
    let (session, key) = {
        let _claims = app.claim_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut rec = app.store.get_pair(&code)?.ok_or_else(code_not_found)?;
        if rec.claimed_by.is_some() || now >= rec.expires_ms {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "code_expired_or_used",
                "This pairing code has expired or was already used",
            ));
        }
        let session = app.sessions.get_live(&rec.session_id, now)?;
        let (key, _) = super::sessions::add_member(&app, &session, &agent, now)?;
        rec.claimed_by = Some(agent.clone());
        app.store.put_pair(&code, &rec)?;
        (session, key)
    };
    app.store.db().durable().await?;
    Ok(Json(ClaimAnswer {
        agent_id: agent,
        session_id: Some(session.hex.clone()),
        session_key: Some(key.expose().to_string()),
        status: "claimed".into(),
    })
    .into_response())
}

/// `GET /v1/pair/:code/status`.
pub async fn status(State(app): State<AppState>, Path(code): Path<String>) -> ApiResult {
    let state = lookup(&app, &code, now_ms())?.ok_or_else(code_not_found)?;
    Ok(Json(PairStatusAnswer { state }).into_response())
}
