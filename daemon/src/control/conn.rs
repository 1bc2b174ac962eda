//! One control connection: handshake, then requests in order, or a `listen` stream.

use crate::state::State;
use clawlink::frame::{HANDSHAKE_DEADLINE, IDLE_DEADLINE, MAX_FRAME, MAX_REPLY};
use clawlink::proto::{ApiError, Event, Hello, HelloOk, Request, Response, PROTOCOL_VERSION};
use futures_util::StreamExt;
use interprocess::local_socket::tokio::Stream;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;

/// What reading one frame gave.
enum Read {
    Line(String),
    Closed,
    Fatal(ApiError),
}

async fn read<R>(frames: &mut FramedRead<R, LinesCodec>, deadline: std::time::Duration) -> Read
where
    R: tokio::io::AsyncRead + Unpin,
{
    match tokio::time::timeout(deadline, frames.next()).await {
        Err(_) => Read::Closed,
        Ok(None) => Read::Closed,
        Ok(Some(Ok(line))) => Read::Line(line),
        Ok(Some(Err(LinesCodecError::MaxLineLengthExceeded))) => Read::Fatal(ApiError::new(
            "frame_too_large",
            format!("request larger than {MAX_FRAME} bytes"),
        )),
        Ok(Some(Err(LinesCodecError::Io(e)))) if e.kind() == std::io::ErrorKind::InvalidData => {
            Read::Fatal(ApiError::new("bad_request", "request is not valid UTF-8"))
        }
        Ok(Some(Err(_))) => Read::Closed,
    }
}

async fn write<T: serde::Serialize>(out: &Stream, value: &T) -> bool {
    let Ok(mut line) = serde_json::to_vec(value) else {
        return false;
    };
    line.push(b'\n');
    let mut out = out;
    out.write_all(&line).await.is_ok()
}

/// Writes a reply, or a `too_large` error in its place when it would exceed [`MAX_REPLY`].
async fn write_reply(out: &Stream, response: &Response) -> bool {
    let Ok(mut line) = serde_json::to_vec(response) else {
        return false;
    };
    if line.len() > MAX_REPLY {
        let e = ApiError::new(
            "too_large",
            format!(
                "the reply would be {} MiB, more than the {} MiB a reply may be",
                line.len() >> 20,
                MAX_REPLY >> 20
            ),
        )
        .with_hint("ask for less, e.g. `clawlink inbox --limit 1000` or `--unread`");
        return write(out, &Response::err(e)).await;
    }
    line.push(b'\n');
    let mut out = out;
    out.write_all(&line).await.is_ok()
}

/// Serves one connection until it closes, idles out, or the daemon shuts down.
pub async fn handle(stream: Stream, state: Arc<State>, shutdown: CancellationToken) {
    // `&Stream` reads and writes; the codec reads through one reference, replies go through another.
    let tx = &stream;
    let mut frames = FramedRead::new(&stream, LinesCodec::new_with_max_length(MAX_FRAME));

    let hello = match read(&mut frames, HANDSHAKE_DEADLINE).await {
        Read::Line(l) => l,
        Read::Closed => return,
        Read::Fatal(e) => {
            write(tx, &Response::err(e)).await;
            return;
        }
    };
    match serde_json::from_str::<Hello>(&hello) {
        Ok(h) if h.clawlink == PROTOCOL_VERSION => {
            let ok = HelloOk {
                clawlink: PROTOCOL_VERSION,
                daemon: format!("clawlinkd {}", env!("CARGO_PKG_VERSION")),
            };
            if !write(tx, &ok).await {
                return;
            }
        }
        Ok(h) => {
            let e = ApiError::new(
                "version_mismatch",
                format!("client speaks control protocol {}, clawlinkd {} speaks {PROTOCOL_VERSION}", h.clawlink, env!("CARGO_PKG_VERSION")),
            )
            .with_hint("use the clawlink binary that came with this clawlinkd, or restart the daemon after upgrading");
            write(tx, &Response::err(e)).await;
            return;
        }
        Err(e) => {
            let e = ApiError::new(
                "bad_request",
                format!("expected a hello frame {{\"clawlink\":{PROTOCOL_VERSION}}}: {e}"),
            );
            write(tx, &Response::err(e)).await;
            return;
        }
    }

    loop {
        let line = tokio::select! {
            r = read(&mut frames, IDLE_DEADLINE) => r,
            _ = shutdown.cancelled() => return,
        };
        let line = match line {
            Read::Line(l) => l,
            Read::Closed => return,
            Read::Fatal(e) => {
                write(tx, &Response::err(e)).await;
                return;
            }
        };
        let request = match serde_json::from_str::<Request>(&line) {
            Ok(r) => r,
            Err(e) => {
                let err = ApiError::new("bad_request", format!("cannot parse request: {e}"));
                if !write(tx, &Response::err(err)).await {
                    return;
                }
                continue;
            }
        };
        tracing::debug!(method = request.method(), "control request");
        if let Request::Listen(params) = request {
            stream_events(&mut frames, tx, &state, params.source, &shutdown).await;
            return;
        }
        let response = match super::handlers::dispatch(&state, request).await {
            Ok(v) => Response::ok(v),
            Err(e) => Response::err(e),
        };
        if !write_reply(tx, &response).await {
            return;
        }
    }
}

async fn stream_events<R>(
    frames: &mut FramedRead<R, LinesCodec>,
    tx: &Stream,
    state: &State,
    source: Option<String>,
    shutdown: &CancellationToken,
) where
    R: tokio::io::AsyncRead + Unpin,
{
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = state.hub.subscribe();
    if !write(tx, &Response::ok(serde_json::json!({"subscribed": true}))).await {
        return;
    }
    loop {
        let event = tokio::select! {
            m = rx.recv() => match m {
                Ok(m) if source.as_ref().is_some_and(|s| s != &m.source) => continue,
                Ok(m) => Event::Message { message: m },
                Err(RecvError::Lagged(n)) => Event::Lagged { missed: n },
                Err(RecvError::Closed) => Event::Shutdown,
            },
            _ = shutdown.cancelled() => Event::Shutdown,
            // Anything the client sends now, or its hang-up, ends the subscription.
            _ = frames.next() => return,
        };
        let last = matches!(event, Event::Shutdown);
        if !write(tx, &event).await || last {
            return;
        }
    }
}
