//! `relay poll`: fetch what the relay holds for one identity, store it, then acknowledge it.
//!
//! `GET /poll?...&ack=1` ([`PollAnswer`]) keeps the messages on the relay; after the page is durable in the
//! inbox, `POST /ack {id, secret, ids}` releases them. A seed relay has already drained on
//! poll and answers 404 to the ack, which ends the loop. At most 100 pages per call. The owner
//! asked for these messages, and a seed relay has forgotten them: they are stored even over
//! the inbox caps.

use super::error::relay_error;
use super::ingest::to_new_message;
use super::wire::PollAnswer;
use super::Relay;
use crate::store::inbox::{NewMessage, Stored};
use crate::store::relay_client::Identity;
use clawlink::proto::{ApiError, InboxMessage};

impl Relay {
    /// Fetches, stores and acknowledges everything the relay holds for `ident`; returns the
    /// messages that were new in the inbox.
    pub async fn poll(&self, ident: &Identity) -> Result<Vec<InboxMessage>, ApiError> {
        let mut out = Vec::new();
        for _ in 0..100 {
            let a = self.http.poll(ident).await?;
            if a.status != 200 {
                return Err(relay_error(a.status, &a.body, &ident.relay));
            }
            let page: PollAnswer = a.read();
            let msgs: Vec<(Option<String>, NewMessage)> = page
                .messages
                .into_iter()
                .map(|m| to_new_message(&ident.relay, &ident.id, None, m))
                .collect();
            if msgs.is_empty() {
                break;
            }
            let (ids, stored) = self
                .store_page(&msgs, false)
                .await
                .map_err(ApiError::from)?;
            out.extend(stored.into_iter().filter_map(|s| match s {
                Stored::New(m) => Some(m),
                Stored::Duplicate(_) | Stored::Consumed => None,
            }));
            let ack = self.http.ack(ident, &ids).await?;
            if ack.status == 404 || !page.more {
                break;
            }
        }
        Ok(out)
    }
}
