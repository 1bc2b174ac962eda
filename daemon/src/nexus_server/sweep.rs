//! The periodic sweep: expired sessions and their messages leave memory and disk, pairing
//! codes are forgotten an hour after they expire, and idle rate-limit entries are dropped.
//!
//! Expired sessions already answer 404 before the sweep runs (every request checks the
//! expiry); the sweep only reclaims space. Deletions need no fsync: a session that comes back
//! after a crash is still expired and is swept at start.

use super::limits::RateLimitState;
use super::pairing::PAIR_RETENTION_MS;
use super::state::AppState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One sweep now.
pub async fn once(app: &AppState, rl: &RateLimitState) {
    let now = crate::time::now_ms();
    let expired = app.sessions.take_expired(now);
    let store = app.store.clone();
    let sessions = expired.len();
    let result = tokio::task::spawn_blocking(move || -> crate::store::Result<(u64, usize)> {
        let mut messages = 0;
        for s in &expired {
            messages += store.delete_session(&s.id)?;
        }
        let pairs = store.sweep_pairs(|p| now > p.expires_ms.saturating_add(PAIR_RETENTION_MS))?;
        Ok((messages, pairs))
    })
    .await;
    match result {
        Ok(Ok((messages, pairs))) if sessions > 0 || pairs > 0 => tracing::info!(
            sessions,
            messages,
            pairs,
            "swept expired sessions and pairing codes"
        ),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "sweep failed; will retry"),
        Err(e) => tracing::error!(error = %e, "sweep task failed; will retry"),
    }
    rl.prune();
}

/// Sweeps every `every` until `shutdown`.
pub async fn run(app: AppState, rl: RateLimitState, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => once(&app, &rl).await,
        }
    }
}
