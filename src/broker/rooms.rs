//! The Socket.IO rooms this node's broker emits to: every authenticated
//! socket joins its user's room, its role's room and the room of everyone,
//! and a watch room for each user whose presence it subscribed to, so that
//! an event to a user, a role, all or a user's watchers is serialised once
//! per room; and a socket in a study room (`join_room`) joins that room's.

/// The room of every socket of `user`.
pub fn user_room(user: &str) -> String {
    format!("user:{user}")
}

/// The room of every socket whose token carries `role`.
pub fn role_room(role: &str) -> String {
    format!("role:{role}")
}

/// The room of every authenticated socket.
pub const ALL_ROOM: &str = "herald:all";

/// The room of every socket watching `user`'s presence (`presence_subscribe`).
pub fn watch_room(user: &str) -> String {
    format!("presence:{user}")
}

/// The room of every socket that joined study room `room` (`join_room`),
/// prefixed so that a study room named `user:x` is not user x's room.
pub fn study_room(room: &str) -> String {
    format!("room:{room}")
}
