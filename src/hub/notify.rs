//! Durable notifications: store first, then hand to every socket of the
//! recipient on every node; catch-up of unacknowledged ones on each new
//! connection; and acknowledgement, heard by all of a user's sockets.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{Hub, HubError};
use crate::broker::{delivery_record, Message, Target};
use crate::clock::rfc3339;
use crate::connections::connection::Handle;
use crate::connections::outbox;
use crate::escalation;
use crate::notification::{Notification, Recipient, Redelivered, StateFilter};
use crate::observe::prometheus;
use crate::protocol;
use crate::store::Source;
use crate::store::UserNotification;
use crate::trail::Kind;

/// Notifications read from the store per catch-up page.
const CATCH_UP_PAGE: u32 = 64;

/// Pause between catch-up pages.
const CATCH_UP_PAUSE: Duration = Duration::from_millis(10);

/// One recipient's outcome of a broadcast.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub user_id: String,
    pub notification_id: String,
    pub delivered_to: usize,
}

/// A stored notification and how many sockets took it live.
#[derive(Debug, Clone)]
pub struct Sent {
    pub notification: Notification,
    pub delivered_to: usize,
    /// Some node could not be reached: `delivered_to` counts the others.
    pub partial: bool,
}

/// The outcome of a broadcast to many users.
#[derive(Debug, Clone)]
pub struct Broadcast {
    pub results: Vec<Delivery>,
    pub partial: bool,
}

impl Hub {
    fn new_notification(&self, body: Value) -> Result<Notification, HubError> {
        Ok(Notification::from_body(
            body,
            || uuid::Uuid::now_v7().to_string(),
            self.now(),
        )?)
    }

    /// `sendNotificationToUser`: stores, then delivers live.
    pub async fn send_notification_to_user(
        &self,
        user: &str,
        body: Value,
    ) -> Result<Sent, HubError> {
        let n = Arc::new(self.new_notification(body)?);
        let inserted = self.store_new(&n, &[user.to_string()]).await?;
        drop(n);
        let new = inserted.new_for.first().copied().unwrap_or(false);
        prometheus::notification_accepted(usize::from(new));
        let n = inserted.notification;
        let (delivered_to, partial) = if new {
            let reach = self
                .broker
                .deliver(&Target::user(user), &Message::Notification(n.clone()))
                .await;
            (reach.total(), reach.partial)
        } else {
            (0, false)
        };
        Ok(Sent {
            notification: Arc::unwrap_or_clone(n),
            delivered_to,
            partial,
        })
    }

    /// `broadcastNotification`: one notification, many recipients.
    pub async fn broadcast_notification(
        &self,
        users: &[String],
        body: Value,
    ) -> Result<Broadcast, HubError> {
        let n = Arc::new(self.new_notification(body)?);
        let mut unique: Vec<String> = Vec::with_capacity(users.len());
        let mut seen = std::collections::HashSet::with_capacity(users.len());
        for u in users {
            if seen.insert(u.as_str()) {
                unique.push(u.clone());
            }
        }
        let inserted = self.store_new(&n, &unique).await?;
        drop(n);
        let fresh: Vec<String> = unique
            .iter()
            .zip(&inserted.new_for)
            .filter(|(_, new)| **new)
            .map(|(u, _)| u.clone())
            .collect();
        prometheus::notification_accepted(fresh.len());
        let id = inserted.notification.id.clone();
        let reach = if fresh.is_empty() {
            None
        } else {
            let n = Message::Notification(inserted.notification);
            Some(self.broker.deliver(&Target::Users(fresh), &n).await)
        };
        let mut counts = reach.iter().flat_map(|r| r.counts.iter().copied());
        let results = unique
            .into_iter()
            .zip(inserted.new_for)
            .map(|(user_id, new)| Delivery {
                user_id,
                notification_id: id.clone(),
                delivered_to: if new { counts.next().unwrap_or(0) } else { 0 },
            })
            .collect();
        Ok(Broadcast {
            results,
            partial: reach.is_some_and(|r| r.partial),
        })
    }

    /// Stores `n` for `users` with its escalation steps, and wakes the
    /// scheduler for the first one.
    async fn store_new(
        &self,
        n: &Arc<Notification>,
        users: &[String],
    ) -> Result<crate::store::Inserted, HubError> {
        let steps = self.escalation.schedule(n);
        let inserted = self.store.insert_scheduled(n, users, &steps).await?;
        if let Some((_, first)) = steps.first() {
            self.wake_for(*first);
        }
        Ok(inserted)
    }

    /// A notification with all its recipients.
    pub async fn notification(
        &self,
        id: &str,
    ) -> Result<Option<(Notification, Vec<Recipient>)>, HubError> {
        Ok(self.store.notification(id).await?)
    }

