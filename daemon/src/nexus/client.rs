//! The typed Nexus HTTP client: every call of the protocol, with its URL built here and
//! nowhere else, answered as `(status, JSON)`.
//!
//! Both the control handler (`clawlink nexus ...`, whose CLI prints the server's JSON
//! verbatim) and the background poller use it. Nexus sends go straight to the server rather
//! than through the outbox: the protocol's CLI prints the server's reply (`{id, cursor}`), and
//! a server that is down should say so at once, as `nexus.sh send` does.
//!
//! | call | request |
//! |---|---|
//! | create | `PUT /v1/sessions {maxAgents, ttl?, greeting?, creatorAgentId?}` |
//! | status | `GET /v1/sessions/SID` |
//! | join | `POST /v1/sessions/SID/join` as `X-Agent-Id` |
//! | leave | `DELETE /v1/sessions/SID/agents/AID` with the key |
//! | pair, claim, pair status | `PUT /v1/pair {sessionId}`, `POST /v1/pair/CODE/claim`, `GET /v1/pair/CODE/status` |
//! | send | `POST /v1/sessions/SID/messages {text}` with the key (`{text, json}` when signed) |
//! | messages | `GET /v1/sessions/SID/messages?after=C&wait=S&members=true` |
//! | renew | `POST /v1/sessions/SID/renew {ttl?}` with the key |
//! | health | `GET /health` (long-poll capabilities) |
//!
//! Wire: JSON bodies with `Content-Type: application/json`, written from the shared types of
//! [`super::wire`]; identity in `X-Agent-Id` and `X-Session-Key` (the key is only ever placed
//! in that header). An answer keeps the server's status and JSON body as they came, for the
//! CLI; [`Answer::read`] gives the typed view the daemon itself uses. An HTTP error keeps the
//! server's body (non-JSON bodies become `{"error":"http_STATUS"}`); a local failure
//! (connect, timeout, oversized answer) is status 0 with `{"error":"..."}`, the `error` of the
//! protocol's [`ErrorBody`](super::wire::ErrorBody) alone.

use super::wire::{CreateRequest, Health, PairRequest, RenewRequest, SendRequest};
use crate::store::nexus_client::JoinedSession;
use clawlink::Secret;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Deadline of a call made for the CLI.
pub const CLI_DEADLINE: Duration = Duration::from_secs(30);

/// Largest answer body we read, bytes (a full page of 1000 large messages fits).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The default server when neither `--url`, `$NEXUS_URL` nor `[nexus] url` says otherwise.
pub const DEFAULT_SERVER: &str = "https://messaging.md";

/// An answer: HTTP status (0 = local failure), JSON body, and `Retry-After` seconds if sent.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status, 0 for a local failure.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// `Retry-After`, seconds.
    pub retry_after: Option<u64>,
}

impl Answer {
    /// A local failure.
    pub fn local(msg: impl Into<String>) -> Answer {
        Answer {
            status: 0,
            body: json!({ "error": msg.into() }),
            retry_after: None,
        }
    }

    /// 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The protocol error code ([`ErrorBody::error`](super::wire::ErrorBody)), if any.
    pub fn code(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }

    /// The body as the answer type `T` of [`super::wire`], whose fields read leniently; a
    /// body that is not a JSON object reads as `T::default()`.
    pub fn read<T: DeserializeOwned + Default>(&self) -> T {
        T::deserialize(&self.body).unwrap_or_default()
    }
}

/// A request body as JSON text (a local failure if it cannot be written).
fn encode<T: Serialize>(body: &T) -> Result<String, Answer> {
    serde_json::to_string(body).map_err(|e| Answer::local(format!("cannot write the request: {e}")))
}

/// Who is calling: agent id and, when known, its session key.
#[derive(Clone, Copy, Default)]
pub struct Identity<'a> {
    /// `X-Agent-Id`.
    pub agent: Option<&'a str>,
    /// `X-Session-Key`.
    pub key: Option<&'a Secret>,
}

