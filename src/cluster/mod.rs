//! Cluster mode's leaf on Redis: the one link every Redis engine (broker,
//! registry, presence, session clocks) shares, with its health and the
//! subscription that carries other nodes' requests; the names of Herald's
//! keys and channels; the Lua scripts the engines run; and the claims under
//! a lease by which one node acts on each event due cluster-wide. It knows
//! nothing of the engines above it: rejoining the cluster after an outage
//! is the business of `rejoin.rs`, beside where the Hub is built.

mod health;
mod keys;
mod lease;
mod link;
pub mod scripts;

pub use health::Health;
pub use keys::{Family, Keys};
pub use lease::Leases;
pub use link::{LinkError, RedisLink, Resync};

/// An answer about the whole cluster (sockets, presence), and whether it
/// may miss other nodes' part (Redis unreachable: this node answered for
/// itself alone).
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
