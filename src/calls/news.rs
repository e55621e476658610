//! What one node tells the others of a call ([`CallNews`], carried by the
//! broker): each node acts on the sockets of the call it holds.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A socket in a call, as the other side addresses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub user_id: Arc<str>,
    pub socket_id: Arc<str>,
}

impl Peer {
    /// `{ userId, socketId }`, as the events show a peer.
    pub fn view(&self) -> Value {
        json!({ "userId": &*self.user_id, "socketId": &*self.socket_id })
    }
}

/// One step of a call, heard by every node the broker's target reaches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallNews {
    /// `from` invites the target's sockets: each node records them as
    /// invited and rings them (`call_incoming`).
    Invite {
        call_id: String,
        from: Peer,
        media: Vec<String>,
    },
    /// `from` accepted or declined: the call's joined sockets hear it
    /// (`call_answer`).
    Answer {
        call_id: String,
        from: Peer,
        accept: bool,
    },
    /// A WebRTC offer, answer or candidate from `from`, for one socket of
    /// the call (`webrtc_signal`).
    Signal {
        call_id: String,
        from: Peer,
        signal: String,
        payload: Value,
    },
    /// The call is over for everyone (`call_ended`): `by` the user who
    /// ended it or whose socket left.
    End {
        call_id: String,
        by: String,
        reason: String,
    },
}

impl CallNews {
    pub fn call_id(&self) -> &str {
        match self {
            Self::Invite { call_id, .. }
            | Self::Answer { call_id, .. }
            | Self::Signal { call_id, .. }
            | Self::End { call_id, .. } => call_id,
        }
    }
}