impl<'a> Identity<'a> {
    /// A joined session's agent, with its key.
    pub fn keyed(s: &'a JoinedSession) -> Identity<'a> {
        Identity {
            agent: Some(&s.agent_id),
            key: Some(&s.key),
        }
    }

    /// An agent id alone.
    pub fn agent(id: &'a str) -> Identity<'a> {
        Identity {
            agent: Some(id),
            key: None,
        }
    }
}

/// What `GET .../messages` asks for.
#[derive(Default, Clone, Copy)]
pub struct Page<'a> {
    /// `after=C`.
    pub after: Option<&'a str>,
    /// `wait=S` (long poll).
    pub wait: Option<u64>,
    /// `members=true`.
    pub members: bool,
}

/// The Nexus client over the daemon's shared HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct NexusHttp {
    http: reqwest::Client,
}

impl NexusHttp {
    /// A Nexus client over `http` (the daemon's shared client).
    pub fn new(http: reqwest::Client) -> NexusHttp {
        NexusHttp { http }
    }
}

/// No request body.
const NO_BODY: Option<&()> = None;

fn session_path(sid: &str, rest: &str) -> String {
    format!("/v1/sessions/{}{rest}", seg(sid))
}

impl NexusHttp {
    /// `PUT /v1/sessions`.
    pub async fn create(&self, server: &str, body: &CreateRequest) -> Answer {
        let none = Identity::default();
        self.cli(Method::PUT, server, "/v1/sessions", none, Some(body))
            .await
    }

    /// `GET /v1/sessions/SID`.
    pub async fn status(&self, server: &str, sid: &str) -> Answer {
        let path = session_path(sid, "");
        self.cli(Method::GET, server, &path, Identity::default(), NO_BODY)
            .await
    }

    /// `POST /v1/sessions/SID/join` as `agent`.
    pub async fn join(&self, server: &str, sid: &str, agent: &str) -> Answer {
        let path = session_path(sid, "/join");
        self.cli(Method::POST, server, &path, Identity::agent(agent), NO_BODY)
            .await
    }

    /// `DELETE /v1/sessions/SID/agents/AID`.
    pub async fn leave(&self, s: &JoinedSession) -> Answer {
        let path = session_path(&s.sid, &format!("/agents/{}", seg(&s.agent_id)));
        self.cli(
            Method::DELETE,
            &s.server,
            &path,
            Identity::keyed(s),
            NO_BODY,
        )
        .await
    }

    /// `PUT /v1/pair {sessionId}`.
    pub async fn pair(&self, server: &str, sid: &str) -> Answer {
        let body = PairRequest {
            session_id: Some(sid.to_string()),
        };
        let none = Identity::default();
        self.cli(Method::PUT, server, "/v1/pair", none, Some(&body))
            .await
    }

    /// `POST /v1/pair/CODE/claim` as `agent`.
    pub async fn claim(&self, server: &str, code: &str, agent: &str) -> Answer {
        let path = format!("/v1/pair/{}/claim", seg(code));
        self.cli(Method::POST, server, &path, Identity::agent(agent), NO_BODY)
            .await
    }

    /// `GET /v1/pair/CODE/status`.
    pub async fn pair_status(&self, server: &str, code: &str) -> Answer {
        let path = format!("/v1/pair/{}/status", seg(code));
        self.cli(Method::GET, server, &path, Identity::default(), NO_BODY)
            .await
    }

    /// `POST /v1/sessions/SID/messages {text}`.
    pub async fn send(&self, s: &JoinedSession, text: &str) -> Answer {
        let path = session_path(&s.sid, "/messages");
        let body = SendRequest {
            json: None,
            text: Some(text.to_string()),
        };
        let who = Identity::keyed(s);
        self.cli(Method::POST, &s.server, &path, who, Some(&body))
            .await
    }

    /// `POST /v1/sessions/SID/messages {text, json}`: a text with its member signature
    /// beside it (see [`crate::trust::member_sig`]).
    pub async fn send_signed(&self, s: &JoinedSession, text: &str, json: &Value) -> Answer {
        let path = session_path(&s.sid, "/messages");
        let body = SendRequest {
            json: Some(json.clone()),
            text: Some(text.to_string()),
        };
        let who = Identity::keyed(s);
        self.cli(Method::POST, &s.server, &path, who, Some(&body))
            .await
    }

