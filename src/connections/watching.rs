//! Presence subscriptions on this node: which users each socket watches
//! (`presence_subscribe`), and how many sockets here watch each user. The
//! socket table keeps it under its own lock, so a socket that leaves takes
//! its subscriptions with it and the counts never outlive it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use socketioxide::socket::Sid;

/// Why a subscription was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchRefused {
    /// The socket is not (or no longer) connected here.
    Gone,
    /// It would watch more than the limit: `watching` now, `asked` new.
    TooMany {
        watching: usize,
        asked: usize,
        max: usize,
    },
}

#[derive(Debug, Default)]
pub struct Watching {
    by_socket: HashMap<Sid, HashSet<Arc<str>>>,
    /// Keys shared with the sockets' sets (one copy of each user id).
    watchers: HashMap<Arc<str>, usize>,
}

impl Watching {
    /// Adds `users` to socket `sid`'s subscriptions unless that would make
    /// more than `max`. Returns the users it did not watch before (their
    /// rooms to join); all or nothing.
    pub fn watch(
        &mut self,
        sid: Sid,
        users: &[String],
        max: usize,
    ) -> Result<Vec<Arc<str>>, WatchRefused> {
        let set = self.by_socket.entry(sid).or_default();
        let new: Vec<&String> = users.iter().filter(|u| !set.contains(u.as_str())).collect();
        if set.len() + new.len() > max {
            let watching = set.len();
            if set.is_empty() {
                self.by_socket.remove(&sid);
            }
            return Err(WatchRefused::TooMany {
                watching,
                asked: new.len(),
                max,
            });
        }
        let mut added = Vec::with_capacity(new.len());
        for u in new {
            let key = match self.watchers.get_key_value(u.as_str()) {
                Some((k, _)) => k.clone(),
                None => Arc::from(u.as_str()),
            };
            if set.insert(key.clone()) {
                *self.watchers.entry(key.clone()).or_default() += 1;
                added.push(key);
            }
        }
        if set.is_empty() {
            self.by_socket.remove(&sid);
        }
        Ok(added)
    }

    /// Takes `users` out of socket `sid`'s subscriptions; returns those it
    /// did watch (their rooms to leave). Users it did not watch are ignored.
    pub fn unwatch(&mut self, sid: Sid, users: &[String]) -> Vec<Arc<str>> {
        let Some(set) = self.by_socket.get_mut(&sid) else {
            return Vec::new();
        };
        let removed: Vec<Arc<str>> = users.iter().filter_map(|u| set.take(u.as_str())).collect();
        if set.is_empty() {
            self.by_socket.remove(&sid);
        }
        for u in &removed {
            self.release(u);
        }
        removed
    }

    /// Ends every subscription of a socket that left.
    pub fn forget(&mut self, sid: Sid) {
        for u in self.by_socket.remove(&sid).unwrap_or_default() {
            self.release(&u);
        }
    }

    fn release(&mut self, user: &str) {
        if let Some(n) = self.watchers.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                self.watchers.remove(user);
            }
        }
    }

    /// How many sockets here watch `user`.
    pub fn watchers(&self, user: &str) -> usize {
        self.watchers.get(user).copied().unwrap_or(0)
    }

    /// How many users socket `sid` watches.
    pub fn watched_by(&self, sid: Sid) -> usize {
        self.by_socket.get(&sid).map_or(0, HashSet::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn names(v: Vec<Arc<str>>) -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn watching_counts_each_socket_once_per_user() {
        let mut w = Watching::default();
        let (a, b) = (Sid::new(), Sid::new());
        assert_eq!(
            names(w.watch(a, &ids(&["u1", "u2"]), 10).unwrap()),
            ["u1", "u2"]
        );
        assert_eq!(
            names(w.watch(a, &ids(&["u2", "u3"]), 10).unwrap()),
            ["u3"],
            "u2 already"
        );
        assert_eq!(names(w.watch(b, &ids(&["u1"]), 10).unwrap()), ["u1"]);
        assert_eq!(
            (w.watchers("u1"), w.watchers("u2"), w.watchers("u9")),
            (2, 1, 0)
        );
        assert_eq!(w.watched_by(a), 3);
        assert_eq!(
            names(w.unwatch(a, &ids(&["u1", "u9"]))),
            ["u1"],
            "u9 was not watched"
        );
        assert_eq!(w.watchers("u1"), 1);
        w.forget(b);
        assert_eq!(w.watchers("u1"), 0);
        assert!(!w.watchers.contains_key("u1"), "no count left behind");
        w.forget(a);
        assert!(w.by_socket.is_empty() && w.watchers.is_empty());
    }

    #[test]
    fn over_the_limit_nothing_changes() {
        let mut w = Watching::default();
        let a = Sid::new();
        w.watch(a, &ids(&["u1", "u2"]), 3).unwrap();
        assert_eq!(
            w.watch(a, &ids(&["u2", "u3", "u4"]), 3),
            Err(WatchRefused::TooMany {
                watching: 2,
                asked: 2,
                max: 3
            })
        );
        assert_eq!((w.watched_by(a), w.watchers("u3")), (2, 0));
        // Users already watched do not count again.
        assert_eq!(
            names(w.watch(a, &ids(&["u1", "u2", "u3"]), 3).unwrap()),
            ["u3"]
        );
        let b = Sid::new();
        assert!(w.watch(b, &ids(&["x", "y"]), 1).is_err());
        assert!(
            !w.by_socket.contains_key(&b),
            "a refused first call leaves no entry"
        );
    }
}
