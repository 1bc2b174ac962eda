//! Small shared pieces, one of each: the retry [`backoff`], the daemon's outgoing HTTP client
//! and `Retry-After` parser ([`http_client`]), and lowercase [`hex`].

pub mod backoff;
pub mod hex;
pub mod http_client;

pub use backoff::Backoff;
pub use hex::hex;
