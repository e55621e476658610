//! One authenticated socket's state ([`Conn`]), its handle ([`Handle`]:
//! the state with the socketioxide socket), and what "who is connected"
//! answers show about it ([`ConnectionInfo`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::TransportType;
use tokio::sync::Notify;

use crate::clock::Millis;
use crate::connections::backlog::Lane;
use crate::connections::rate::TokenBucket;
use crate::connections::steps::{Heard, Step};
use crate::notification::Notification;

/// One authenticated socket's state. Held by the socket's event handler, in
/// this node's [`crate::connections::table::Sockets`], and before its connect handler runs in
/// [`crate::connections::handover::Authenticated`]; it never holds the socket itself
/// (no cycle).
#[derive(Debug)]
pub struct Conn {
    pub sid: Sid,
    pub user_id: Arc<str>,
    pub session_id: Arc<str>,
    pub role: Arc<str>,
    /// The token's study-room patterns (`rooms` claim), if it had any.
    pub rooms: Option<crate::auth::RoomPatterns>,
    pub connected_at: Millis,
    /// The peer's address, formatted only when shown (no string per socket).
    pub remote_addr: Option<SocketAddr>,
    last_activity: AtomicI64,
    token_expires_at: AtomicI64,
    /// Notification ids already handed to this socket. Kept for the
    /// socket's life (not dropped on acknowledgement), so a catch-up page
    /// read before an acknowledgement cannot hand the same id over again.
    /// Made on the first claim: a socket that never gets a notification
    /// keeps 8 bytes here instead of an empty set's 48.
    #[allow(clippy::box_collection)] // on purpose, as said above
    delivered: Mutex<Option<Box<HashSet<String>>>>,
    /// The escalation steps this socket heard and the notifications it is
    /// done with (`steps.rs`), so that a reminder never follows its
    /// acknowledgement and a step taken over is not told twice. Made on
    /// the first step or acknowledgement, like `delivered`.
    heard: Mutex<Option<Box<Heard>>>,
    rate: Mutex<TokenBucket>,
    /// Live notifications waiting for the send buffer, in order; held
    /// from authentication until the connect handler has sent `connected`
    /// and attached the socket (`Lane::open`).
    pub backlog: Lane<Arc<Notification>>,
    /// Set once the connect handler is done with the socket (attached or
    /// refused): client events wait for it, so nothing overtakes `connected`.
    settled: AtomicBool,
    settled_notify: Notify,
}

impl Conn {
    pub fn new(
        sid: Sid,
        identity: &crate::auth::Identity,
        remote_addr: Option<SocketAddr>,
        now: Millis,
        burst: u32,
    ) -> Self {
        Self {
            sid,
            user_id: identity.user_id.clone(),
            session_id: identity.session_id.clone(),
            role: identity.role.clone(),
            rooms: identity.rooms.clone(),
            connected_at: now,
            remote_addr,
            last_activity: AtomicI64::new(now),
            token_expires_at: AtomicI64::new(identity.expires_at),
            delivered: Mutex::new(None),
            heard: Mutex::new(None),
            rate: Mutex::new(TokenBucket::new(burst, now)),
            backlog: Lane::held(),
            settled: AtomicBool::new(false),
            settled_notify: Notify::new(),
        }
    }

    pub fn last_activity(&self) -> Millis {
        self.last_activity.load(Ordering::Relaxed)
    }
    pub fn touch(&self, now: Millis) {
        self.last_activity.fetch_max(now, Ordering::Relaxed);
    }
    pub fn token_expires_at(&self) -> Millis {
        self.token_expires_at.load(Ordering::Relaxed)
    }
    pub fn set_token_expires_at(&self, at: Millis) {
        self.token_expires_at.store(at, Ordering::Relaxed);
    }
    /// Marks the connect handler as done with this socket.
    pub fn settle(&self) {
        self.settled.store(true, Ordering::SeqCst);
        self.settled_notify.notify_waiters();
    }

