//! [`Registry`]: every transport of the daemon, by kind, by accepted address, and by type.
//!
//! Built once at start-up (one `add` line per transport in `agent.rs`), then shared read-only.
//! The control handlers of one protocol (`clawlink relay ...`, `clawlink nexus ...`) fetch
//! their transport's handle with [`Registry::get`], so the daemon's shared state has no field
//! per transport.

use super::{scheme, Transport};
use crate::status::StatusSource;
use clawlink::proto::{ApiError, ConnectionRow};
use std::any::Any;
use std::sync::{Arc, Weak};

#[derive(Clone)]
struct Entry {
    transport: Arc<dyn Transport>,
    any: Arc<dyn Any + Send + Sync>,
}

/// The transports. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Arc<Vec<Entry>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A handle that does not keep the transports alive, for a transport that delivers
    /// through the others (the friend transport carries envelopes over relays).
    pub fn downgrade(&self) -> WeakRegistry {
        WeakRegistry(Arc::downgrade(&self.entries))
    }

    /// Adds `t`. Call before the registry is shared (clones made earlier do not see it).
    pub fn add<T: Transport>(&mut self, t: Arc<T>) -> &mut Registry {
        let entry = Entry {
            transport: t.clone(),
            any: t,
        };
        Arc::make_mut(&mut self.entries).push(entry);
        self
    }

    /// The transport whose records have `kind`.
    pub fn by_kind(&self, kind: &str) -> Option<Arc<dyn Transport>> {
        self.entries
            .iter()
            .find(|e| e.transport.kind() == kind)
            .map(|e| e.transport.clone())
    }

    /// The transport of type `T`, for the control handlers of its protocol.
    pub fn get<T: Transport>(&self) -> Option<Arc<T>> {
        self.entries
            .iter()
            .find_map(|e| e.any.clone().downcast::<T>().ok())
    }

    /// Every address kind some transport accepts, in registration order.
    pub fn schemes(&self) -> Vec<&'static str> {
        self.entries
            .iter()
            .flat_map(|e| e.transport.accepts().iter().copied())
            .collect()
    }

    /// The transport that accepts `url`, or an error that lists what is accepted.
    pub fn for_address(&self, url: &str) -> Result<Arc<dyn Transport>, ApiError> {
        let s = scheme(url);
        s.and_then(|s| {
            self.entries.iter().find(|e| {
                e.transport
                    .accepts()
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(s))
            })
        })
        .map(|e| e.transport.clone())
        .ok_or_else(|| {
            let kinds: Vec<String> = self.schemes().iter().map(|s| format!("{s}://")).collect();
            ApiError::new(
                "bad_request",
                format!("cannot send to {url:?}: expected {}", kinds.join(", ")),
            )
        })
    }
}

/// A [`Registry`] that does not own its transports (see [`Registry::downgrade`]).
#[derive(Clone, Default)]
pub struct WeakRegistry(Weak<Vec<Entry>>);

impl WeakRegistry {
    /// The registry, while the daemon runs.
    pub fn upgrade(&self) -> Option<Registry> {
        self.0.upgrade().map(|entries| Registry { entries })
    }
}

impl StatusSource for Registry {
    fn rows(&self) -> Vec<ConnectionRow> {
        self.entries
            .iter()
            .flat_map(|e| e.transport.rows())
            .collect()
    }
}
