//! The server's live state: the limits it enforces and every session held in memory.
//!
//! Sessions are loaded from the store at start and written through on every change; memory
//! holds what every request needs (members, expiry, the next cursor) so that a send costs one
//! message insert plus an 8-byte expiry update, not a record rewrite.
//!
//! ## Cursors and visibility
//!
//! A send takes the next cursor and inserts the message *while holding the session's lock*, so
//! sled sees messages in cursor order. It then waits for [`Db::durable`](crate::store::Db::durable)
//! and only then raises `visible_end` and wakes long-polls. Readers never see a cursor that
//! could be lost in a crash, so after a restart (next cursor = last stored + 1) no cursor a
//! client has seen is ever reused. The greeting, if any, is cursor 0; messages start at 1.
//!
//! Locks are `std::sync::Mutex`es held only for in-memory work and sled inserts (which do not
//! block on I/O); never across an `.await` (the guards are not `Send`, so the compiler checks).

use super::error::ApiError;
use crate::store::nexus_server::{LoadedSession, NexusStore, SessionId, SessionRecord};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Limits and defaults, from the command line.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Session TTL when none is asked for, seconds.
    pub default_ttl: u64,
    /// Smallest TTL accepted.
    pub min_ttl: u64,
    /// Largest TTL accepted.
    pub max_ttl: u64,
    /// maxAgents when none is asked for.
    pub default_max_agents: u32,
    /// Largest maxAgents accepted.
    pub max_agents_cap: u32,
    /// Pairing code lifetime, seconds.
    pub pair_ttl: u64,
    /// Largest message (text plus serialized json), bytes.
    pub max_message_bytes: usize,
    /// Most messages one session may hold.
    pub max_messages_per_session: u64,
    /// Most live sessions.
    pub max_sessions: usize,
    /// Most live sessions created by one client address.
    pub max_sessions_per_client: usize,
    /// Longest long-poll wait, seconds.
    pub max_wait: u64,
    /// Most messages in one poll answer.
    pub max_page: usize,
}

/// Everything the handlers share.
pub struct App {
    /// The store.
    pub store: NexusStore,
    /// Live sessions.
    pub sessions: Registry,
    /// Limits.
    pub limits: Limits,
    /// `--public-url`, without a trailing slash.
    pub public_url: Option<String>,
    /// Serialises pairing-code claims (single use).
    pub claim_lock: Mutex<()>,
    /// Start time, for `uptime`.
    pub started: std::time::Instant,
    /// Cancelled at shutdown: long-polls return early.
    pub shutdown: CancellationToken,
}

/// Shared handle to [`App`].
pub type AppState = Arc<App>;

/// One session in memory.
pub struct Session {
    /// Raw id.
    pub id: SessionId,
    /// Wire id (48 hex).
    pub hex: String,
    state: Mutex<SessionState>,
    /// Woken when `visible_end` grows.
    pub notify: Notify,
}

/// The mutable part of a [`Session`].
pub struct SessionState {
    /// Settings and members.
    pub rec: SessionRecord,
    /// Effective expiry, ms.
    pub expires_ms: u64,
    /// Cursor the next message gets.
    pub next_cursor: u64,
    /// Cursors below this are durable and may be read.
    pub visible_end: u64,
    /// Stored messages.
    pub count: u64,
    /// Removed (left the registry); every request must treat it as not found.
    pub gone: bool,
}

impl SessionState {
    /// Fails with 404 when the session is gone or expired at `now`.
    pub fn check_live(&self, now: u64) -> Result<(), ApiError> {
        if self.gone || now >= self.expires_ms {
            return Err(ApiError::session_not_found());
        }
        Ok(())
    }

    /// Index of member `agent_id`.
    pub fn member(&self, agent_id: &str) -> Option<usize> {
        self.rec.agents.iter().position(|a| a.agent_id == agent_id)
    }

    /// Writes `rec` (with the current expiry, which sends may have moved since the record was
    /// last written) and makes it the live record. Not yet durable.
    pub fn commit(
        &mut self,
        store: &NexusStore,
        id: &SessionId,
        mut rec: SessionRecord,
    ) -> Result<(), ApiError> {
        rec.expires_ms = self.expires_ms;
        store.put_session(id, &rec)?;
        self.rec = rec;
        Ok(())
    }

    /// Agent ids in join order.
    pub fn agent_ids(&self) -> Vec<String> {
        self.rec.agents.iter().map(|a| a.agent_id.clone()).collect()
    }
}

impl Session {
    /// A session from its parts.
    pub fn new(id: SessionId, state: SessionState) -> Arc<Session> {
        Arc::new(Session {
            id,
            hex: super::ids::hex(&id),
            state: Mutex::new(state),
            notify: Notify::new(),
        })
    }

