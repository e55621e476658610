//! Presence: a user is online while they have a socket on any node, and
//! offline once the last one has gone and a grace has passed with none back
//! (so a page reload announces nothing). The shapes the API and the
//! presence events show, and one engine for a single node
//! ([`MemoryPresence`], an in-process book) and one for a cluster
//! ([`RedisPresence`]). A user's first and last sockets are told to
//! presence by the registry as it attaches and detaches them; this module
//! answers who is present, hands out each offline change to announce, and
//! batches the changes the wide audiences hear ([`Batcher`]).

mod batch;
mod book;
mod memory;
mod redis;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use self::redis::RedisPresence;
pub use batch::{Batch, BatchAudience, Batcher};
pub use memory::MemoryPresence;

use crate::clock::{rfc3339, Millis};
use crate::cluster::Answer;

/// Most users one presence question names (`GET /presence`,
/// `presence_subscribe`, `presence_unsubscribe`).
pub const MAX_USERS_PER_QUERY: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    Online,
    Offline,
}

impl PresenceStatus {
    pub fn opposite(self) -> Self {
        match self {
            Self::Online => Self::Offline,
            Self::Offline => Self::Online,
        }
    }
}

/// One user's presence as `GET /presence` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceInfo {
    pub user_id: String,
    pub status: PresenceStatus,
    /// The last change; `None` for a user never seen.
    pub since: Option<Millis>,
    pub connections: usize,
}

impl PresenceInfo {
    /// `{ userId, status, since, connections }`: an item of `GET
    /// /presence` and of the `presence_subscribe` answer.
    pub fn view(&self) -> Value {
        json!({
            "userId": self.user_id,
            "status": self.status,
            "since": self.since.map(rfc3339),
            "connections": self.connections,
        })
    }
}

/// A user came online or went offline: told to their subscribers, and
/// batched for the wide audiences. It crosses the cluster as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PresenceChange {
    pub user_id: String,
    /// The role of the socket that came or went: the `role` audience of
    /// that role hears it.
    pub role: String,
    pub status: PresenceStatus,
    pub at: Millis,
}

impl PresenceChange {
    /// `{ userId, status, at }`: the `presence` event, and an item of a
    /// `presence_batch`.
    pub fn view(&self) -> Value {
        json!({
            "userId": self.user_id,
            "status": self.status,
            "at": rfc3339(self.at),
        })
    }
}

impl Batch {
    /// `{ changes: [{ userId, status, at }] }`: the `presence_batch` event.
    pub fn view(&self) -> Value {
        json!({ "changes": self.changes.iter().map(PresenceChange::view).collect::<Vec<_>>() })
    }
}

#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// Presence of each user, in the order asked.
    async fn presence(&self, users: &[String], now: Millis) -> Answer<Vec<PresenceInfo>>;

    /// Users whose offline grace ran out by `now` with no socket back:
    /// each change is claimed by one node only, which announces it and
    /// calls [`Presence::announced`]. A claim not announced within its
    /// lease (the claimer died) is handed out again.
    async fn due_offline(&self, now: Millis) -> Vec<PresenceChange>;

    /// The claimer of `change` has announced it.
    async fn announced(&self, _change: &PresenceChange) {}

    /// When the next offline grace runs out, if this node knows.
    async fn next_offline(&self) -> Option<Millis>;
}
