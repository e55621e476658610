//! This node's socket table: the handles of the sockets connected here, by
//! id and indexed by user, session and role. What other nodes hold is the
//! cluster registry's business ([`crate::registry`]).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use smallvec::SmallVec;
use socketioxide::socket::Sid;

use crate::connections::connection::Handle;

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
pub struct Sockets {
    inner: RwLock<Inner>,
}

impl Sockets {
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
    /// Distinct users with a socket here, sorted.
    pub fn users(&self) -> Vec<String> {
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

    /// Number of distinct users with a socket here.
    pub fn user_total(&self) -> usize {
        self.inner.read().by_user.len()
    }

    /// Number of `user`'s sockets here.
    pub fn user_count(&self, user_id: &str) -> usize {
        self.inner
            .read()
            .by_user
            .get(user_id)
            .map_or(0, |s| s.len())
    }

    /// Every handle here.
    pub fn all(&self) -> Vec<Handle> {
        self.inner.read().by_sid.values().cloned().collect()
    }
}
