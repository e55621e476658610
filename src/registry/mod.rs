//! The cluster registry: which sockets are connected on which node, counted
//! per user; node heartbeats; and presence (a user online on any node, or
//! offline once the last socket has gone and a grace has passed). One
//! engine for a single node ([`MemoryRegistry`], reading this node's socket
//! table) and one for a cluster ([`RedisRegistry`]).

mod memory;
mod presence;
mod redis;

use async_trait::async_trait;

pub use self::redis::RedisRegistry;
pub use memory::MemoryRegistry;
pub use presence::{PresenceChange, PresenceInfo, PresenceStatus};

use crate::clock::Millis;
use crate::conn::Conn;

/// An answer from the registry, and whether it may miss other nodes'
/// sockets (Redis unreachable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    pub value: T,
    pub partial: bool,
}

impl<T> Answer<T> {
    pub fn whole(value: T) -> Self {
        Self {
            value,
            partial: false,
        }
    }
}

/// What registering a socket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// The user's sockets anywhere, this one included.
    pub user_sockets: usize,
    /// The user came online with this socket (their first, and not a
    /// reload within the offline grace): announce it.
    pub came_online: bool,
    /// The registry could not be updated (Redis unreachable): the socket
    /// is served here and registered when Redis is back.
    pub partial: bool,
}

#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Registers a socket of this node. Visible cluster-wide when it
    /// returns: a notification stored after this call finds the socket,
    /// and one stored before is in its catch-up.
    async fn attach(&self, conn: &Conn, now: Millis) -> Attached;

    /// Removes a socket of this node; when it was its user's last socket
    /// anywhere, the user goes offline after the presence grace unless a
    /// socket comes back first.
    async fn detach(&self, conn: &Conn, now: Millis);

    /// Distinct users with at least one socket on a live node, sorted.
    async fn connected_users(&self) -> Answer<Vec<String>>;

    /// Number of `user`'s sockets on live nodes.
    async fn user_socket_count(&self, user: &str) -> Answer<usize>;

    /// Presence of each user, in the order asked.
    async fn presence(&self, users: &[String], now: Millis) -> Answer<Vec<PresenceInfo>>;

    /// Users whose offline grace ran out by `now` with no socket back:
    /// each change is claimed by one node only, which announces it and
    /// calls [`Registry::announced`]. A claim not announced within its
    /// lease (the claimer died) is handed out again.
    async fn due_offline(&self, now: Millis) -> Vec<PresenceChange>;

    /// The claimer of `change` has announced it.
    async fn announced(&self, _change: &PresenceChange) {}

    /// When the next offline grace runs out, if this node knows.
    async fn next_offline(&self) -> Option<Millis>;
}
