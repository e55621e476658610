//! Delivery across the cluster: "hand this to user U's sockets / session
//! S's sockets / role R / everyone, and tell me how many sockets took it",
//! and "which sockets does U (or S) have". One interface, two engines: this
//! node alone ([`LocalBroker`]) and a cluster over Redis
//! ([`RedisBroker`]). Every caller in the Hub goes through it, so the
//! single-node build and the cluster build share every caller.

mod local;
mod redis;
mod rooms;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

pub use self::redis::RedisBroker;
pub use local::{delivery_record, CallListener, LocalBroker, RoomNews};
pub use rooms::{role_room, study_room, user_room, watch_room, ALL_ROOM};
pub use wire::{ENVELOPE_DEPTH, MAX_DECODED_DEPTH};

use crate::calls::CallNews;
use crate::connections::connection::ConnectionInfo;
use crate::notification::Notification;
use crate::presence::PresenceChange;

/// Whose sockets a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every socket of each of these users; the reach is counted per user.
    Users(Vec<String>),
    /// Every socket of a session; with `user`, only that user's sockets of it.
    Session { id: String, user: Option<String> },
    /// Every socket whose token carries this role.
    Role(String),
    /// The recipients of a notification escalated to roles: every socket
    /// of these users and every socket whose token carries one of these
    /// roles, each socket once. A member who joined through a role and is
    /// connected with a token for another role is reached as a user; one
    /// connected with the role is not reached twice.
    Recipients {
        users: Vec<String>,
        roles: Vec<String>,
    },
    /// Every authenticated socket (and, for [`Message::Presence`], every
    /// node).
    All,
    /// Every socket in a study room, on every node; with `except_user`,
    /// not that user's sockets (their own typing is not news to them).
    Room {
        room: String,
        except_user: Option<String>,
    },
    /// One socket, by its id, on whichever node holds it (every node is
    /// asked: only a call's signals use it, a few per call).
    Socket(String),
    /// A call's sockets, on every node: each node knows its own
    /// ([`crate::calls::CallBook`]), so every node is asked.
    Call(String),
}

impl Target {
    pub fn user(user: &str) -> Self {
        Self::Users(vec![user.to_string()])
    }

    pub fn session(id: &str) -> Self {
        Self::Session {
            id: id.to_string(),
            user: None,
        }
    }

    /// How many counts a [`Reach`] for this target holds.
    pub fn slots(&self) -> usize {
        match self {
            Self::Users(users) => users.len(),
            _ => 1,
        }
    }
}

/// What is handed to the target's sockets.
#[derive(Debug, Clone)]
pub enum Message {
    /// A stored notification, live: each socket gets it at most once (the
    /// socket's claim set, kept by the node that holds the socket), and the
    /// first hand-over to each user is recorded in the store.
    Notification(Arc<Notification>),
    /// An event with one argument, or none.
    Event { name: String, data: Option<Value> },
    /// A last event, after which the sockets leave: they are out of every
    /// answer at once and disconnected once the event is on its way
    /// (session expiry and logout, token expiry).
    Farewell { name: String, data: Value },
    /// The sockets are disconnected (`disconnectUser`).
    Disconnect,
    /// The sockets leave a study room (its grant was revoked): each node
    /// takes its sockets of the target out of the room and tells its room
    /// listener (the Hub: typing cleared, members changed). The count is
    /// the sockets taken out.
    LeaveRoom { room: String },
    /// A study room's members changed (sent to [`Target::Room`]): each
    /// node with sockets in the room opens its `room_presence` window, and
    /// tells its own sockets when it closes. One message per change,
    /// whatever the sockets; the count is the room's sockets.
    RoomChanged,
    /// A user came online or went offline. Sent to [`Target::All`]: each
    /// node tells its own sockets watching that user (one `presence` event
    /// to the user's watch room) and hands the change to its presence
    /// listener (the wide audiences' batches). The count is the watchers.
    Presence(PresenceChange),
    /// A step of a call: each node hands it to its call listener (the
    /// Hub) with its sockets of the target. The count is the sockets told.
    Call(CallNews),
}

/// How many sockets took a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// One count per user for [`Target::Users`], else a single count.
    pub counts: Vec<usize>,
    /// Some node could not be asked, or did not answer in time: the counts
    /// are this node's and those that answered.
    pub partial: bool,
}

impl Reach {
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// A cluster-wide list of sockets.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub sockets: Vec<ConnectionInfo>,
    /// Some node could not be asked or did not answer in time.
    pub partial: bool,
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Hands `message` to every socket of `target` on every node: this
    /// node's sockets first and without waiting on any other node or on
    /// Redis, then the other nodes', each of which delivers to its own
    /// sockets only. So each socket is reached at most once per call, and
    /// a notification at most once per socket ever. Returns once every node
    /// that holds sockets of the target has answered with its count, or the
    /// cluster's request timeout has passed (then `partial`).
    async fn deliver(&self, target: &Target, message: &Message) -> Reach;

    /// Hands each of `messages`, in order, to every socket of `target`, as
    /// [`Broker::deliver`] does each: one [`Reach`] per message. A cluster
    /// looks up where the target's sockets are once for all of them.
    async fn deliver_each(&self, target: &Target, messages: &[Message]) -> Vec<Reach> {
        let mut reaches = Vec::with_capacity(messages.len());
        for message in messages {
            reaches.push(self.deliver(target, message).await);
        }
        reaches
    }

    /// The sockets of `target` ([`Target::Users`] or [`Target::Session`]) on
    /// every node, as each node sees them now (transport, last activity).
    async fn sockets(&self, target: &Target) -> Listing;
}
