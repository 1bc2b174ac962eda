//! `status` connection rows: the one trait every part that holds connections implements.
//!
//! It lives on its own, below everything that implements it, so that transports and workers
//! never import the agent role that collects the rows.

use clawlink::proto::ConnectionRow;

/// Something that holds connections and can describe them for `status`.
pub trait StatusSource: Send + Sync {
    /// One row per connection.
    fn rows(&self) -> Vec<ConnectionRow>;
}