    /// A notification as `user` sees it.
    pub async fn user_notification(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<UserNotification>, HubError> {
        Ok(self.store.user_notification(id, user).await?)
    }

    /// A page of `user`'s notifications, oldest first.
    pub async fn user_notifications(
        &self,
        user: &str,
        filter: StateFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<UserNotification>, HubError> {
        Ok(self.store.list(user, filter, after, limit).await?)
    }

    /// Sends `h`'s user every unacknowledged notification, oldest first,
    /// marked `redelivered`, paced by the socket's buffer.
    pub async fn catch_up(&self, h: &Handle) {
        let user = &h.conn.user_id;
        self.escalation.join_role(h, None).await;
        let mut after = 0;
        loop {
            let read = if after == 0 {
                // The first page with those of the connects arriving
                // together (a reconnect storm): one store read for them all.
                let store = &self.store;
                self.first_pages
                    .read(user.to_string(), |users| async move {
                        store
                            .first_pages(&users, StateFilter::Unacknowledged, CATCH_UP_PAGE)
                            .await
                    })
                    .await
            } else {
                self.store
                    .list(user, StateFilter::Unacknowledged, after, CATCH_UP_PAGE)
                    .await
            };
            let page = match read {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, sid = %h.conn.sid, "catch-up read failed; the socket will get its notifications on reconnect");
                    return;
                }
            };
            let full = page.len() as u32 == CATCH_UP_PAGE;
            for un in page {
                after = un.seq;
                let escalated = un.recipient.escalation_level.and_then(|level| {
                    let policy = self.config.escalation.policy(un.notification.severity())?;
                    let field = escalation::escalation_field(policy, level);
                    Some(un.notification.with_field("escalation", field))
                });
                let n = escalated.as_ref().unwrap_or(&un.notification);
                if !h.conn.claim(&n.id) {
                    continue;
                }
                if let Err(why) = outbox::emit(
                    &h.socket,
                    protocol::CRITICAL_NOTIFICATION,
                    &Redelivered(n),
                    self.patience(),
                )
                .await
                {
                    h.conn.unclaim(&n.id);
                    tracing::debug!(?why, sid = %h.conn.sid, "catch-up stopped");
                    return;
                }
                prometheus::delivered("catch_up", 1);
                self.store
                    .record(delivery_record(Kind::Redelivered, &n.id, h, self.now()));
                if un.recipient.delivered_at.is_none() {
                    let now = self.now();
                    prometheus::first_delivery(n.created_at, now);
                    self.store.mark_delivered(&n.id, user, now);
                }
            }
            if !full {
                return;
            }
            // Let the transport drain between pages: the send buffer keeps
            // headroom, so the Engine.IO heartbeat ping always finds room.
            tokio::time::sleep(CATCH_UP_PAUSE).await;
        }
    }

    /// Acknowledges `id` for `user` (from the API or a test); see
    /// [`Hub::acknowledge_from`].
    pub async fn acknowledge(&self, user: &str, id: &str) -> Result<i64, HubError> {
        self.acknowledge_as(user, id, &Source::default()).await
    }

    /// Acknowledges `id` from socket `h`: a member of a role the
    /// notification was escalated to joins it first, if it had not yet.
    pub async fn acknowledge_from(&self, h: &Handle, id: &str) -> Result<i64, HubError> {
        let source = Source {
            socket_id: Some(h.conn.sid.to_string()),
            remote: h.conn.remote_addr.map(|a| a.to_string()),
        };
        let at = match self.acknowledge_as(&h.conn.user_id, id, &source).await {
            Err(HubError::NotFound(_)) if self.escalation.join_role(h, Some(id)).await > 0 => {
                self.acknowledge_as(&h.conn.user_id, id, &source).await
            }
            other => other,
        }?;
        // Before the answer goes out: a reminder the engine tells after
        // it (a step committed just before the closing) stops at this
        // socket, whichever node fired it. Without a policy no step is
        // ever told, and the socket keeps nothing.
        if !self.config.escalation.policies.is_empty() {
            h.conn.done_with(id);
        }
        Ok(at)
    }

    /// Acknowledges `id` for `user`; tells every socket of the user, on
    /// every node, the first time (as the store decides: two tabs
    /// acknowledging in the same millisecond tell them once), and when it
    /// closes the notification, every socket of every recipient. Returns
    /// the (first) acknowledgement time.
    async fn acknowledge_as(&self, user: &str, id: &str, source: &Source) -> Result<i64, HubError> {
        let ack = self
            .store
            .acknowledge_from(id, user, self.now(), source)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("notification {id} not found")))?;
        let at = ack.at;
        let acknowledged = ack.first.then(|| {
            prometheus::acknowledged(ack.created_at, at);
            let data = json!({ "notificationId": id, "acknowledgedAt": rfc3339(at) });
            Message::Event {
                name: protocol::NOTIFICATION_ACKNOWLEDGED.into(),
                data: Some(data),
            }
        });
        let Some(closed) = ack.closed else {
            if let Some(message) = acknowledged {
                self.broker.deliver(&Target::user(user), &message).await;
            }
            return Ok(at);
        };
        prometheus::notification_closed();
        let message = Message::Event {
            name: protocol::NOTIFICATION_CLOSED.into(),
            data: Some(escalation::closed_event(id, closed.at, &closed.by)),
        };
        if closed.roles.is_empty() && closed.users.len() == 1 && closed.users[0] == user {
            // The usual notification, to one user and no role: the closing
            // goes with the acknowledgement, and a cluster looks up where
            // the user's sockets are once for both.
            let both: Vec<Message> = acknowledged.into_iter().chain([message]).collect();
            self.broker.deliver_each(&Target::user(user), &both).await;
            return Ok(at);
        }
        if let Some(acknowledged) = acknowledged {
            self.broker
                .deliver(&Target::user(user), &acknowledged)
                .await;
        }
        // Every socket once: a member who joined through a role hears it
        // whether connected with that role's token or another's.
        let recipients = if closed.roles.is_empty() {
            Target::Users(closed.users)
        } else {
            Target::Recipients {
                users: closed.users,
                roles: closed.roles,
            }
        };
        self.broker.deliver(&recipients, &message).await;
        Ok(at)
    }
}
