//! Small shared pieces, one of each: the retry [`backoff`], the daemon's outgoing HTTP client
//! and `Retry-After` parser ([`http_client`]), lowercase [`hex`], and the [`lenient`] field
//! readers of the protocol wire types, and the [`BoxFuture`] trait methods return.

pub mod backoff;
pub mod hex;
pub mod http_client;
pub mod lenient;

pub use backoff::Backoff;
pub use hex::hex;

/// A boxed future, `Send`, as trait methods return them (a transport's delivery, an ingest).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
