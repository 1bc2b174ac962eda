//! # clawlink: the control protocol between `clawlink` and `clawlinkd`
//!
//! `clawlinkd` (the daemon) is driven over a local stream socket (a Unix domain socket on
//! Linux and macOS, through the `interprocess` crate). This crate holds everything both sides
//! must agree on, and nothing else: the messages ([`proto`]), the framing ([`frame`]), where the
//! socket, data and config live ([`paths`]), the secret wrapper ([`secret`]) and a small blocking
//! client ([`client`]). The CLI binary `clawlink` is built from this crate alone, so it links
//! neither sled nor any transport and starts in about a millisecond.
//!
//! ## Wire protocol, version 1
//!
//! Every frame is one line of UTF-8 JSON ended by `\n`, at most [`frame::MAX_FRAME`] bytes
//! (1 MiB). Anyone can speak it with `socat - UNIX-CONNECT:$SOCK`.
//!
//! 1. **Handshake.** The client sends `{"clawlink":1,"client":"clawlink 0.1.0"}`. The daemon
//!    answers `{"clawlink":1,"daemon":"clawlinkd 0.1.0"}` if it speaks that version, else
//!    `{"ok":false,"error":{"code":"version_mismatch","message":...}}` and closes. The client
//!    must send its hello within 5 s ([`frame::HANDSHAKE_DEADLINE`]) or the daemon closes.
//! 2. **Requests.** After the handshake the client sends one [`proto::Request`] per line,
//!    `{"method":"inbox.list","params":{"unread":true}}`, and reads exactly one response line:
//!    `{"ok":true,"result":{...}}` or `{"ok":false,"error":{"code":"...","message":"...","hint":"..."}}`.
//!    Requests on one connection are answered in order. An idle connection is closed after
//!    [`frame::IDLE_DEADLINE`].
//! 3. **Subscription.** `{"method":"listen"}` is answered with `{"ok":true,"result":{"subscribed":true}}`;
//!    from then on the connection carries only [`proto::Event`] lines
//!    (`{"event":"message","message":{...}}`) until either side closes. A subscriber that
//!    cannot keep up is sent `{"event":"lagged","missed":N}` rather than growing the daemon's memory.
//!
//! A malformed frame gets `{"ok":false,"error":{"code":"bad_request",...}}` and the connection
//! stays usable; an oversized frame gets `frame_too_large` and the connection is closed.
//!
//! Only the daemon's own user may connect: the socket lives in a 0700 directory, is created
//! with mode 0600, and the daemon checks the peer's uid on every accepted connection.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod frame;
pub mod paths;
pub mod proto;
pub mod secret;

pub use proto::PROTOCOL_VERSION;
pub use secret::Secret;
