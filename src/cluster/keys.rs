//! The names of Herald's keys and channels in Redis, in one place, so the
//! engines and the scripts agree on them.

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

    /// What every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Sorted set: node id -> time of its last heartbeat.
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    /// Hash: socket id -> the socket's entry, for one node's sockets.
    pub fn node_sockets(&self, node: &str) -> String {
        format!("{}:node:{node}:sockets", self.prefix)
    }
    /// Hash: `sid@node` -> role, for one user's sockets.
    pub fn user_sockets(&self, user: &str) -> String {
        format!("{}:user:{{{user}}}:sockets", self.prefix)
    }
    /// Hash: `sid@node` -> user, for one session's sockets.
    pub fn session_sockets(&self, session: &str) -> String {
        format!("{}:session:{{{session}}}:sockets", self.prefix)
    }
    /// Set of users with at least one socket.
    pub fn users(&self) -> String {
        format!("{}:users", self.prefix)
    }
    /// Hash of one user's presence: status, since, role.
    pub fn presence(&self, user: &str) -> String {
        format!("{}:presence:{{{user}}}", self.prefix)
    }
    /// Sorted set: user -> when their offline grace runs out.
    pub fn offline_due(&self) -> String {
        format!("{}:presence-due", self.prefix)
    }
    /// Sorted set: claimed offline change -> when its lease runs out.
    pub fn offline_leased(&self) -> String {
        format!("{}:presence-leased", self.prefix)
    }
    /// Hash of one session's idle clock.
    pub fn session_clock(&self, session: &str) -> String {
        format!("{}:clock:{{{session}}}", self.prefix)
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
