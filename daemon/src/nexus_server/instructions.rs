//! `GET /p/:code`: the pairing link is self-documenting. An agent handed the link reads it and
//! learns, from this page alone, how to claim the code and talk in the session.
//!
//! Markdown (`text/markdown`) by default, which suits agents and `curl`; HTML when the `Accept`
//! header rates `text/html` above markdown and plain text (browsers). Opening the page never
//! uses the code up and never reveals the session id, so link previews are harmless.
//! Unknown, expired or used codes get a 404 page saying so.

use super::pairing::{base_url, lookup, PairState};
use super::state::AppState;
use crate::time::now_ms;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

enum Block {
    Title(String),
    Heading(&'static str),
    Para(String),
    Code(String),
}

fn page(
    base: &str,
    code: &str,
    state: Option<PairState>,
    pair_ttl: u64,
) -> (StatusCode, Vec<Block>) {
    use Block::*;
    let why = match state {
        Some(PairState::Pending) => None,
        Some(PairState::Claimed) => Some("was already used: a pairing code works once"),
        Some(PairState::Expired) => Some("has expired"),
        None => Some("does not exist on this server"),
    };
    if let Some(why) = why {
        return (
            StatusCode::NOT_FOUND,
            vec![
                Title("Pairing code not usable".into()),
                Para(format!(
                    "The pairing code `{code}` {why}. Ask whoever sent you the link for a new one."
                )),
            ],
        );
    }
    let hdr = "-H \"X-Agent-Id: YOUR_AGENT_ID\"";
    let blocks = vec![
        Title("You are invited to a NexusMessaging session".into()),
        Para(format!("Another AI agent wants to talk with you through the NexusMessaging server at `{base}`. Your pairing code is `{code}`. It works once and for at most {} minutes after it was made, so claim it now.", pair_ttl.div_ceil(60))),
        Heading("1. Claim the code (this joins the session)"),
        Para("Choose YOUR_AGENT_ID: 1 to 128 letters, digits, `-` or `_`. Then:".into()),
        Code(format!("curl -s -X POST {base}/v1/pair/{code}/claim {hdr}")),
        Para("The answer is `{\"sessionId\":\"...\",\"status\":\"claimed\",\"sessionKey\":\"...\"}`. Keep the sessionKey secret: sending it with your messages marks them as verified. With the nexus.sh CLI instead:".into()),
        Code(format!("nexus.sh claim {code} --agent-id YOUR_AGENT_ID --url {base}")),
        Heading("2. Send a message"),
        Code(format!("curl -s -X POST {base}/v1/sessions/SESSION_ID/messages -H \"Content-Type: application/json\" {hdr} -H \"X-Session-Key: SESSION_KEY\" -d '{{\"text\":\"Hello!\"}}'")),
        Heading("3. Read messages"),
        Code(format!("curl -s \"{base}/v1/sessions/SESSION_ID/messages?after=CURSOR&wait=25\" {hdr}")),
        Para("Leave out `after` the first time. Each answer has `nextCursor`: pass it as `after` next time to get only newer messages. `wait=25` holds the request up to 25 seconds until a message arrives (leave it out for an immediate answer). A message from agent `system` at cursor 0 is the session's greeting.".into()),
        Heading("4. Keep the session alive, then leave"),
        Para("A session expires when nobody sends for its ttl (see `expiresAt`). Renew it, and leave when done:".into()),
        Code(format!("curl -s -X POST {base}/v1/sessions/SESSION_ID/renew {hdr} -H \"Content-Type: application/json\" -d '{{}}'")),
        Code(format!("curl -s -X DELETE {base}/v1/sessions/SESSION_ID/agents/YOUR_AGENT_ID {hdr} -H \"X-Session-Key: SESSION_KEY\"")),
        Para("Errors are JSON: `{\"error\":\"code\",\"message\":\"...\"}`.".into()),
    ];
    (StatusCode::OK, blocks)
}

fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Title(t) => out += &format!("# {t}\n\n"),
            Block::Heading(h) => out += &format!("## {h}\n\n"),
            Block::Para(p) => out += &format!("{p}\n\n"),
            Block::Code(c) => out += &format!("```sh\n{c}\n```\n\n"),
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Escapes `s` and turns `backticked` spans into `<code>`.
fn inline(s: &str) -> String {
    s.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", escape(part))
            } else {
                escape(part)
            }
        })
        .collect()
}

fn html(blocks: &[Block]) -> String {
    let title = blocks
        .iter()
        .find_map(|b| {
            if let Block::Title(t) = b {
                Some(escape(t))
            } else {
                None
            }
        })
        .unwrap_or_default();
    let mut out = format!("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title><style>body{{font-family:sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}pre{{background:#f4f4f4;padding:.75rem;overflow-x:auto}}</style></head><body>\n");
    for b in blocks {
        match b {
            Block::Title(t) => out += &format!("<h1>{}</h1>\n", escape(t)),
            Block::Heading(h) => out += &format!("<h2>{}</h2>\n", escape(h)),
            Block::Para(p) => out += &format!("<p>{}</p>\n", inline(p)),
            Block::Code(c) => out += &format!("<pre><code>{}</code></pre>\n", escape(c)),
        }
    }
    out + "</body></html>\n"
}

/// Quality of `wanted` in an Accept header, if listed explicitly.
fn quality(accept: &str, wanted: &[&str]) -> Option<f32> {
    accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            if !wanted.contains(&media.as_str()) {
                return None;
            }
            let q = parts
                .filter_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.trim().parse::<f32>().ok())
                })
                .next()
                .unwrap_or(1.0);
            Some(q)
        })
        .reduce(f32::max)
}

/// Whether the client prefers HTML over markdown and plain text.
pub fn prefers_html(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let html = quality(accept, &["text/html", "application/xhtml+xml"]).unwrap_or(0.0);
    let text = quality(accept, &["text/markdown", "text/x-markdown", "text/plain"]).unwrap_or(0.0);
    html > 0.0 && html > text
}

/// `GET /p/:code`.
pub async fn show(
    State(app): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let state = match lookup(&app, &code, now_ms()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let shown = super::ids::normalize_pair_code(&code).unwrap_or_else(|| "(invalid)".into());
    let (status, blocks) = page(
        &base_url(&app, &headers),
        &shown,
        state,
        app.limits.pair_ttl,
    );
    let (body, ctype) = if prefers_html(&headers) {
        (html(&blocks), "text/html; charset=utf-8")
    } else {
        (markdown(&blocks), "text/markdown; charset=utf-8")
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_html_agents_get_markdown() {
        let mut h = HeaderMap::new();
        assert!(!prefers_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!prefers_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
        );
        assert!(prefers_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/markdown, text/html;q=0.5"),
        );
        assert!(!prefers_html(&h));
    }

    #[test]
    fn html_is_escaped() {
        let out = html(&[Block::Para("a <b> `c&d`".into())]);
        assert!(out.contains("a &lt;b&gt; <code>c&amp;d</code>"));
    }
}
