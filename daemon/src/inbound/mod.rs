//! Inbound paths: each turns the outside world into inbox entries.
