//! Sending a JetStream request again when nobody was there to answer it.
//!
//! NATS answers a request that no subscriber took with "no responders" (status 503 on the
//! reply subject). For JetStream that means the stream's or bucket's RAFT group has no server
//! serving that request yet: right after a cluster boots, while a leader is elected after a
//! node died, or while a replica has not yet subscribed to direct gets. Nothing was read or
//! written, so the request is safe to send again, and it is, for up to [`OP_DEADLINE`]: a
//! leader is normally elected within a few seconds. Any other failure is returned at once.
//!
//! async-nats reports this condition under different error kinds per call (a publish says
//! `StreamNotFound`, a KV read nests "503 no responders" in its source, a JetStream API
//! request says "requested JetStream resource does not exist"), so [`no_responders`] reads
//! the error's text, sources included.

use super::OP_DEADLINE;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// First pause between two tries; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(25);
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// Whether an error's text says that no server took the request.
pub(super) fn no_responders(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("no responders")
        || text.contains("no stream found for given subject")
        || text.contains("requested jetstream resource does not exist")
}

/// Runs `op` until it answers something other than "no responders", or [`OP_DEADLINE`] has
/// passed since the first try (then its last answer is returned).
pub(super) async fn settle<T, E, F, Fut>(what: &str, mut op: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        match op().await {
            Err(e) if no_responders(&e.to_string()) && start.elapsed() + pause < OP_DEADLINE => {
                tracing::debug!(what, "no JetStream server answered yet; sending again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_three_spellings_of_no_responders_are_recognised() {
        assert!(no_responders(
            "other error: failed getting entry: unable to get message: 503 no responders"
        ));
        assert!(no_responders("no stream found for given subject"));
        assert!(no_responders(
            "jetstream request failed: requested JetStream resource does not exist"
        ));
        assert!(no_responders(
            "reading a queue: direct get answered 503 No Responders"
        ));
        assert!(!no_responders("maximum messages per subject exceeded"));
        assert!(!no_responders("timed out"));
        assert!(!no_responders("key already exists"));
    }

    #[tokio::test(start_paused = true)]
    async fn no_responders_is_tried_again_and_other_errors_are_not() {
        let tries = AtomicUsize::new(0);
        let got: Result<u32, String> = settle("test", || {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 | 1 => Err("503 no responders".to_string()),
                    _ => Ok(7),
                }
            }
        })
        .await;
        assert_eq!(got, Ok(7));
        assert_eq!(tries.load(Ordering::SeqCst), 3);

        let tries = AtomicUsize::new(0);
        let got: Result<u32, String> = settle("test", || {
            tries.fetch_add(1, Ordering::SeqCst);
            async { Err("key already exists".to_string()) }
        })
        .await;
        assert_eq!(got, Err("key already exists".to_string()));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_responders_gives_up_at_the_deadline() {
        let start = tokio::time::Instant::now();
        let got: Result<u32, String> =
            settle("test", || async { Err("no responders".to_string()) }).await;
        assert_eq!(got, Err("no responders".to_string()));
        assert!(start.elapsed() <= OP_DEADLINE);
        assert!(start.elapsed() >= OP_DEADLINE - MAX_PAUSE * 2);
    }
}
