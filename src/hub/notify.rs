//! Durable notifications: store first, then hand to every socket of the
//! recipient; catch-up of unacknowledged ones on each new connection; and
//! acknowledgement, closed-loop across all of a user's sockets.

use std::time::Duration;

use metrics::counter;
use serde_json::{json, Value};

use super::{Hub, HubError};
use crate::clock::rfc3339;
use crate::connections::Handle;
use crate::notification::{Notification, Redelivered, StateFilter};
use crate::outbox::{self, Undelivered};

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
    ) -> Result<(Notification, usize), HubError> {
        let n = self.new_notification(body)?;
        let inserted = self.store.insert(&n, &[user.to_string()]).await?;
        counter!("herald_notifications_total").increment(1);
        let delivered = if inserted.new_for.first().copied().unwrap_or(false) {
            self.deliver_live(&inserted.notification, user).await
        } else {
            0
        };
        Ok((inserted.notification, delivered))
    }

    /// `broadcastNotification`: one notification, many recipients.
    pub async fn broadcast_notification(
        &self,
        users: &[String],
        body: Value,
    ) -> Result<Vec<Delivery>, HubError> {
        let n = self.new_notification(body)?;
        let mut unique: Vec<String> = Vec::with_capacity(users.len());
        let mut seen = std::collections::HashSet::with_capacity(users.len());
        for u in users {
            if seen.insert(u.as_str()) {
                unique.push(u.clone());
            }
        }
        let inserted = self.store.insert(&n, &unique).await?;
        counter!("herald_notifications_total").increment(1);
        let mut results = Vec::with_capacity(unique.len());
        for (user, new) in unique.into_iter().zip(inserted.new_for) {
            let delivered_to = if new {
                self.deliver_live(&inserted.notification, &user).await
            } else {
                0
            };
            results.push(Delivery {
                user_id: user,
                notification_id: inserted.notification.id.clone(),
                delivered_to,
            });
        }
        Ok(results)
    }

    /// Hands `n` to every socket of `user` that does not have it yet.
    async fn deliver_live(&self, n: &Notification, user: &str) -> usize {
        let mut delivered = 0;
        for h in self.connections.of_user(user) {
            if !h.conn.claim(&n.id) {
                continue;
            }
            match outbox::emit(&h.socket, "critical_notification", n, Duration::ZERO).await {
                Ok(()) => delivered += 1,
                Err(Undelivered::Closed) => h.conn.unclaim(&n.id),
                Err(Undelivered::Stalled) => {
                    // The socket is slow, not gone: keep trying in the background.
                    let (h, n, patience) = (h.clone(), n.clone(), self.patience());
                    tokio::spawn(async move {
                        if outbox::emit(&h.socket, "critical_notification", &n, patience)
                            .await
                            .is_err()
                        {
                            h.conn.unclaim(&n.id);
                        }
                    });
                }
            }
        }
        counter!("herald_deliveries_total", "kind" => "live").increment(delivered as u64);
        if delivered > 0 {
            self.store.mark_delivered(&n.id, user, self.now());
        }
        delivered
    }

    /// Sends `h`'s user every unacknowledged notification, oldest first,
    /// marked `redelivered`, paced by the socket's buffer.
    pub async fn catch_up(&self, h: &Handle) {
        let user = &h.conn.user_id;
        let mut after = 0;
        loop {
            let page = match self
                .store
                .list(user, StateFilter::Unacknowledged, after, CATCH_UP_PAGE)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, sid = %h.conn.sid, "catch-up read failed; the socket will get its notifications on reconnect");
                    return;
                }
            };
            let full = page.len() as u32 == CATCH_UP_PAGE;
            for un in page {
                after = un.seq;
                let n = &un.notification;
                if !h.conn.claim(&n.id) {
                    continue;
                }
                if let Err(why) = outbox::emit(
                    &h.socket,
                    "critical_notification",
                    &Redelivered(n),
                    self.patience(),
                )
                .await
                {
                    h.conn.unclaim(&n.id);
                    tracing::debug!(?why, sid = %h.conn.sid, "catch-up stopped");
                    return;
                }
                counter!("herald_deliveries_total", "kind" => "catch_up").increment(1);
                if un.recipient.delivered_at.is_none() {
                    self.store.mark_delivered(&n.id, user, self.now());
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

    /// Acknowledges `id` for `user`; tells every socket of the user the
    /// first time (as the store decides: two tabs acknowledging in the same
    /// millisecond tell them once). Returns the (first) acknowledgement time.
    pub async fn acknowledge(&self, user: &str, id: &str) -> Result<i64, HubError> {
        let ack = self
            .store
            .acknowledge(id, user, self.now())
            .await?
            .ok_or_else(|| HubError::NotFound(format!("notification {id} not found")))?;
        let at = ack.at;
        if ack.first {
            counter!("herald_acknowledgements_total").increment(1);
            let payload = json!({ "notificationId": id, "acknowledgedAt": rfc3339(at) });
            for h in self.connections.of_user(user) {
                let _ = outbox::emit(
                    &h.socket,
                    "notification_acknowledged",
                    &payload,
                    Duration::ZERO,
                )
                .await;
            }
        }
        Ok(at)
    }
}
