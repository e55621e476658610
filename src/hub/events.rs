//! Plain (non-durable) events from the backend: to a role, a user, or
//! everyone, on every node. Reserved names are refused so that durable,
//! session and presence events cannot be forged.

use serde_json::Value;

use super::{Hub, HubError};
use crate::broker::{Message, Reach, Target};
use crate::protocol::check_event_name;

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
        check_event_name(event).map_err(HubError::BadRequest)?;
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
        check_event_name(event).map_err(HubError::BadRequest)?;
        Ok(self.send_event(Target::user(user), event, data).await)
    }

    /// An event to every authenticated socket.
    pub async fn broadcast_to_all(
        &self,
        event: &str,
        data: Option<&Value>,
    ) -> Result<Reach, HubError> {
        check_event_name(event).map_err(HubError::BadRequest)?;
        Ok(self.send_event(Target::All, event, data).await)
    }
}
