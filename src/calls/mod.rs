//! Calls (contract section 14, WebRTC signalling; media never passes
//! through Herald): which of this node's sockets are in which call
//! ([`CallBook`]), what nodes tell each other of a call ([`CallNews`]),
//! and the ICE servers with TURN credentials handed to each user. The Hub
//! joins these to the socket table and the broker.

mod book;
mod news;
mod turn;

pub use book::{CallBook, Part, Refused, RungOut, MAX_CALLS_PER_SOCKET, RING_GRACE_MS};
pub use news::{CallNews, Peer};
pub use turn::{ice_servers, turn_password};
