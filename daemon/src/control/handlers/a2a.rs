//! `a2a …` requests: peers allowed to call the endpoint, inbound tasks (list, reply, reject),
//! A2A contacts, and `ask` (send, then wait for the followed task's outcome).

use super::{json, store_err, Reply};
use crate::a2a::A2a;
use crate::state::State;
use crate::store::a2a::TaskRecord;
use clawlink::proto::{
    A2aContactReply, A2aPeerToken, A2aPeerView, A2aRequest, A2aTaskView, ApiError, AskParams,
    AskReply, Count, DeliveryState, NewContact, SendParams, SendReply,
};
use clawlink::Secret;
use std::time::Duration;

/// Default wait of `ask`.
const ASK_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) async fn handle(state: &State, r: A2aRequest) -> Reply {
    let a2a = state.transport::<crate::a2a::A2a>()?;
    let tasks = &a2a.tasks;
    match r {
        A2aRequest::PeerAdd { name } => {
            if !valid_peer_name(&name) {
                return Err(ApiError::new(
                    "bad_request",
                    "peer name must be 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
                ));
            }
            let token = tasks.store().add_peer(&name).map_err(store_err)?;
            tasks.store().durable().await.map_err(store_err)?;
            tracing::info!(peer = %name, "A2A peer added");
            json(&A2aPeerToken {
                name,
                token: Secret::new(token),
            })
        }
        A2aRequest::PeerList => {
            let peers = tasks.store().peers().map_err(store_err)?;
            let list: Vec<_> = peers
                .into_iter()
                .map(|p| A2aPeerView {
                    name: p.name,
                    added_at: crate::time::rfc3339(p.added_ms),
                })
                .collect();
            json(&list)
        }
        A2aRequest::PeerRemove { name } => {
            if !tasks.store().remove_peer(&name).map_err(store_err)? {
                return Err(ApiError::new(
                    "not_found",
                    format!("no A2A peer named {name:?}"),
                ));
            }
            tasks.store().durable().await.map_err(store_err)?;
            json(&Count { count: 1 })
        }
        A2aRequest::Tasks { open } => {
            let list = if open {
                tasks.store().open_tasks()
            } else {
                tasks.store().all_tasks()
            }
            .map_err(store_err)?;
            json(&list.iter().map(view).collect::<Vec<_>>())
        }
        A2aRequest::Reply { task, message } => {
            if message.is_empty() || message.len() > crate::a2a::rpc::MAX_TEXT {
                return Err(ApiError::new(
                    "bad_request",
                    "the answer must be 1..=65536 bytes",
                ));
            }
            let r = find(&a2a, &task)?;
            let t = tasks
                .complete(&state.outbound, r.clone(), &message)
                .await
                .map_err(conflict)?;
            json(&view(&TaskRecord { task: t, ..r }))
        }
        A2aRequest::Reject { task, reason } => {
            let r = find(&a2a, &task)?;
            let t = tasks
                .reject(&state.outbound, r.clone(), &reason)
                .await
                .map_err(conflict)?;
            json(&view(&TaskRecord { task: t, ..r }))
        }
        A2aRequest::ContactAdd {
            name,
            url,
            token,
            desc,
        } => contact_add(state, &a2a, name, url, token, desc).await,
        A2aRequest::Ask(p) => ask(state, &a2a, p).await,
    }
}

fn valid_peer_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

fn conflict(e: String) -> ApiError {
    ApiError::new("conflict", e)
}

fn find(a2a: &A2a, task: &str) -> Result<TaskRecord, ApiError> {
    a2a.tasks.find(task).map_err(store_err)?.ok_or_else(|| {
        ApiError::new("not_found", format!("no A2A task {task:?}"))
            .with_hint("see `clawlink a2a tasks`; an inbox id of an A2A message works too")
    })
}

fn view(r: &TaskRecord) -> A2aTaskView {
    A2aTaskView {
        id: r.task.id.clone(),
        peer: r.peer.clone(),
        state: r.task.status.state.short().into(),
        context_id: r.task.context_id.clone(),
        inbox_id: r.inbox_id,
        updated_at: r.task.status.timestamp.clone(),
    }
}

async fn contact_add(
    state: &State,
    a2a: &A2a,
    name: String,
    url: String,
    token: Secret,
    desc: String,
) -> Reply {
    let (endpoint, card) = crate::a2a::card::resolve(&a2a.http, &url)
        .await
        .map_err(|e| {
            ApiError::new("unreachable", e).with_hint(
                "give the peer's origin (its Agent Card is read) or its JSON-RPC endpoint URL",
            )
        })?;
    let desc = match (&card, desc.is_empty()) {
        (Some(c), true) => c.description.chars().take(1024).collect(),
        _ => desc,
    };
    let contact = NewContact {
        name,
        url: format!("a2a+{endpoint}"),
        token,
        desc,
        added_at: None,
    };
    let saved = super::contacts::add(state, contact).await?;
    let name = saved["name"].as_str().unwrap_or_default().to_string();
    json(&A2aContactReply {
        name,
        endpoint,
        agent: card.as_ref().map(|c| c.name.clone()),
        skills: card
            .map(|c| {
                c.skills
                    .into_iter()
                    .map(|s| if s.name.is_empty() { s.id } else { s.name })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

async fn ask(state: &State, a2a: &A2a, p: AskParams) -> Reply {
    let timeout = p
        .timeout_secs
        .map(Duration::from_secs)
        .unwrap_or(ASK_TIMEOUT);
    let deadline = tokio::time::Instant::now() + timeout;
    let c = state
        .contacts
        .get(&p.to)
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::new("not_found", format!("no contact named {:?}", p.to))
                .with_hint("add it with `clawlink contacts add --name NAME --a2a URL`")
        })?;
    if crate::a2a::transport::endpoint(&c.url).is_none() {
        return Err(ApiError::new(
            "bad_request",
            format!(
                "{:?} is not an A2A contact; `ask` needs one (use `send` for others)",
                p.to
            ),
        ));
    }
    // Subscribed before the send, so an outcome cannot slip past.
    let mut ended = a2a.follower.subscribe();
    let sent = super::send::send(
        state,
        SendParams {
            to: Some(p.to.clone()),
            message: p.message,
            ..Default::default()
        },
    )
    .await?;
    let sent: SendReply =
        serde_json::from_value(sent).map_err(|e| ApiError::new("internal", e.to_string()))?;
    let mut reply = AskReply {
        id: sent.id.clone(),
        state: "queued".into(),
        answer: None,
        task_id: None,
        inbox_id: None,
        error: sent.error.clone(),
    };
    if matches!(sent.state, DeliveryState::Failed | DeliveryState::Expired) {
        reply.state = "failed".into();
        return json(&reply);
    }
    let mut attempts = state.outbound.subscribe();
    loop {
        if let Some(f) = a2a.follower.store().follow(&sent.id).map_err(store_err)? {
            reply.task_id = Some(f.task_id.clone());
            reply.state = f.state.short().into();
            if f.inbox_id.is_some() {
                reply.answer = f.text;
                reply.inbox_id = f.inbox_id;
                return json(&reply);
            }
        }
        tokio::select! {
            _ = ended.recv() => {}
            a = attempts.recv() => if let Ok(a) = a {
                if a.id == sent.id && matches!(a.state, DeliveryState::Failed | DeliveryState::Expired) {
                    reply.state = "failed".into();
                    reply.error = a.error;
                    return json(&reply);
                }
            },
            _ = tokio::time::sleep_until(deadline) => return json(&reply),
            _ = state.shutdown.cancelled() => return json(&reply),
        }
    }
}
