//! Outbound: the outbox worker and one transport per kind.
