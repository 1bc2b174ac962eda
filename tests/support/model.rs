//! A stub OpenAI-compatible model provider: the model the real gateway's agent talks to.
//!
//! It binds `127.0.0.1:0`, records every request it receives (method, path, JSON body) and
//! answers with a reply the test sets ([`StubModel::set_reply`]; default `"stub reply"`), or,
//! for a request whose conversation holds a needle given to [`StubModel::reply_when`],
//! that needle's reply (so tests sharing one stub script their own turns):
//!
//! - `POST /v1/chat/completions`: OpenClaw's `openai-completions` API. OpenClaw streams
//!   (`"stream": true`): the answer is server-sent events, one `chat.completion.chunk` with the
//!   whole reply, one with `finish_reason:"stop"` and usage, then `data: [DONE]`. A request
//!   without `stream` gets one `chat.completion` JSON object.
//! - `POST /v1/responses`: answered with one `response` object holding the reply (for
//!   providers configured with `openai-responses`).
//! - `GET /v1/models`: lists the one model, [`MODEL`].
//! - anything else: recorded, answered 404.
//!
//! [`StubModel::gateway_config`] is the `models` / `agents` block that points a gateway at it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// The model id the stub serves (`stub/stub-model` in OpenClaw).
pub const MODEL: &str = "stub-model";

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// The JSON body (Null when none or not JSON).
    pub body: Value,
}

impl Recorded {
    /// Every message text of a chat request, in order, flattened (string or content parts).
    pub fn texts(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for m in self.body["messages"].as_array().into_iter().flatten() {
            let role = m["role"].as_str().unwrap_or_default().to_string();
            match &m["content"] {
                Value::String(s) => out.push((role, s.clone())),
                Value::Array(parts) => {
                    for p in parts {
                        if let Some(t) = p["text"].as_str() {
                            out.push((role.clone(), t.to_string()));
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The non-system text of the request, joined (what the conversation carried).
    pub fn user_text(&self) -> String {
        self.texts()
            .into_iter()
            .filter(|(r, _)| r != "system")
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The session key OpenClaw names in its runtime line (`session=agent:main:…`).
    pub fn session(&self) -> Option<String> {
        let all = self.user_text();
        let at = all.find("session=")? + "session=".len();
        Some(
            all[at..]
                .split(|c: char| c.is_whitespace() || c == '|')
                .next()
                .unwrap_or_default()
                .to_string(),
        )
    }

    /// Whether this is a chat completion request.
    pub fn is_chat(&self) -> bool {
        self.path.ends_with("/chat/completions") || self.path.ends_with("/responses")
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    reply: Mutex<String>,
    rules: Mutex<Vec<(String, String)>>,
}

/// A running stub. Stops when dropped (its runtime thread ends with the process).
pub struct StubModel {
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    shared: Arc<Shared>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl StubModel {
    /// Starts the stub on a free loopback port, in its own runtime thread.
    pub fn start() -> StubModel {
        let shared = Arc::new(Shared::default());
        *shared.reply.lock().expect("lock") = "stub reply".into();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the stub model");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = axum::serve(l, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        StubModel {
            base_url: format!("http://{addr}/v1"),
            shared,
            _stop: stop,
        }
    }

    /// The reply every later chat request gets.
    pub fn set_reply(&self, text: &str) {
        *self.shared.reply.lock().expect("lock") = text.to_string();
    }

    /// The reply of every later chat request whose conversation (its non-system texts)
    /// contains `needle`.
    pub fn reply_when(&self, needle: &str, reply: &str) {
        self.shared
            .rules
            .lock()
            .expect("lock")
            .push((needle.to_string(), reply.to_string()));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// Chat requests so far.
    pub fn chats(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(Recorded::is_chat)
            .collect()
    }

    /// The gateway config that makes `stub/stub-model` the default agent model.
    pub fn gateway_config(&self) -> Value {
        json!({
            "models": {"mode": "merge", "providers": {"stub": {
                "baseUrl": self.base_url, "apiKey": "stub-key", "api": "openai-completions",
                "models": [{"id": MODEL, "name": "Stub", "reasoning": false, "input": ["text"],
                    "contextWindow": 128000, "maxTokens": 4096}]}}},
            "agents": {"defaults": {"model": {"primary": format!("stub/{MODEL}")}}}
        })
    }
}

async fn handle(State(s): State<Arc<Shared>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    let stream = body["stream"] == json!(true);
    let rec = Recorded {
        method: method.to_string(),
        path: path.clone(),
        body,
    };
    let said = rec.user_text();
    let scripted = s
        .rules
        .lock()
        .expect("lock")
        .iter()
        .find(|(needle, _)| said.contains(needle.as_str()))
        .map(|(_, r)| r.clone());
    s.requests.lock().expect("lock").push(rec);
    let reply = scripted.unwrap_or_else(|| s.reply.lock().expect("lock").clone());
    match (method.as_str(), path.as_str()) {
        ("GET", p) if p.ends_with("/models") => {
            axum::Json(json!({"object":"list","data":[{"id":MODEL,"object":"model"}]})).into_response()
        }
        ("POST", p) if p.ends_with("/chat/completions") && stream => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id":"stub-1","object":"chat.completion.chunk","created":1,"model":MODEL,
                    "choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
            };
            let mut last = chunk(json!({}), json!("stop"));
            last["usage"] = json!({"prompt_tokens":1,"completion_tokens":1,"total_tokens":2});
            let sse = format!(
                "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
                chunk(json!({"role":"assistant","content":reply}), Value::Null),
                last
            );
            ([("content-type", "text/event-stream")], sse).into_response()
        }
        ("POST", p) if p.ends_with("/chat/completions") => axum::Json(json!({
            "id":"stub-1","object":"chat.completion","created":1,"model":MODEL,
            "choices":[{"index":0,"message":{"role":"assistant","content":reply},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}))
        .into_response(),
        ("POST", p) if p.ends_with("/responses") => axum::Json(json!({
            "id":"resp-1","object":"response","created_at":1,"model":MODEL,"status":"completed",
            "output":[{"type":"message","id":"msg-1","role":"assistant","status":"completed",
                "content":[{"type":"output_text","text":reply,"annotations":[]}]}],
            "usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}))
        .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
