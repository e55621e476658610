//! Presence: a user is online while they have a socket on any node, and
//! offline once the last one has gone and a grace has passed with none back
//! (so a page reload announces nothing). The shapes the API and the
//! `presence` event show, and one engine for a single node
//! ([`MemoryPresence`], an in-process book) and one for a cluster
//! ([`RedisPresence`]). A user's first and last sockets are told to
//! presence by the registry as it attaches and detaches them; this module
//! answers who is present and hands out each offline change to announce.

mod book;
mod memory;
mod redis;

use async_trait::async_trait;
use serde::Serialize;

pub use self::redis::RedisPresence;
pub use memory::MemoryPresence;

use crate::clock::Millis;
use crate::cluster::Answer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    Online,
    Offline,
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

/// A change to announce with the `presence` event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PresenceChange {
    pub user_id: String,
    /// The role of the socket that came or went: its role room hears it.
    pub role: String,
    pub status: PresenceStatus,
    pub at: Millis,
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
