//! The names of the Socket.IO protocol Herald speaks (docs/api.md, "Socket.IO"):
//! the events it emits, the events it accepts from clients, and the names a
//! backend may not use through the event API. Every emit and every match on
//! an event name uses these constants, so that the wire contract is spelled
//! once.

// Server to client.

/// The first event of an authenticated socket: `{ socketId, userId, timestamp }`.
pub const CONNECTED: &str = "connected";
/// A notification, live, caught up, reminded or escalated.
pub const CRITICAL_NOTIFICATION: &str = "critical_notification";
/// A user's first acknowledgement of a notification.
pub const NOTIFICATION_ACKNOWLEDGED: &str = "notification_acknowledged";
/// An escalation step added recipients to a notification.
pub const NOTIFICATION_ESCALATED: &str = "notification_escalated";
/// The first acknowledgement by any recipient closed a notification.
pub const NOTIFICATION_CLOSED: &str = "notification_closed";
/// A session's idle timeout is near.
pub const SESSION_TIMEOUT_WARNING: &str = "session_timeout_warning";
/// A session expired; its sockets are disconnected after this.
pub const SESSION_EXPIRED: &str = "session_expired";
/// A session's idle clock was reset by an extension.
pub const SESSION_EXTENDED: &str = "session_extended";
/// A refused client event without a callback, or the token's expiry.
pub const ERROR: &str = "error";
/// A user the socket subscribed to came online or went offline.
pub const PRESENCE: &str = "presence";
/// The changes a wide audience (`role`, `all`) heard in one batch window.
pub const PRESENCE_BATCH: &str = "presence_batch";

/// Who is in a study room now: `{ room, members }`, at most once per
/// `rooms.presence_window`.
pub const ROOM_PRESENCE: &str = "room_presence";
/// A room member's typing state, both ways: from the client `{ room,
/// isTyping }`, to the room's other sockets `{ room, userId, isTyping, at }`.
pub const TYPING: &str = "typing";
/// A file shared with the user: `{ fileId, name, size, contentType, sha256,
/// expiresAt }` (and `room` when a room member shared it), caught up at each
/// connect until downloaded or expired.
pub const FILE_AVAILABLE: &str = "file_available";

/// A call rings a socket: `{ callId, from: { userId, socketId }, media,
/// iceServers }`.
pub const CALL_INCOMING: &str = "call_incoming";
/// A call's answer, both ways: from the invitee `{ callId, accept }`, to the
/// call's joined sockets `{ callId, from: { userId, socketId }, accept }`.
pub const CALL_ANSWER: &str = "call_answer";
/// A WebRTC offer, answer or ICE candidate, both ways: from a participant
/// `{ callId, to, type, payload }`, to that socket `{ callId, from, type,
/// payload }`.
pub const WEBRTC_SIGNAL: &str = "webrtc_signal";
/// A call is over: `{ callId, by, reason }` to every socket in it.
pub const CALL_ENDED: &str = "call_ended";

/// The `event` an [`ERROR`] names when the socket's token expired (it
/// answers no client event).
pub const TOKEN_EXPIRY_EVENT: &str = "token";

// Client to server.

/// Resets the session's idle clock.
pub const ACTIVITY: &str = "activity";
/// Acknowledges a notification for the socket's user.
pub const ACKNOWLEDGE_NOTIFICATION: &str = "acknowledge_notification";
/// Extends the socket's session.
pub const EXTEND_SESSION: &str = "extend_session";
/// Replaces the socket's token (and its expiry).
pub const REFRESH_TOKEN: &str = "refresh_token";
/// Watches users' presence: the answer is their presence now, and
/// [`PRESENCE`] follows for each change.
pub const PRESENCE_SUBSCRIBE: &str = "presence_subscribe";
/// Stops watching users' presence.
pub const PRESENCE_UNSUBSCRIBE: &str = "presence_unsubscribe";
/// Enters a study room: the answer lists its members.
pub const JOIN_ROOM: &str = "join_room";
/// Leaves a study room.
pub const LEAVE_ROOM: &str = "leave_room";
/// Places a call to a user or a room: the answer carries the call's id
/// and the ICE servers.
pub const CALL_INVITE: &str = "call_invite";
/// Ends a call for everyone in it.
pub const CALL_END: &str = "call_end";

/// Event names a backend may not send through the event API: Socket.IO's
/// own, and Herald's, so that durable, session and presence events cannot
/// be forged.
pub const RESERVED_EVENTS: [&str; 30] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
    CONNECTED,
    CRITICAL_NOTIFICATION,
    NOTIFICATION_ACKNOWLEDGED,
    SESSION_TIMEOUT_WARNING,
    SESSION_EXPIRED,
    SESSION_EXTENDED,
    NOTIFICATION_ESCALATED,
    NOTIFICATION_CLOSED,
    ERROR,
    PRESENCE,
    PRESENCE_BATCH,
    PRESENCE_SUBSCRIBE,
    PRESENCE_UNSUBSCRIBE,
    JOIN_ROOM,
    LEAVE_ROOM,
    ROOM_PRESENCE,
    TYPING,
    FILE_AVAILABLE,
    CALL_INVITE,
    CALL_INCOMING,
    CALL_ANSWER,
    WEBRTC_SIGNAL,
    CALL_END,
    CALL_ENDED,
];

/// Checks an event name from the API; the error is the message a caller
/// is answered with.
pub fn check_event_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 {
        return Err("event must be a non-empty string of at most 256 characters".into());
    }
    if RESERVED_EVENTS.contains(&name) {
        return Err(format!(
            "event name {name:?} is reserved; use its own route"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_empty_names_are_refused() {
        for name in RESERVED_EVENTS {
            assert!(check_event_name(name).is_err(), "{name}");
        }
        assert!(check_event_name("").is_err());
        assert!(check_event_name("study_updated").is_ok());
        for name in [
            "presence_batch",
            "presence_subscribe",
            "presence_unsubscribe",
            "join_room",
            "leave_room",
            "room_presence",
            "typing",
            "call_invite",
            "call_incoming",
            "call_answer",
            "webrtc_signal",
            "call_end",
            "call_ended",
        ] {
            assert!(check_event_name(name).is_err(), "{name}");
        }
    }
}
