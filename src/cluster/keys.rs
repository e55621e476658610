//! The names of Herald's keys and channels in Redis, in one place, so the
//! engines and the scripts agree on them.
//!
//! A script gets the keys it knows in advance as `KEYS`, built here. Keys
//! it only finds as it runs (the sockets of a node found dead, the users
//! whose offline grace ran out) it builds from a [`Family`] passed in its
//! arguments, the way [`Family::of`] builds them here.

use ::redis::{RedisWrite, ToRedisArgs};

/// Keys of one kind, one per id (a node, a user, a session): the id sits
/// between a head and a tail. Passed to a script as two arguments, head
/// then tail; the script's `key(family, id)` joins them around the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    head: String,
    tail: String,
}

impl Family {
    fn new(head: String, tail: &str) -> Self {
        Self {
            head,
            tail: tail.to_string(),
        }
    }

    /// The key of `id`.
    pub fn of(&self, id: &str) -> String {
        let mut key = String::with_capacity(self.head.len() + id.len() + self.tail.len());
        key.push_str(&self.head);
        key.push_str(id);
        key.push_str(&self.tail);
        key
    }
}

impl ToRedisArgs for Family {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        out.write_arg(self.head.as_bytes());
        out.write_arg(self.tail.as_bytes());
    }

    fn num_of_args(&self) -> usize {
        2
    }
}

/// Key and channel names, all under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self::new("herald")
    }
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    fn family(&self, head: &str, tail: &str) -> Family {
        Family::new(format!("{}:{head}", self.prefix), tail)
    }

    /// Sorted set: node id -> time of its last heartbeat.
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    /// Hash per node: socket id -> the socket's entry, for its sockets.
    pub fn node_sockets(&self) -> Family {
        self.family("node:", ":sockets")
    }
    /// Hash per user: `sid@node` -> role, for the user's sockets, and the
    /// places under the socket cap of their connects under way (a connect
    /// takes its place by adding its socket's entry).
    pub fn user_sockets(&self) -> Family {
        self.family("user:{", "}:sockets")
    }
    /// Set of users with at least one socket.
    pub fn users(&self) -> String {
        format!("{}:users", self.prefix)
    }
    /// Hash per user: their presence (status, since, role, left).
    pub fn presence(&self) -> Family {
        self.family("presence:{", "}")
    }
    /// Sorted set: user -> when their offline grace runs out.
    pub fn offline_due(&self) -> String {
        format!("{}:presence-due", self.prefix)
    }
    /// Sorted set: claimed offline change -> when its lease runs out.
    pub fn offline_leased(&self) -> String {
        format!("{}:presence-leased", self.prefix)
    }
    /// The five keys one socket is indexed under, in the order the socket
    /// scripts take them: its node's and its user's sockets, the connected
    /// users, its user's presence and the offline grace's due set. (No
    /// index per session: a session belongs to one user, so its sockets
    /// are found through its user's.)
    pub fn socket(&self, node: &str, user: &str) -> [String; 5] {
        [
            self.node_sockets().of(node),
            self.user_sockets().of(user),
            self.users(),
            self.presence().of(user),
            self.offline_due(),
        ]
    }
    /// Hash per session: its idle clock.
    pub fn session_clock(&self) -> Family {
        self.family("clock:{", "}")
    }
    /// Sorted set: session -> its next deadline (warning or expiry).
    pub fn clock_due(&self) -> String {
        format!("{}:clock-due", self.prefix)
    }
    /// Sorted set: claimed session event -> when its lease runs out.
    pub fn clock_leased(&self) -> String {
        format!("{}:clock-leased", self.prefix)
    }
    /// Sorted set: expired session -> when it expired.
    pub fn expired(&self) -> String {
        format!("{}:expired", self.prefix)
    }
    /// Channel of requests and replies for one node.
    pub fn node_channel(&self, node: &str) -> String {
        format!("{}:to:{node}", self.prefix)
    }
    /// Channel every node hears (role and all broadcasts).
    pub fn everyone(&self) -> String {
        format!("{}:everyone", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_those_the_cluster_has_always_used() {
        let k = Keys::default();
        assert_eq!(k.node_sockets().of("n1"), "herald:node:n1:sockets");
        assert_eq!(k.user_sockets().of("u1"), "herald:user:{u1}:sockets");
        assert_eq!(k.presence().of("u1"), "herald:presence:{u1}");
        assert_eq!(k.session_clock().of("s1"), "herald:clock:{s1}");
        assert_eq!(k.offline_due(), "herald:presence-due");
        assert_eq!(k.offline_leased(), "herald:presence-leased");
        assert_eq!(k.clock_due(), "herald:clock-due");
        assert_eq!(k.clock_leased(), "herald:clock-leased");
        assert_eq!(k.expired(), "herald:expired");
        assert_eq!(k.nodes(), "herald:nodes");
        assert_eq!(k.users(), "herald:users");
    }

    #[test]
    fn a_family_goes_to_a_script_as_head_then_tail() {
        let args = Keys::default().user_sockets().to_redis_args();
        assert_eq!(args, vec![b"herald:user:{".to_vec(), b"}:sockets".to_vec()]);
    }
}
