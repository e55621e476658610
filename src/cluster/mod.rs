//! Cluster mode's link to Redis and the names it uses there: the one
//! connection every Redis engine (broker, registry, session clocks) shares,
//! its health, the subscription that carries other nodes' requests, and
//! the resynchronisation that follows a Redis outage.

mod keys;
mod link;
mod rejoin;

pub use keys::Keys;
pub use link::{LinkError, RedisLink, Resync};
pub use rejoin::Rejoin;
