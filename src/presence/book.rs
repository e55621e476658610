//! The in-process presence book of a single node: online with a user's
//! first socket; offline once the last one has gone and the grace has
//! passed with none back, so a page reload announces nothing.

use std::collections::HashMap;
use std::sync::Arc;

use super::{PresenceChange, PresenceInfo, PresenceStatus};
use crate::clock::Millis;
use crate::deadlines::Deadlines;

#[derive(Debug)]
struct Entry {
    online: bool,
    /// When the status last changed (for offline: when the last socket left).
    since: Millis,
    role: Arc<str>,
    /// The last socket left at this time; offline is announced after the grace.
    left_at: Option<Millis>,
}

/// The presence of the users this node has seen. It keeps one entry per
/// user ever seen (a hospital's staff, not its traffic).
#[derive(Debug)]
pub struct PresenceBook {
    grace: Millis,
    users: HashMap<Arc<str>, Entry>,
    offline_due: Deadlines<Arc<str>>,
}

impl PresenceBook {
    pub fn new(grace: Millis) -> Self {
        Self {
            grace,
            users: HashMap::new(),
            offline_due: Deadlines::default(),
        }
    }

    /// A user's first socket connected: true when this is news (not a
    /// return within the grace).
    pub fn first_socket(&mut self, user: &Arc<str>, role: &Arc<str>, now: Millis) -> bool {
        self.offline_due.cancel(&**user);
        if let Some(e) = self.users.get_mut(&**user).filter(|e| e.online) {
            e.left_at = None;
            return false;
        }
        self.users.insert(
            user.clone(),
            Entry {
                online: true,
                since: now,
                role: role.clone(),
                left_at: None,
            },
        );
        true
    }

    /// A user's last socket left: offline after the grace, unless one comes back.
    pub fn last_socket_left(&mut self, user: &Arc<str>, role: &Arc<str>, now: Millis) {
        if let Some(e) = self.users.get_mut(&**user) {
            e.left_at = Some(now);
            e.role = role.clone();
            self.offline_due.schedule(user.clone(), now + self.grace);
        }
    }

    /// The users whose grace ran out by `now`, now offline.
    pub fn due(&mut self, now: Millis) -> Vec<PresenceChange> {
        let mut changes = Vec::new();
        for user in self.offline_due.pop_due(now) {
            if let Some(e) = self.users.get_mut(&user) {
                if let (true, Some(left)) = (e.online, e.left_at) {
                    e.online = false;
                    e.since = left;
                    e.left_at = None;
                    changes.push(PresenceChange {
                        user_id: user.to_string(),
                        role: e.role.to_string(),
                        status: PresenceStatus::Offline,
                        at: left,
                    });
                }
            }
        }
        changes
    }

    pub fn next_due(&self) -> Option<Millis> {
        self.offline_due.next()
    }

    /// `user`'s presence, given their socket count.
    pub fn info(&self, user: &str, connections: usize) -> PresenceInfo {
        let (status, since) = match self.users.get(user) {
            Some(e) if e.online => (PresenceStatus::Online, Some(e.since)),
            Some(e) => (PresenceStatus::Offline, Some(e.since)),
            None => (PresenceStatus::Offline, None),
        };
        PresenceInfo {
            user_id: user.to_string(),
            status,
            since,
            connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (Arc<str>, Arc<str>) {
        (Arc::from("u1"), Arc::from("radiologist"))
    }

    #[test]
    fn a_reload_within_the_grace_announces_nothing() {
        let (u, r) = ids();
        let mut book = PresenceBook::new(5_000);
        assert!(book.first_socket(&u, &r, 1_000));
        book.last_socket_left(&u, &r, 2_000);
        assert_eq!(book.next_due(), Some(7_000));
        assert!(!book.first_socket(&u, &r, 3_000), "back within the grace");
        assert!(book.due(10_000).is_empty());
        assert_eq!(book.info("u1", 1).status, PresenceStatus::Online);
        assert_eq!(book.info("u1", 1).since, Some(1_000));
    }

    #[test]
    fn offline_after_the_grace_dated_when_the_last_socket_left() {
        let (u, r) = ids();
        let mut book = PresenceBook::new(5_000);
        book.first_socket(&u, &r, 1_000);
        book.last_socket_left(&u, &r, 2_000);
        assert!(book.due(6_999).is_empty());
        let changes = book.due(7_000);
        assert_eq!(
            changes,
            vec![PresenceChange {
                user_id: "u1".into(),
                role: "radiologist".into(),
                status: PresenceStatus::Offline,
                at: 2_000,
            }]
        );
        assert_eq!(book.info("u1", 0).since, Some(2_000));
        assert!(book.first_socket(&u, &r, 9_000), "online again is news");
        assert_eq!(book.info("u1", 1).since, Some(9_000));
    }

    #[test]
    fn a_user_never_seen_is_offline_since_never() {
        let book = PresenceBook::new(5_000);
        let info = book.info("ghost", 0);
        assert_eq!((info.status, info.since), (PresenceStatus::Offline, None));
    }
}
