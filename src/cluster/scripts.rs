//! The Lua scripts the Redis engines run, one file each under `scripts/`:
//! every change that touches several keys is one script, so the indexes
//! and clocks never disagree. Each file's head says what it takes: the
//! keys it knows in advance as `KEYS` (built by [`super::Keys`]), keys it
//! finds as it runs as [`super::Family`] arguments.
//!
//! Shared parts are prepended: `family.lua` (a key from a family),
//! `lease.lua` (claims under a lease), `sockets.lua` (adding and removing
//! sockets in the indexes) and `clock.lua` (activity on a session's clock).

use ::redis::Script;

/// `key(family, id)`: a key from a family passed as head and tail.
const FAMILY: &str = include_str!("scripts/family.lua");
/// `claim` and `reclaim`: events handed out under a lease.
const LEASE: &str = include_str!("scripts/lease.lua");
/// `add_socket`, `remove_socket`, `remove_node` and their keys (the
/// removals need `FAMILY`).
const SOCKETS: &str = include_str!("scripts/sockets.lua");
/// `touch_clock`: activity on a session's idle clock.
const CLOCK: &str = include_str!("scripts/clock.lua");

/// One script from its shared parts and its own file, in that order.
fn script(parts: &[&str]) -> Script {
    Script::new(&parts.concat())
}

/// A connect: the place under the cap, the session's clock and the
/// socket's indexes in one step (registry join).
pub fn join() -> Script {
    script(&[FAMILY, SOCKETS, CLOCK, include_str!("scripts/join.lua")])
}

/// Adds a socket to every index when its join could not (registry attach
/// after an outage, and rejoin).
pub fn register() -> Script {
    script(&[FAMILY, SOCKETS, include_str!("scripts/register.lua")])
}

/// Removes a socket from every index (registry detach).
pub fn detach() -> Script {
    script(&[FAMILY, SOCKETS, include_str!("scripts/detach.lua")])
}

/// Removes nodes that stopped beating, and their sockets.
pub fn reap() -> Script {
    script(&[FAMILY, SOCKETS, include_str!("scripts/reap.lua")])
}

/// Removes every socket of one node (it leaves the cluster).
pub fn clear_node() -> Script {
    script(&[FAMILY, SOCKETS, include_str!("scripts/clear_node.lua")])
}

/// Removes the sockets of one node that are no longer there (rejoin).
pub fn prune_node() -> Script {
    script(&[FAMILY, SOCKETS, include_str!("scripts/prune_node.lua")])
}

/// Claims the offline presence changes due.
pub fn offline_due() -> Script {
    script(&[FAMILY, LEASE, include_str!("scripts/offline_due.lua")])
}

/// Records a session's activity, creating its clock.
pub fn clock_touch() -> Script {
    script(&[CLOCK, include_str!("scripts/clock_touch.lua")])
}

/// Claims the session warnings and expiries due.
pub fn clock_claim() -> Script {
    script(&[FAMILY, LEASE, include_str!("scripts/clock_claim.lua")])
}

/// Ends a session.
pub fn clock_expire() -> Script {
    Script::new(include_str!("scripts/clock_expire.lua"))
}
