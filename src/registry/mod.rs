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
    /// recorded later finds the socket); `None` when it did not, and the
    /// session clocks must be asked.
    pub session_expired: Option<bool>,
}

#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Takes one of `user`'s `cap` places cluster-wide for the socket `sid`
    /// of this node, whose connect is under way: false (and nothing taken)
    /// when the user's sockets and the places held make `cap`. Checked and
    /// taken in one step, so connects arriving together on any nodes cannot
    /// all pass. The place becomes the socket's on [`Registry::attach`],
    /// goes back on [`Registry::release`], and lapses after
    /// [`crate::connections::handover::STRAY_AFTER_MS`] otherwise (a
    /// handshake that never completed, a node that died mid-connect). True
    /// when the registry cannot tell (Redis unreachable): this node's own
    /// count decides then.
    async fn reserve(&self, user: &str, sid: Sid, cap: usize, now: Millis) -> bool;

    /// Gives back the place a refused or abandoned connect took. Idempotent.
    async fn release(&self, user: &str, sid: Sid);

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
