//! Outbound delivery: the outbox worker and the [`Transport`] trait every transport implements.
//!
//! A send is first written durably to the outbox ([`crate::store::outbox`]), then handed to
//! the *lane* of its `(transport, target)`: one task per lane delivers that lane's records
//! strictly in order, so two messages to one peer never overtake each other, while a slow or
//! dead peer never holds up another. A lane retries its head record with jittered exponential
//! backoff (honouring a transport's retry-after) until it is delivered, refused for good, or
//! past its deadline. Every attempt is announced on a broadcast channel, which is how
//! `clawlink send` learns the outcome of the first attempt and `--wait` the final one.
//!
//! Adding a transport: implement [`Transport`] in a module of its own and register it in
//! [`crate::agent`]; nothing else changes.

pub mod gateway;
pub mod lanes;
pub mod nexus;
pub mod relay;

pub use lanes::{Attempt, Outbound};

use clawlink::proto::ApiError;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What one delivery attempt achieved.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The peer accepted it.
    Delivered,
    /// Not now; try again (after `after` if the peer said so).
    Retry {
        /// What went wrong, for the user.
        error: ApiError,
        /// The peer's requested delay.
        after: Option<Duration>,
    },
    /// Refused for good (bad token, missing scope, unknown recipient, ...).
    Failed(ApiError),
}

/// A boxed future, as transports return from [`Transport::deliver`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One way of delivering outbox records.
pub trait Transport: Send + Sync + 'static {
    /// The `transport` value of the records it handles.
    fn kind(&self) -> &'static str;
    /// Attempts to deliver one record (its transport-owned `payload` says how).
    fn deliver<'a>(
        &'a self,
        record: &'a crate::store::outbox::OutboxRecord,
    ) -> BoxFuture<'a, Outcome>;
}
