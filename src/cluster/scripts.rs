//! The Lua scripts the Redis engines run, one file each under `scripts/`:
//! every change that touches several keys is one script, so the indexes
//! and clocks never disagree. Each file's head says what it takes: the
//! keys it knows in advance as `KEYS` (built by [`super::Keys`]), keys it
//! finds as it runs as [`super::Family`] arguments.
//!
//! Shared parts are prepended: `family.lua` (a key from a family),
//! `lease.lua` (claims under a lease) and `sockets.lua` (removing sockets
//! from the indexes).

use ::redis::Script;

/// Adds a socket to every index (registry attach and rejoin).
pub fn attach() -> Script {
    Script::new(include_str!("scripts/attach.lua"))
}

/// Removes a socket from every index (registry detach).
pub fn detach() -> Script {
    Script::new(concat!(
        include_str!("scripts/family.lua"),
        include_str!("scripts/sockets.lua"),
        include_str!("scripts/detach.lua"),
    ))
}

/// Removes nodes that stopped beating, and their sockets.
pub fn reap() -> Script {
    Script::new(concat!(
        include_str!("scripts/family.lua"),
        include_str!("scripts/sockets.lua"),
        include_str!("scripts/reap.lua"),
    ))
}

/// Removes every socket of one node (it leaves the cluster).
pub fn clear_node() -> Script {
    Script::new(concat!(
        include_str!("scripts/family.lua"),
        include_str!("scripts/sockets.lua"),
        include_str!("scripts/clear_node.lua"),
    ))
}

/// Removes the sockets of one node that are no longer there (rejoin).
pub fn prune_node() -> Script {
    Script::new(concat!(
        include_str!("scripts/family.lua"),
        include_str!("scripts/sockets.lua"),
        include_str!("scripts/prune_node.lua"),
    ))
}

/// Claims the offline presence changes due.
pub fn offline_due() -> Script {
    Script::new(concat!(
        include_str!("scripts/family.lua"),
        include_str!("scripts/lease.lua"),
        include_str!("scripts/offline_due.lua"),
    ))
}

/// Records a session's activity, creating its clock.
pub fn clock_touch() -> Script {
    Script::new(include_str!("scripts/clock_touch.lua"))
}

/// Claims the session warnings and expiries due.
pub fn clock_claim() -> Script {
    Script::new(concat!(
        include_str!("scripts/family.lua"),
        include_str!("scripts/lease.lua"),
        include_str!("scripts/clock_claim.lua"),
    ))
}

/// Ends a session.
pub fn clock_expire() -> Script {
    Script::new(include_str!("scripts/clock_expire.lua"))
}
