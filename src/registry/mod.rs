//! The cluster registry: which sockets are connected on which node, counted
//! per user, and node heartbeats. One engine for a single node
//! ([`MemoryRegistry`], reading this node's socket table) and one for a
//! cluster ([`RedisRegistry`]). Attaching a user's first socket and
//! detaching their last are what start and end their presence
//! ([`crate::presence`]), in the same step.

mod memory;
mod redis;

use async_trait::async_trait;
use socketioxide::socket::Sid;

pub use self::redis::RedisRegistry;
pub use memory::MemoryRegistry;

use crate::clock::Millis;
use crate::cluster::Answer;
use crate::connections::connection::Conn;

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
    /// Whether the socket's session had expired, when the registry read it
    /// in the same step as it registered the socket (a cluster: an expiry
    /// recorded later finds the socket in the indexes, and its node is told,
    /// see [`crate::connections::table::Sockets::session_ended`]); `None`
    /// when it did not, and the session clocks must be asked.
    pub session_expired: Option<bool>,
}

/// A connect asking for its user's place under the socket cap.
#[derive(Debug, Clone, Copy)]
pub struct Joining<'a> {
    pub sid: Sid,
    pub user: &'a str,
    pub session: &'a str,
    pub role: &'a str,
    /// `limits.sockets_per_user`.
    pub cap: usize,
    pub now: Millis,
    /// The role's idle timeout and warning lead (ms), for a session clock
    /// started in the same step.
    pub idle: Millis,
    pub warn: Millis,
}

/// What [`Registry::join`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The place is held. `clock` tells whether the session's idle clock
    /// was started (or touched) in the same step; if not, the session
    /// clocks are asked.
    Held { clock: bool },
    /// The user has `cap` sockets already (nothing taken).
    Full,
    /// The session has expired (nothing taken).
    SessionExpired,
}

#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Takes one of the user's `cap` places cluster-wide for the socket
    /// `sid` of this node, whose connect is under way: [`Joined::Full`]
    /// (and nothing taken) when the user's sockets make `cap`. Checked and
    /// taken in one step, so connects arriving together on any nodes cannot
    /// all pass. In a cluster the place is the socket's own entry in the
    /// indexes from here on ([`Registry::attach`] then has nothing more to
    /// write), given back by [`Registry::release`] if the connect fails.
    /// Held when the registry cannot tell (Redis unreachable): this node's
    /// own count decides then.
    async fn join(&self, joining: &Joining<'_>) -> Joined;

    /// Gives back the place a refused or abandoned connect took. Idempotent.
    async fn release(&self, user: &str, role: &str, sid: Sid, now: Millis);

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
}
