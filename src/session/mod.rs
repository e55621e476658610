//! Session clocks: one idle clock per `sessionId` shared by all its sockets,
//! the warning before automatic logoff, expiry, and the record of expired
//! sessions whose tokens are refused. Behind a trait: in-process for one
//! node, in Redis for a cluster (each deadline claimed once cluster-wide).

mod memory;
mod owners;
mod redis;

use std::sync::Arc;

use async_trait::async_trait;

pub use self::redis::RedisSessions;
pub use memory::MemorySessions;
pub use owners::SessionOwners;

use crate::clock::Millis;

/// The session a socket belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    pub session_id: Arc<str>,
    pub user_id: Arc<str>,
    pub role: Arc<str>,
}

impl SessionKey {
    /// Shares the ids (a reference count each, no copy).
    pub fn new(session_id: &Arc<str>, user_id: &Arc<str>, role: &Arc<str>) -> Self {
        Self {
            session_id: session_id.clone(),
            user_id: user_id.clone(),
            role: role.clone(),
        }
    }
}

/// What the clocks decided at a deadline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionEvent {
    /// Idle for `idle_timeout - warning_before`: warn every socket of the session.
    Warning {
        session_id: String,
        user_id: String,
        time_remaining: Millis,
    },
    /// Idle for `idle_timeout`: the session is over.
    Expired { session_id: String, user_id: String },
}

/// A session as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    pub session_id: String,
    pub user_id: String,
    pub role: String,
    pub last_activity: Millis,
    pub expires_at: Millis,
    pub warned: bool,
}

/// Outcome of recording activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    Active,
    /// The session had already expired; nothing changed.
    Expired,
}

#[async_trait]
pub trait SessionClocks: Send + Sync + 'static {
    /// A socket of `key` connects at `now`: starts its clock if new and
    /// counts as activity. Exact cluster-wide: a session expired on any
    /// node answers [`Touch::Expired`] here.
    async fn start(&self, key: &SessionKey, now: Millis) -> Touch;

    /// A socket of `key` connected at `now` and the registry started or
    /// touched its clock in the same step ([`crate::registry::Joined`]):
    /// nothing more to write, only what this node keeps of it.
    fn started(&self, _key: &SessionKey, _now: Millis) {}

    /// Records activity of `key` at `now`, starting its clock if new. May
    /// coalesce: the shared deadline moves only when it moves by more than
    /// a small step, so activity costs no round trip per client event.
    async fn touch(&self, key: &SessionKey, now: Millis) -> Touch;

    /// Records activity of a known session by id; `None` if it is unknown.
    async fn touch_id(&self, session_id: &str, now: Millis) -> Option<Touch>;

    /// Ends `session_id` now. True when it was not already expired.
    async fn expire(&self, session_id: &str, now: Millis) -> bool;

    async fn is_expired(&self, session_id: &str) -> bool;

    /// Marks sessions as expired (loaded from the durable store at start).
    async fn restore_expired(&self, sessions: Vec<String>, at: Millis);

    /// Forgets expired sessions older than `before`.
    async fn forget_expired_before(&self, before: Millis);

    async fn snapshot(&self, session_id: &str) -> Option<SessionSnapshot>;

    /// Every warning and expiry due at `now`, each claimed by one node
    /// only; the claimer calls [`SessionClocks::done`] once it has acted.
    /// A claim not done within its lease (the claimer died) is handed to
    /// another node's `due`.
    async fn due(&self, now: Millis) -> Vec<SessionEvent>;

    /// The claimer of `event` has delivered it.
    async fn done(&self, event: &SessionEvent);

    /// When the next deadline falls.
    async fn next_deadline(&self) -> Option<Millis>;

    /// Number of live sessions.
    async fn active_count(&self) -> usize;
}
