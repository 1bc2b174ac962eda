//! A one-shot gateway session: connect, handshake, a few sequential requests, close.
//!
//! Used where a fresh connection is the point: `ping` (is the gateway reachable and does the
//! token work *now*, with a round trip measured on a new handshake) and the cold-path
//! benchmark. Everything long-lived goes through the pool's actors instead.

use super::error::{display_url, GatewayError};
use super::frame::{self, Inbound};
use super::handshake::{Connector, Hello};
use super::socket::{next_frame, ws_error, Ws};
use clawlink::Secret;
use futures_util::SinkExt;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// An open, authenticated connection used by one caller at a time.
pub(crate) struct Session {
    ws: Ws,
    shown: String,
    device_id: String,
    next_id: u64,
    /// What the gateway said in `hello-ok`.
    pub hello: Hello,
}

impl Session {
    /// Connects and completes the handshake.
    pub async fn open(
        connector: &Connector,
        url: &str,
        token: &Secret,
    ) -> Result<Self, GatewayError> {
        let (ws, hello) = connector.connect(url, token).await?;
        Ok(Self {
            ws,
            shown: display_url(url),
            device_id: connector.device.id().to_string(),
            next_id: 0,
            hello,
        })
    }

    /// Sends one request and waits (up to `deadline`) for its answer, skipping events.
    pub async fn call(
        &mut self,
        method: &str,
        params: &impl Serialize,
        deadline: Duration,
    ) -> Result<Value, GatewayError> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let text =
            frame::request(&id, method, params).map_err(|e| GatewayError::local(e.to_string()))?;
        let until = Instant::now() + deadline;
        let exchange = async {
            self.ws
                .send(Message::text(text))
                .await
                .map_err(|e| ws_error(&self.shown, e))?;
            loop {
                if let Some(Inbound::Res(res)) = next_frame(&mut self.ws, &self.shown).await? {
                    if res.id != id {
                        continue;
                    }
                    return if res.ok {
                        Ok(res.payload.unwrap_or(Value::Null))
                    } else {
                        Err(GatewayError::from_gateway(
                            &self.shown,
                            method,
                            &res.error.unwrap_or_default(),
                            &self.device_id,
                        ))
                    };
                }
            }
        };
        match tokio::time::timeout_at(until, exchange).await {
            Ok(r) => r,
            Err(_) => Err(GatewayError::Timeout {
                url: self.shown.clone(),
                what: method.to_string(),
                after: deadline,
            }),
        }
    }

    /// Closes politely (bounded wait).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}
