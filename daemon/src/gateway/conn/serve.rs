//! The `connected` phase of the actor: write requests as they come, read answers and events,
//! watch the tick gap and the idle deadline. See [`super`] for the lifecycle.

use super::{Actor, Call, Cmd, Pending, Phase};
use crate::gateway::error::GatewayError;
use crate::gateway::frame::{self, Inbound};
use crate::gateway::handshake::Hello;
use crate::gateway::socket::{next_frame, ws_error, Ws};
use futures_util::SinkExt;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Message;

impl Actor {
    pub(super) async fn serve(&mut self, mut ws: Ws, hello: Hello) -> Phase {
        let connected_at = Instant::now();
        let dead_after = hello.tick_interval * 2;
        let mut last_rx = Instant::now();
        let mut pending: HashMap<String, Pending> = HashMap::new();
        let mut next_id: u64 = 0;
        let mut restart = false;
        let mut queued: VecDeque<Cmd> = std::mem::take(&mut self.queue);
        let outcome: Result<(), GatewayError> = loop {
            if let Some(cmd) = queued.pop_front() {
                next_id += 1;
                if let Err(e) = self
                    .write(&mut ws, &hello, next_id, cmd, &mut pending)
                    .await
                {
                    break Err(e);
                }
                continue;
            }
            let idle_at = self.last_used + self.tuning.idle_timeout;
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    None => {
                        let _ = ws.close(None).await;
                        return Phase::Exit;
                    }
                    Some(cmd) => {
                        self.last_used = Instant::now();
                        queued.push_back(cmd);
                    }
                },
                msg = next_frame(&mut ws, &self.shown) => {
                    last_rx = Instant::now();
                    match msg {
                        Ok(Some(Inbound::Res(res))) => self.answer(res, &mut pending),
                        Ok(Some(Inbound::Event(ev))) => {
                            if ev.event == "shutdown" {
                                tracing::info!(url = %self.shown, "gateway announced a restart");
                                restart = true;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            // Close 1012 (restart) or 1013 (try again later): expected, not a fault.
                            restart |= matches!(&e, GatewayError::Unavailable { .. });
                            break Err(e);
                        }
                    }
                }
                _ = sleep_until(last_rx + dead_after) => {
                    break Err(GatewayError::unreachable(&self.shown, format!(
                        "no frame for {} although the gateway ticks every {}; the link is dead",
                        humantime::format_duration(dead_after), humantime::format_duration(hello.tick_interval))));
                }
                // Answers whose callers gave up do not keep the connection open.
                _ = sleep_until(idle_at), if pending.values().all(|p| p.reply.is_closed()) => {
                    tracing::debug!(url = %self.shown, "closing the idle gateway connection");
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    self.set(|s| s.state = "idle");
                    return Phase::Idle;
                }
            }
        };
        let err = outcome
            .err()
            .unwrap_or_else(|| GatewayError::unreachable(&self.shown, "connection ended"));
        let lost = GatewayError::unreachable(
            &self.shown,
            format!("the connection broke before the answer ({err}); retrying is safe"),
        );
        for (_, p) in pending.drain() {
            let _ = p.reply.send(Err(lost.clone()));
        }
        self.queue = queued;
        if connected_at.elapsed() >= self.tuning.stable_after || restart {
            self.backoff.reset();
        }
        if restart {
            self.restart_at = Some(Instant::now());
            tracing::info!(url = %self.shown, "gateway restarting; reconnecting");
        } else {
            tracing::warn!(url = %self.shown, "gateway connection lost: {err}");
        }
        self.set(|s| {
            s.restarting = restart;
            s.last_error = (!restart).then(|| err.to_string());
        });
        let unavailable = GatewayError::Unavailable {
            url: self.shown.clone(),
            detail: "the gateway is restarting".into(),
            retry_after: None,
        };
        self.schedule(if restart { unavailable } else { err })
    }

    async fn write(
        &mut self,
        ws: &mut Ws,
        hello: &Hello,
        n: u64,
        cmd: Cmd,
        pending: &mut HashMap<String, Pending>,
    ) -> Result<(), GatewayError> {
        if cmd.reply.is_closed() {
            return Ok(());
        }
        let id = n.to_string();
        let (method, text) = match build(&id, &cmd.call, hello) {
            Ok(v) => v,
            Err(e) => {
                let _ = cmd.reply.send(Err(e));
                return Ok(());
            }
        };
        if text.len() > hello.max_payload {
            let e = GatewayError::Rejected {
                url: self.shown.clone(),
                method,
                code: "too_large".into(),
                detail: format!(
                    "{} bytes exceed the gateway's {} byte limit",
                    text.len(),
                    hello.max_payload
                ),
            };
            let _ = cmd.reply.send(Err(e));
            return Ok(());
        }
        pending.retain(|_, p| !p.reply.is_closed());
        pending.insert(
            id,
            Pending {
                reply: cmd.reply,
                method,
                sent_at: Instant::now(),
            },
        );
        match tokio::time::timeout(self.tuning.request_timeout, ws.send(Message::text(text))).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ws_error(&self.shown, e)),
            Err(_) => Err(GatewayError::unreachable(
                &self.shown,
                "the gateway stopped reading",
            )),
        }
    }

    fn answer(&self, res: frame::Res, pending: &mut HashMap<String, Pending>) {
        let Some(p) = pending.remove(&res.id) else {
            tracing::debug!(url = %self.shown, id = %res.id, "ignoring an answer to an unknown or already answered request");
            return;
        };
        let rtt = p.sent_at.elapsed();
        self.set(|s| s.rtt = Some(rtt));
        let result = if res.ok {
            Ok(res.payload.unwrap_or(Value::Null))
        } else {
            Err(GatewayError::from_gateway(
                &self.shown,
                &p.method,
                &res.error.unwrap_or_default(),
                self.connector.device.id(),
            ))
        };
        let _ = p.reply.send(result);
    }
}

/// The request frame for `call`, and its method name.
fn build(id: &str, call: &Call, hello: &Hello) -> Result<(String, String), GatewayError> {
    let (method, text) = match call {
        Call::Raw { method, params } => (method.clone(), frame::request(id, method, params)),
        Call::Deliver(d) => {
            let main = hello
                .main_session_key
                .as_deref()
                .unwrap_or(crate::gateway::DEFAULT_SESSION);
            (d.method.as_str().to_string(), d.frame(id, main))
        }
    };
    text.map(|t| (method, t))
        .map_err(|e| GatewayError::local(format!("cannot encode the request: {e}")))
}
