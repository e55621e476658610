//! Presence: telling a user's coming online or going offline to the
//! configured audience (subscribers at once, the wide audiences in
//! batches), subscriptions, and the cluster-wide presence answer.

use std::sync::Arc;

use super::{Hub, HubError};
use crate::broker::{watch_room, Message, Target};
use crate::clock::Millis;
use crate::cluster::Answer;
use crate::config::PresenceAudience;
use crate::connections::connection::Handle;
use crate::connections::watching::WatchRefused;
use crate::presence::{BatchAudience, PresenceChange, PresenceInfo};
use crate::protocol;

/// Users' presence as the API shows it.
pub type PresenceView = Answer<Vec<PresenceInfo>>;

impl Hub {
    /// Tells every node of `change` (this node's share first, and without
    /// Redis): each tells the sockets there that watch the user, and adds
    /// it to its wide audience's batch. One message per change whatever
    /// the number of sockets, so a storm of N connects costs O(N).
    pub(super) async fn announce_presence(&self, change: &PresenceChange) {
        if self.config.presence.audience == PresenceAudience::None {
            return;
        }
        self.broker
            .deliver(&Target::All, &Message::Presence(change.clone()))
            .await;
    }

    /// A change heard on this node (its own or another node's): into the
    /// window of the wide audience that is to hear it, if one is set. The
    /// scheduler wakes when a new window closes.
    pub(super) fn batch_presence(&self, change: &PresenceChange) {
        let audience = match self.config.presence.audience {
            PresenceAudience::Role => BatchAudience::Role(Arc::from(change.role.as_str())),
            PresenceAudience::All => BatchAudience::All,
            PresenceAudience::Subscribers | PresenceAudience::None => return,
        };
        let opened = self.batches.lock().add(audience, change, self.now());
        if let Some(closes) = opened {
            self.wake_for(closes);
        }
    }

    /// Sends this node's sockets the batches whose window closed by `now`
    /// (one `presence_batch` per audience room, serialised once); returns
    /// when the next window closes.
    pub(super) async fn send_presence_batches(&self, now: Millis) -> Option<Millis> {
        let due = self.batches.lock().due(now);
        for batch in due {
            let target = match &batch.audience {
                BatchAudience::Role(role) => Target::Role(role.to_string()),
                BatchAudience::All => Target::All,
            };
            let message = Message::Event {
                name: protocol::PRESENCE_BATCH.into(),
                data: Some(batch.view()),
            };
            // Each node sends its own sockets' batches: every node heard
            // every change.
            self.local.deliver_here(&target, &message).await;
        }
        self.batches.lock().next_due()
    }

    /// The presence of each of `users`, in the order asked.
    pub async fn presence(&self, users: &[String]) -> PresenceView {
        self.presence.presence(users, self.now()).await
    }

    /// `presence_subscribe`: socket `h` watches `users` from now on (their
    /// watch rooms joined before their presence is read, so no change
    /// falls between the answer and the first event), and their presence
    /// now. All or nothing: over `presence.max_subscriptions` in all, or
    /// with presence events off, nothing changes.
    pub async fn presence_subscribe(
        &self,
        h: &Handle,
        users: &[String],
    ) -> Result<PresenceView, HubError> {
        let c = &self.config.presence;
        if c.audience == PresenceAudience::None {
            return Err(HubError::Forbidden(
                "presence events are off on this server (presence.audience is none)".into(),
            ));
        }
        let added = self
            .sockets
            .watch(h.conn.sid, users, c.max_subscriptions)
            .map_err(|e| match e {
                WatchRefused::TooMany {
                    watching,
                    asked,
                    max,
                } => HubError::BadRequest(format!(
                    "a socket may watch at most {max} users: it watches {watching}, and {asked} more were asked"
                )),
                WatchRefused::Gone => HubError::BadRequest("the socket is disconnecting".into()),
            })?;
        let rooms: Vec<String> = added.iter().map(|u| watch_room(u)).collect();
        h.socket.join(rooms.clone());
        // A disconnect that raced the subscription cleared the socket's
        // rooms before these were joined: leave them again.
        if !h.socket.connected() {
            h.socket.leave(rooms);
            self.sockets.unwatch(h.conn.sid, users);
            return Err(HubError::BadRequest("the socket is disconnecting".into()));
        }
        Ok(self.presence(users).await)
    }

    /// `presence_unsubscribe`: socket `h` stops watching `users` (those it
    /// did not watch are ignored).
    pub fn presence_unsubscribe(&self, h: &Handle, users: &[String]) {
        let removed = self.sockets.unwatch(h.conn.sid, users);
        if !removed.is_empty() {
            h.socket
                .leave(removed.iter().map(|u| watch_room(u)).collect::<Vec<_>>());
        }
    }
}