    /// Waits (at most `limit`) until the connect handler is done.
    pub async fn settled(&self, limit: std::time::Duration) {
        let wait = async {
            loop {
                let notified = self.settled_notify.notified();
                if self.settled.load(Ordering::SeqCst) {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }

    pub fn allow_event(&self, now: Millis, per_second: u32, burst: u32) -> bool {
        self.rate.lock().try_take(now, per_second, burst)
    }
    /// Claims `id` for delivery on this socket: false if it already had it.
    pub fn claim(&self, id: &str) -> bool {
        self.delivered
            .lock()
            .get_or_insert_with(Box::default)
            .insert(id.to_string())
    }
    /// Tells `step` of notification `id` with `send` unless this socket
    /// heard it already or is done with `id`; true when `send` took it.
    /// `send` runs under the socket's step lock, so a step either goes out
    /// before [`Conn::done_with`] returns or not at all: an acknowledgement
    /// answered after it is never overtaken by a reminder.
    pub fn tell_step(&self, id: &str, step: Step, send: impl FnOnce() -> bool) -> bool {
        let mut heard = self.heard.lock();
        if heard.as_ref().is_some_and(|h| !h.may_tell(id, step)) {
            return false;
        }
        let sent = send();
        if sent {
            heard.get_or_insert_with(Box::default).told(id, step);
        }
        sent
    }
    /// Marks this socket done with `id` (acknowledged by its user, or
    /// closed): no further step of it reaches the socket.
    pub fn done_with(&self, id: &str) {
        self.heard.lock().get_or_insert_with(Box::default).done(id);
    }
    /// Gives back a claim whose delivery failed.
    pub fn unclaim(&self, id: &str) {
        if let Some(delivered) = self.delivered.lock().as_mut() {
            delivered.remove(id);
        }
    }
}

/// The transport a socket uses now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Websocket,
    Polling,
}

/// What "who is connected" answers show about one socket, on any node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    pub socket_id: String,
    pub user_id: String,
    pub session_id: String,
    pub role: String,
    pub connected_at: Millis,
    pub last_activity: Millis,
    pub transport: Transport,
    pub remote_addr: Option<String>,
    /// The node the socket is connected to.
    pub node: String,
    /// In a listing of a study room's sockets, when this one joined it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at: Option<Millis>,
    /// In a listing of every socket (the dashboard's), the study rooms this
    /// one sits in; empty in other listings. A node of an older version
    /// sends none, which reads as none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<JoinedRoom>,
}

/// A study room a socket sits in, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinedRoom {
    pub room: String,
    pub since: Millis,
}

/// A socket handle with its state.
#[derive(Clone)]
pub struct Handle {
    pub conn: Arc<Conn>,
    pub socket: SocketRef,
}

impl Handle {
    pub fn info(&self, node: &str) -> ConnectionInfo {
        ConnectionInfo {
            socket_id: self.conn.sid.to_string(),
            user_id: self.conn.user_id.to_string(),
            session_id: self.conn.session_id.to_string(),
            role: self.conn.role.to_string(),
            connected_at: self.conn.connected_at,
            last_activity: self.conn.last_activity(),
            transport: match self.socket.transport_type() {
                TransportType::Websocket => Transport::Websocket,
                TransportType::Polling => Transport::Polling,
            },
            remote_addr: self.conn.remote_addr.map(|a| a.to_string()),
            node: node.to_string(),
            joined_at: None,
            rooms: Vec::new(),
        }
    }
}

/// A socket's state for unit tests: user `u`, session `s`, role `r`,
/// connected at `at`.
#[cfg(test)]
pub fn test_conn(at: Millis) -> Arc<Conn> {
    let identity = crate::auth::Identity {
        user_id: Arc::from("u"),
        session_id: Arc::from("s"),
        role: Arc::from("r"),
        expires_at: at + 3_600_000,
        rooms: None,
    };
    Arc::new(Conn::new(Sid::new(), &identity, None, at, 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_is_claimed_once_until_given_back() {
        let c = test_conn(0);
        c.unclaim("n1");
        assert!(
            c.delivered.lock().is_none(),
            "no set before the first claim"
        );
        assert!(c.claim("n1"));
        assert!(!c.claim("n1"));
        assert!(c.claim("n2"));
        c.unclaim("n1");
        assert!(c.claim("n1"));
        assert!(!c.claim("n2"));
    }

    #[test]
    fn a_step_goes_out_once_and_never_after_the_socket_is_done() {
        let c = test_conn(0);
        let mut sent = 0;
        assert!(c.tell_step("n", Step::Reminder(1), || {
            sent += 1;
            true
        }));
        assert!(c.heard.lock().is_some());
        // the same step again (a node that took the step over)
        assert!(!c.tell_step("n", Step::Reminder(1), || unreachable!()));
        // acknowledged: the next reminder, or a late one, is dropped here
        c.done_with("n");
        assert!(!c.tell_step("n", Step::Reminder(2), || unreachable!()));
        assert!(!c.tell_step("n", Step::Escalated(2), || unreachable!()));
        assert_eq!(sent, 1);
    }

    #[test]
    fn a_step_that_could_not_be_sent_may_be_told_again() {
        let c = test_conn(0);
        assert!(!c.tell_step("n", Step::Reminder(1), || false));
        assert!(c.tell_step("n", Step::Reminder(1), || true));
    }
}
