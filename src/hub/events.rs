//! Plain (non-durable) events from the backend: to a role, a user, or
//! everyone, serialised once per broadcast. Reserved names are refused so
//! that durable and session events cannot be forged.

use serde_json::Value;

use super::{role_room, user_room, Hub, HubError, ALL_ROOM};

/// Event names a backend may not send through the event API.
pub const RESERVED_EVENTS: [&str; 13] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
    "connected",
    "critical_notification",
    "notification_acknowledged",
    "session_timeout_warning",
    "session_expired",
    "session_extended",
    "error",
];

/// Checks an event name from the API.
pub fn check_event_name(name: &str) -> Result<(), HubError> {
    if name.is_empty() || name.len() > 256 {
        return Err(HubError::BadRequest(
            "event must be a non-empty string of at most 256 characters".into(),
        ));
    }
    if RESERVED_EVENTS.contains(&name) {
        return Err(HubError::BadRequest(format!(
            "event name {name:?} is reserved; use its own route"
        )));
    }
    Ok(())
}

impl Hub {
    /// Emits to a room; `expected` is how many sockets are in it.
    async fn emit_room(
        &self,
        room: &str,
        expected: usize,
        event: &str,
        data: Option<&Value>,
    ) -> usize {
        let Some(io) = self.io() else { return 0 };
        if expected == 0 {
            return 0;
        }
        let op = io.to(room.to_string());
        let res = match data {
            Some(d) => op.emit(event, &(d,)).await,
            None => op.emit(event, &[(); 0]).await,
        };
        let failed = match res {
            Ok(()) => 0,
            Err(socketioxide::BroadcastError::Socket(errs)) => errs.len(),
            Err(e) => {
                tracing::warn!(error = %e, room, "broadcast failed");
                expected
            }
        };
        let delivered = expected.saturating_sub(failed);
        metrics::counter!("herald_deliveries_total", "kind" => "event").increment(delivered as u64);
        delivered
    }

    /// `broadcastToRole`.
    pub async fn broadcast_to_role(
        &self,
        role: &str,
        event: &str,
        data: Option<&Value>,
    ) -> Result<usize, HubError> {
        check_event_name(event)?;
        let n = self.connections.role_count(role);
        Ok(self.emit_room(&role_room(role), n, event, data).await)
    }

    /// An event to every socket of one user.
    pub async fn send_event_to_user(
        &self,
        user: &str,
        event: &str,
        data: Option<&Value>,
    ) -> Result<usize, HubError> {
        check_event_name(event)?;
        let n = self.connections.of_user(user).len();
        Ok(self.emit_room(&user_room(user), n, event, data).await)
    }

    /// An event to every authenticated socket.
    pub async fn broadcast_to_all(
        &self,
        event: &str,
        data: Option<&Value>,
    ) -> Result<usize, HubError> {
        check_event_name(event)?;
        let n = self.connections.len();
        Ok(self.emit_room(ALL_ROOM, n, event, data).await)
    }
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
    }
}
