//! WebSocket plumbing shared by the handshake, the actor and one-shot sessions: opening a
//! socket with the inbound size cap, reading the next JSON frame, and turning close codes and
//! socket failures into [`GatewayError`]s.
//!
//! Close codes the gateway uses: 1002 protocol mismatch, 1008 policy (bad handshake, auth),
//! 1009 frame too large, 1012 restart (after a `shutdown` event), 1013 try again later
//! (starting up).

use super::error::GatewayError;
use super::frame::{self, Inbound};
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An open gateway WebSocket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `url` (ws or wss, rustls) with Nagle off and inbound messages capped at `max_frame`.
pub(crate) async fn open(url: &str, shown: &str, max_frame: usize) -> Result<Ws, GatewayError> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame));
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| ws_error(shown, e))?;
    Ok(ws)
}

/// The next JSON frame: `Ok(None)` for a malformed one; a close or a broken socket is an error.
pub(crate) async fn next_frame(ws: &mut Ws, shown: &str) -> Result<Option<Inbound>, GatewayError> {
    loop {
        match ws.next().await {
            None => return Err(GatewayError::unreachable(shown, "the connection closed")),
            Some(Err(e)) => return Err(ws_error(shown, e)),
            Some(Ok(Message::Text(t))) => {
                return Ok(match frame::parse(&t) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        tracing::debug!(url = %shown, "malformed gateway frame: {e}");
                        None
                    }
                })
            }
            Some(Ok(Message::Close(cf))) => return Err(close_error(shown, cf.as_ref())),
            Some(Ok(_)) => continue,
        }
    }
}

/// The error a close frame stands for.
pub(crate) fn close_error(shown: &str, cf: Option<&CloseFrame>) -> GatewayError {
    let url = shown.to_string();
    let reason = cf.map(|c| c.reason.to_string()).unwrap_or_default();
    match cf.map(|c| c.code) {
        Some(CloseCode::Protocol) => GatewayError::ProtocolMismatch {
            url,
            detail: reason,
        },
        Some(CloseCode::Restart) => GatewayError::Unavailable {
            url,
            detail: "the gateway is restarting".into(),
            retry_after: None,
        },
        Some(CloseCode::Again) => GatewayError::Unavailable {
            url,
            detail: format!("try again later: {reason}"),
            retry_after: None,
        },
        Some(CloseCode::Size) => GatewayError::Rejected {
            url,
            method: "frame".into(),
            code: "1009".into(),
            detail: "frame too large".into(),
        },
        Some(CloseCode::Policy) => GatewayError::Rejected {
            url,
            method: "connect".into(),
            code: "1008".into(),
            detail: reason,
        },
        Some(code) => {
            GatewayError::unreachable(shown, format!("closed by the gateway ({code}): {reason}"))
        }
        None => GatewayError::unreachable(shown, "closed by the gateway"),
    }
}

/// The error a WebSocket failure stands for.
pub(crate) fn ws_error(shown: &str, e: WsError) -> GatewayError {
    match e {
        WsError::Url(e) => GatewayError::local(format!("bad gateway URL {shown}: {e}")),
        WsError::Http(resp) if resp.status().is_client_error() => GatewayError::Rejected {
            url: shown.into(),
            method: "websocket upgrade".into(),
            code: resp.status().as_u16().to_string(),
            detail:
                "the server refused the WebSocket; is this the gateway's URL (ws://HOST:18789)?"
                    .into(),
        },
        WsError::Http(resp) => GatewayError::unreachable(
            shown,
            format!("HTTP {} instead of a WebSocket", resp.status()),
        ),
        WsError::Capacity(e) => GatewayError::unreachable(shown, format!("oversized frame: {e}")),
        other => GatewayError::unreachable(shown, other.to_string()),
    }
}
