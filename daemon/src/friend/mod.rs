//! The `friend` transport: this daemon's trust layer ([`crate::trust`]) in the registry.
//!
//! It owns the [`Trust`] engine (identity, pinned friends, the envelope checks) so that the
//! control handlers (`clawlink id`, `clawlink friend ...`) reach it like any protocol's
//! handle, through [`crate::state::State::transport`], and its `status` row (our id, epoch,
//! and every refusal count) shows beside the transports'.
//!
//! Envelopes travel as text inside the other transports (a relay `message`, a Nexus `text`,
//! an HTTP body); `friend open` hands one received by any means to [`Trust::open`].

use crate::status::StatusSource;
use crate::transport::{Context, Transport};
use crate::trust::Trust;
use clawlink::proto::ConnectionRow;
use std::sync::Arc;

/// The trust layer as a transport.
pub struct Friends {
    /// Identity, friends and the envelope checks.
    pub trust: Arc<Trust>,
    /// The way into the inbox, for opened messages.
    pub ingest: crate::inbound::Ingest,
}

/// Loads the identity (creating it on first start) and prunes seen ids older than the window.
pub fn start(ctx: &Context) -> anyhow::Result<Arc<Friends>> {
    let trust = Trust::load(
        ctx.data_dir.join("identity.key"),
        crate::store::trust::TrustStore::open(&ctx.db)?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let oldest = crate::time::now_ms().saturating_sub(crate::trust::replay::MAX_AGE_MS);
    let pruned = trust.store().prune_seen(oldest)?;
    tracing::info!(id = %trust.identity().id, pruned_seen = pruned, "clawlink identity loaded");
    Ok(Arc::new(Friends {
        trust: Arc::new(trust),
        ingest: ctx.ingest.clone(),
    }))
}

impl StatusSource for Friends {
    fn rows(&self) -> Vec<ConnectionRow> {
        let me = self.trust.identity();
        let (refused, accepted) = self.trust.counts();
        let mut info: std::collections::BTreeMap<String, String> = refused
            .into_iter()
            .map(|(k, n)| (format!("refused_{k}"), n.to_string()))
            .collect();
        info.insert("accepted".into(), accepted.to_string());
        info.insert("epoch".into(), me.current.epoch.to_string());
        vec![ConnectionRow {
            kind: "trust".into(),
            target: me.id.to_string(),
            state: "ready".into(),
            info,
            ..Default::default()
        }]
    }
}

impl Transport for Friends {
    fn kind(&self) -> &'static str {
        "friend"
    }
}
