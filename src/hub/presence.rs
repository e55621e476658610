//! Presence: announcing a user's coming online or going offline to the
//! configured audience, and the cluster-wide presence answer.

use serde_json::json;

use super::Hub;
use crate::broker::{Message, Target};
use crate::clock::rfc3339;
use crate::cluster::Answer;
use crate::config::PresenceAudience;
use crate::presence::{PresenceChange, PresenceInfo, PresenceStatus};
use crate::protocol;

/// Users' presence as the API shows it.
pub type PresenceView = Answer<Vec<PresenceInfo>>;

impl Hub {
    /// Sends `presence` for `change` to its audience (the sockets of the
    /// user's role, everyone's, or no one's), never to the user's own.
    pub(super) async fn announce_presence(&self, change: &PresenceChange) {
        let role = match self.config.presence.audience {
            PresenceAudience::Role => Some(change.role.clone()),
            PresenceAudience::All => None,
            PresenceAudience::None => return,
        };
        let target = Target::Others {
            role,
            except_user: change.user_id.clone(),
        };
        let status = match change.status {
            PresenceStatus::Online => "online",
            PresenceStatus::Offline => "offline",
        };
        let message = Message::Event {
            name: protocol::PRESENCE.into(),
            data: Some(json!({
                "userId": change.user_id,
                "status": status,
                "at": rfc3339(change.at),
            })),
        };
        self.broker.deliver(&target, &message).await;
    }

    /// The presence of each of `users`, in the order asked.
    pub async fn presence(&self, users: &[String]) -> PresenceView {
        self.presence.presence(users, self.now()).await
    }
}
