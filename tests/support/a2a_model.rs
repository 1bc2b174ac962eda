//! A minimal stub OpenAI-compatible model provider, so that a real gateway's agent answers
//! A2A tasks: `POST …/chat/completions` gets `reply` (as server-sent events when the request
//! streams, as one `chat.completion` otherwise), `GET …/models` lists [`MODEL`], anything
//! else 404. Every request is recorded. [`StubModel::gateway_config`] points a gateway at it.

use crate::a2a::{serve_http, Seen};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// The model id (`stub/stub-model` in OpenClaw).
pub const MODEL: &str = "stub-model";

/// A running stub (its thread lives as long as the test binary).
pub struct StubModel {
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    /// Every request seen.
    pub requests: Arc<Mutex<Vec<Seen>>>,
}

impl StubModel {
    /// Starts a stub that always answers `reply`.
    pub fn start(reply: &str) -> StubModel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stub model");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let reply = reply.to_string();
        let requests = serve_http(listener, move |req| answer(req, &reply));
        StubModel { base_url, requests }
    }

    /// The `models` and `agents` config that makes a gateway's agent use this stub.
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

fn answer(req: &Seen, reply: &str) -> (u16, String, Vec<u8>) {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let path = req.line.split_whitespace().nth(1).unwrap_or("");
    let json_ct = "application/json".to_string();
    if req.line.starts_with("GET") && path.ends_with("/models") {
        let v = json!({"object": "list", "data": [{"id": MODEL, "object": "model"}]});
        return (200, json_ct, v.to_string().into_bytes());
    }
    if !(req.line.starts_with("POST") && path.ends_with("/chat/completions")) {
        return (404, json_ct, b"{}".to_vec());
    }
    let usage = json!({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2});
    if body["stream"] != json!(true) {
        let v = json!({"id": "stub-1", "object": "chat.completion", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": usage});
        return (200, json_ct, v.to_string().into_bytes());
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "stub-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut last = chunk(json!({}), json!("stop"));
    last["usage"] = usage;
    let sse = format!(
        "data: {}\n\ndata: {last}\n\ndata: [DONE]\n\n",
        chunk(json!({"role": "assistant", "content": reply}), Value::Null)
    );
    (200, "text/event-stream".into(), sse.into_bytes())
}