    /// A call made for the CLI (deadline [`CLI_DEADLINE`]).
    async fn cli<B: Serialize>(
        &self,
        method: Method,
        server: &str,
        path: &str,
        who: Identity<'_>,
        body: Option<&B>,
    ) -> Answer {
        self.call(method, server, path, who, body, CLI_DEADLINE)
            .await
    }

    /// `GET /v1/sessions/SID/messages?...` as the session's agent, within `timeout`.
    pub async fn messages(&self, s: &JoinedSession, page: Page<'_>, timeout: Duration) -> Answer {
        let mut q = Vec::new();
        if let Some(c) = page.after {
            q.push(format!("after={}", seg(c)));
        }
        if let Some(w) = page.wait {
            q.push(format!("wait={w}"));
        }
        if page.members {
            q.push("members=true".to_string());
        }
        let mut path = session_path(&s.sid, "/messages");
        if !q.is_empty() {
            path = format!("{path}?{}", q.join("&"));
        }
        let who = Identity::agent(&s.agent_id);
        self.call(Method::GET, &s.server, &path, who, NO_BODY, timeout)
            .await
    }

    /// `POST /v1/sessions/SID/renew {ttl?}`, within `timeout`.
    pub async fn renew(&self, s: &JoinedSession, ttl: Option<u64>, timeout: Duration) -> Answer {
        let path = session_path(&s.sid, "/renew");
        let body = RenewRequest { ttl };
        let who = Identity::keyed(s);
        self.call(Method::POST, &s.server, &path, who, Some(&body), timeout)
            .await
    }

    /// `METHOD server+path` with `who` and an optional JSON body, within `timeout`.
    async fn call<B: Serialize>(
        &self,
        method: Method,
        server: &str,
        path: &str,
        who: Identity<'_>,
        body: Option<&B>,
        timeout: Duration,
    ) -> Answer {
        let body = match body.map(encode).transpose() {
            Ok(b) => b,
            Err(local) => return local,
        };
        let mut req = self
            .http
            .request(method, format!("{server}{path}"))
            .timeout(timeout);
        if let Some(a) = who.agent {
            req = req.header("X-Agent-Id", a);
        }
        if let Some(k) = who.key.filter(|k| !k.is_empty()) {
            req = req.header("X-Session-Key", k.expose());
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Answer::local(describe(server, &e)),
        };
        let status = resp.status().as_u16();
        let retry_after =
            crate::util::http_client::retry_after(resp.headers()).map(|d| d.as_secs());
        if resp
            .content_length()
            .is_some_and(|l| l as usize > MAX_ANSWER)
        {
            return Answer::local(format!("{server}: answer too large"));
        }
        let bytes = match read_capped(resp).await {
            Ok(b) => b,
            Err(e) => return Answer::local(format!("{server}: {e}")),
        };
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({ "error": format!("http_{status}") }));
        Answer {
            status,
            body,
            retry_after,
        }
    }

    /// `GET /health` → whether the server long-polls, and its longest wait (seconds).
    pub async fn long_poll(&self, server: &str) -> Option<u64> {
        let a = self
            .call(
                Method::GET,
                server,
                "/health",
                Identity::default(),
                NO_BODY,
                Duration::from_secs(10),
            )
            .await;
        let caps = a.read::<Health>().capabilities;
        if !a.ok() || !caps.long_poll {
            return None;
        }
        Some(caps.long_poll_max_wait.unwrap_or(25).clamp(1, 60))
    }
}

async fn read_capped(resp: reqwest::Response) -> Result<Vec<u8>, String> {
    crate::util::http_client::read_capped(resp, MAX_ANSWER).await
}

fn describe(server: &str, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("{server}: timed out")
    } else if e.is_connect() {
        format!("cannot reach {server}")
    } else if e.is_builder() {
        format!("{server}: not a valid server URL")
    } else {
        format!("{server}: request failed")
    }
}

/// Normalizes a server URL: trimmed, no trailing slash, must be http(s).
pub fn normalize(url: &str) -> Result<String, String> {
    let u = url.trim().trim_end_matches('/');
    let ok = (u.starts_with("http://") || u.starts_with("https://"))
        && u.len() <= 2048
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(u.to_string())
    } else {
        Err(format!(
            "server URL {url:?} must start with http:// or https://"
        ))
    }
}

/// Percent-encodes a path segment (session ids, codes and agent ids are plain in practice).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