    /// Locks the state. A panic elsewhere while holding it cannot leave it half-written (every
    /// writer validates first, then mutates), so a poisoned lock is simply taken over.
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes cursors below `end` readable and wakes long-polls.
    pub fn publish(&self, end: u64) {
        {
            let mut st = self.lock();
            st.visible_end = st.visible_end.max(end);
        }
        self.notify.notify_waiters();
    }
}

/// All live sessions by id.
#[derive(Default)]
pub struct Registry {
    map: Mutex<HashMap<SessionId, Arc<Session>>>,
    admission: Mutex<Admission>,
}

/// Sessions counted against `--max-sessions` and `--max-sessions-per-client`: a session is
/// counted from the moment its creation is admitted (before it is written), so concurrent
/// creates can never overshoot the caps. Creators are remembered in memory only: sessions
/// loaded at start count against the total but against no client.
#[derive(Default)]
struct Admission {
    held: usize,
    per_client: HashMap<IpAddr, usize>,
    owners: HashMap<SessionId, IpAddr>,
}

impl Admission {
    fn release(&mut self, client: Option<IpAddr>) {
        self.held = self.held.saturating_sub(1);
        if let Some(ip) = client {
            if let Some(n) = self.per_client.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_client.remove(&ip);
                }
            }
        }
    }
}

/// A session creation admitted by [`Registry::admit`]; given back if dropped before
/// [`Registry::insert`].
pub struct Slot<'a> {
    registry: &'a Registry,
    client: IpAddr,
    armed: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.registry.admission().release(Some(self.client));
        }
    }
}

impl Registry {
    fn map(&self) -> MutexGuard<'_, HashMap<SessionId, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admission(&self) -> MutexGuard<'_, Admission> {
        self.admission.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more session for `client`, or refuses: 507 when the server holds
    /// `max_sessions`, 429 when this client holds `max_sessions_per_client`.
    pub fn admit(&self, client: IpAddr, limits: &Limits) -> Result<Slot<'_>, ApiError> {
        let client = client.to_canonical();
        let mut a = self.admission();
        if a.held >= limits.max_sessions {
            return Err(super::sessions::storage_full("sessions"));
        }
        let mine = a.per_client.entry(client).or_default();
        if *mine >= limits.max_sessions_per_client {
            if *mine == 0 {
                a.per_client.remove(&client);
            }
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                format!(
                    "This client holds its maximum of {} live sessions",
                    limits.max_sessions_per_client
                ),
            ));
        }
        *mine += 1;
        a.held += 1;
        Ok(Slot {
            registry: self,
            client,
            armed: true,
        })
    }

    /// Fills the registry from the store at start; returns the expired ones for deletion.
    pub fn load(&self, loaded: Vec<LoadedSession>, now: u64) -> Vec<SessionId> {
        let mut expired = Vec::new();
        let mut map = self.map();
        let mut admission = self.admission();
        for s in loaded {
            if now >= s.expires_ms {
                expired.push(s.id);
                continue;
            }
            let next = s.last_cursor.map_or(1, |c| c.saturating_add(1)).max(1);
            let st = SessionState {
                rec: s.record,
                expires_ms: s.expires_ms,
                next_cursor: next,
                visible_end: next,
                count: s.message_count,
                gone: false,
            };
            map.insert(s.id, Session::new(s.id, st));
            admission.held += 1;
        }
        expired
    }

    /// Adds a new session, created under `slot`.
    pub fn insert(&self, session: Arc<Session>, mut slot: Slot<'_>) {
        slot.armed = false;
        self.admission().owners.insert(session.id, slot.client);
        self.map().insert(session.id, session);
    }

    /// Number of sessions held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session with wire id `hex`, if it exists and has not expired at `now`.
    pub fn get_live(&self, hex: &str, now: u64) -> Result<Arc<Session>, ApiError> {
        let id = super::ids::parse_session_id(hex).ok_or_else(ApiError::session_not_found)?;
        let session = self
            .map()
            .get(&id)
            .cloned()
            .ok_or_else(ApiError::session_not_found)?;
        session.lock().check_live(now)?;
        Ok(session)
    }

    /// A snapshot of all sessions.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.map().values().cloned().collect()
    }

    /// Marks expired sessions gone and removes them from memory; returns them for deletion.
    pub fn take_expired(&self, now: u64) -> Vec<Arc<Session>> {
        let mut map = self.map();
        let expired: Vec<SessionId> = map
            .iter()
            .filter_map(|(id, s)| {
                let mut st = s.lock();
                (now >= st.expires_ms).then(|| {
                    st.gone = true;
                    *id
                })
            })
            .collect();
        let out: Vec<Arc<Session>> = expired.iter().filter_map(|id| map.remove(id)).collect();
        drop(map);
        let mut admission = self.admission();
        for s in &out {
            let owner = admission.owners.remove(&s.id);
            admission.release(owner);
        }
        drop(admission);
        for s in &out {
            s.notify.notify_waiters();
        }
        out
    }
}
