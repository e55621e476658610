//! The sockets connected to this node: per-socket state ([`Conn`]), the
//! handles to reach them, and indexes by user, session and role. Its
//! [`Registry`] view answers "who is connected" for a single node.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use smallvec::SmallVec;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::TransportType;
use tokio::sync::Notify;

use crate::clock::Millis;
use crate::rate::TokenBucket;

/// One authenticated socket's state. Held by the socket's event handler, in
/// [`Connections`], and before its connect handler runs in
/// [`crate::authenticated::Authenticated`]; it never holds the socket itself
/// (no cycle).
#[derive(Debug)]
pub struct Conn {
    pub sid: Sid,
    pub user_id: Arc<str>,
    pub session_id: Arc<str>,
    pub role: Arc<str>,
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
    rate: Mutex<TokenBucket>,
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
            connected_at: now,
            remote_addr,
            last_activity: AtomicI64::new(now),
            token_expires_at: AtomicI64::new(identity.expires_at),
            delivered: Mutex::new(None),
            rate: Mutex::new(TokenBucket::new(burst, now)),
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
    /// Gives back a claim whose delivery failed.
    pub fn unclaim(&self, id: &str) {
        if let Some(delivered) = self.delivered.lock().as_mut() {
            delivered.remove(id);
        }
    }
}

/// What "who is connected" answers show about one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub socket_id: String,
    pub user_id: String,
    pub session_id: String,
    pub role: String,
    pub connected_at: Millis,
    pub last_activity: Millis,
    pub transport: &'static str,
    pub remote_addr: Option<String>,
}

/// Cluster-wide view of connected sockets.
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    async fn user_connections(&self, user_id: &str) -> Vec<ConnectionInfo>;
    async fn session_connections(&self, session_id: &str) -> Vec<ConnectionInfo>;
    /// Distinct connected user ids.
    async fn connected_users(&self) -> Vec<String>;
    async fn socket_count(&self) -> usize;
}

/// A socket handle with its state.
#[derive(Clone)]
pub struct Handle {
    pub conn: Arc<Conn>,
    pub socket: SocketRef,
}

impl Handle {
    pub fn info(&self) -> ConnectionInfo {
        ConnectionInfo {
            socket_id: self.conn.sid.to_string(),
            user_id: self.conn.user_id.to_string(),
            session_id: self.conn.session_id.to_string(),
            role: self.conn.role.to_string(),
            connected_at: self.conn.connected_at,
            last_activity: self.conn.last_activity(),
            transport: match self.socket.transport_type() {
                TransportType::Websocket => "websocket",
                TransportType::Polling => "polling",
            },
            remote_addr: self.conn.remote_addr.map(|a| a.to_string()),
        }
    }
}

#[derive(Default)]
struct Inner {
    by_sid: HashMap<Sid, Handle>,
    // Keys share the socket's `Conn` ids (no copy per index).
    by_user: HashMap<Arc<str>, Sids>,
    by_session: HashMap<Arc<str>, Sids>,
    by_role: HashMap<Arc<str>, usize>,
}

/// The sockets of one user or session: nearly always one, kept inline (a
/// `Vec` would be an allocation of its own per connection, ~80 bytes).
type Sids = SmallVec<[Sid; 1]>;

fn unindex(map: &mut HashMap<Arc<str>, Sids>, key: &str, sid: Sid) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|s| *s != sid);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

#[derive(Default)]
pub struct Connections {
    inner: RwLock<Inner>,
}

impl Connections {
    pub fn add(&self, handle: Handle) {
        let mut inner = self.inner.write();
        let c = handle.conn.clone();
        if inner.by_sid.insert(c.sid, handle).is_some() {
            return;
        }
        inner
            .by_user
            .entry(c.user_id.clone())
            .or_default()
            .push(c.sid);
        inner
            .by_session
            .entry(c.session_id.clone())
            .or_default()
            .push(c.sid);
        *inner.by_role.entry(c.role.clone()).or_default() += 1;
    }

    pub fn remove(&self, sid: Sid) -> Option<Handle> {
        let mut inner = self.inner.write();
        let handle = inner.by_sid.remove(&sid)?;
        let c = &handle.conn;
        unindex(&mut inner.by_user, &c.user_id, sid);
        unindex(&mut inner.by_session, &c.session_id, sid);
        if let Some(n) = inner.by_role.get_mut(&c.role) {
            *n -= 1;
            if *n == 0 {
                inner.by_role.remove(&c.role);
            }
        }
        Some(handle)
    }

    pub fn get(&self, sid: Sid) -> Option<Handle> {
        self.inner.read().by_sid.get(&sid).cloned()
    }

    fn collect(&self, pick: impl Fn(&Inner) -> Option<&Sids>) -> Vec<Handle> {
        let inner = self.inner.read();
        pick(&inner)
            .map(|sids| {
                sids.iter()
                    .filter_map(|s| inner.by_sid.get(s).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn of_user(&self, user_id: &str) -> Vec<Handle> {
        self.collect(|i| i.by_user.get(user_id))
    }

    pub fn of_session(&self, session_id: &str) -> Vec<Handle> {
        self.collect(|i| i.by_session.get(session_id))
    }

    pub fn role_count(&self, role: &str) -> usize {
        self.inner.read().by_role.get(role).copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.inner.read().by_sid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Registry for Connections {
    async fn user_connections(&self, user_id: &str) -> Vec<ConnectionInfo> {
        self.of_user(user_id).iter().map(Handle::info).collect()
    }
    async fn session_connections(&self, session_id: &str) -> Vec<ConnectionInfo> {
        self.of_session(session_id)
            .iter()
            .map(Handle::info)
            .collect()
    }
    async fn connected_users(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .inner
            .read()
            .by_user
            .keys()
            .map(|u| u.to_string())
            .collect();
        users.sort();
        users
    }
    async fn socket_count(&self) -> usize {
        self.len()
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
}
