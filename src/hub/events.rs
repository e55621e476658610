//! Plain (non-durable) events from the backend: to a role, a user, or
//! everyone, on every node. Reserved names are refused so that durable,
//! session and presence events cannot be forged.

use serde_json::Value;

use super::{Hub, HubError};
use crate::broker::{Message, Reach, Target};

/// Event names a backend may not send through the event API.
pub const RESERVED_EVENTS: [&str; 16] = [
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
    "notification_escalated",
    "notification_closed",
    "error",
    "presence",
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
    async fn send_event(&self, target: Target, event: &str, data: Option<&Value>) -> Reach {
        let message = Message::Event {
            name: event.to_string(),
            data: data.cloned(),
        };
        self.broker.deliver(&target, &message).await
    }

    /// `broadcastToRole`.
    pub async fn broadcast_to_role(
        &self,
        role: &str,
        event: &str,
        data: Option<&Value>,
    ) -> Result<Reach, HubError> {
        check_event_name(event)?;
        Ok(self
            .send_event(Target::Role(role.to_string()), event, data)
            .await)
    }

    /// An event to every socket of one user.
    pub async fn send_event_to_user(
        &self,
        user: &str,
        event: &str,
        data: Option<&Value>,
    ) -> Result<Reach, HubError> {
        check_event_name(event)?;
        Ok(self.send_event(Target::user(user), event, data).await)
    }

    /// An event to every authenticated socket.
    pub async fn broadcast_to_all(
        &self,
        event: &str,
        data: Option<&Value>,
    ) -> Result<Reach, HubError> {
        check_event_name(event)?;
        Ok(self.send_event(Target::All, event, data).await)
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
