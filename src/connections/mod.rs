//! This node's connected sockets: each socket's state and handle, the
//! node's socket table, the hand-over from authentication to the connect
//! handler, the per-socket send path (outbox, backlog) and event budget,
//! the escalation steps each socket heard, and the presence subscriptions
//! of the sockets here.

pub mod backlog;
pub mod connection;
pub mod ended;
pub mod handover;
pub mod outbox;
pub mod rate;
pub mod seats;
pub mod steps;
pub mod table;
pub mod watching;
