//! The inbox a store keeps: each notification with its recipients, their
//! deliveries and acknowledgements (the first stands and closes the
//! notification), read back per notification or per user, and purged past
//! retention.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Closed, Source, StoreError};
use crate::clock::Millis;
use crate::notification::{Notification, Recipient, StateFilter};

/// What storing a notification for some users did.
#[derive(Debug, Clone)]
pub struct Inserted {
    /// The stored notification: the first body given for this id (the
    /// caller's own, shared, when the id is new).
    pub notification: Arc<Notification>,
    /// For each requested user, in order: true when that user is a new recipient.
    pub new_for: Vec<bool>,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    /// The time of the first acknowledgement, which stands.
    pub at: Millis,
    /// Whether this acknowledgement was that first one.
    pub first: bool,
    /// When the recipient got the notification (time-to-acknowledge starts here).
    pub created_at: Millis,
    /// This acknowledgement was the notification's first, by any
    /// recipient: it closed the notification.
    pub closed: Option<Closed>,
}

/// A notification as one user sees it.
#[derive(Debug, Clone)]
pub struct UserNotification {
    /// Position in the user's inbox; increases with insertion.
    pub seq: i64,
    pub notification: Notification,
    pub recipient: Recipient,
}

/// Notifications and their recipients: stored, delivered, acknowledged,
/// read and purged.
#[async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Stores `notification` for every user in `users` (deduplicated by the
    /// caller) in one transaction. An existing id keeps its first body.
    async fn insert(
        &self,
        notification: &Notification,
        users: &[String],
    ) -> Result<Inserted, StoreError> {
        self.insert_scheduled(&Arc::new(notification.clone()), users, &[])
            .await
    }

    /// As [`Inbox::insert`], and when the notification is new, in the same
    /// transaction: its `created` audit record, and its escalation steps,
    /// `(level, due_at)` each.
    async fn insert_scheduled(
        &self,
        notification: &Arc<Notification>,
        users: &[String],
        steps: &[(u32, Millis)],
    ) -> Result<Inserted, StoreError>;

    /// Records the first hand-over of `id` to one of `user`'s sockets.
    /// Queued, not awaited: the mark rides with the next commit (a crash may
    /// lose it; the notification then reads `pending` and, being
    /// unacknowledged, is redelivered anyway). Writes commit in order, so a
    /// later awaited write (an acknowledgement) commits the mark first.
    fn mark_delivered(&self, id: &str, user: &str, at: Millis);

    /// Acknowledges `id` for `user` at `at`: the first acknowledgement's
    /// time and whether this was it, or `None` when `user` is not a
    /// recipient of `id`.
    async fn acknowledge(
        &self,
        id: &str,
        user: &str,
        at: Millis,
    ) -> Result<Option<Acknowledged>, StoreError> {
        self.acknowledge_from(id, user, at, &Source::default())
            .await
    }

    /// As [`Inbox::acknowledge`], recording `source` in the audit trail.
    /// The first acknowledgement by any recipient also closes the
    /// notification: its remaining escalation steps go, in the same
    /// transaction as its `acknowledged` record, which says it closed.
    async fn acknowledge_from(
        &self,
        id: &str,
        user: &str,
        at: Millis,
        source: &Source,
    ) -> Result<Option<Acknowledged>, StoreError>;

    /// A notification with all its recipients.
    async fn notification(
        &self,
        id: &str,
    ) -> Result<Option<(Notification, Vec<Recipient>)>, StoreError>;

    /// A notification as `user` sees it.
    async fn user_notification(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<UserNotification>, StoreError>;

    /// `user`'s notifications matching `filter` with `seq > after`, oldest
    /// first, at most `limit`.
    async fn list(
        &self,
        user: &str,
        filter: StateFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<UserNotification>, StoreError>;

    /// The first page of each of `users`' notifications matching `filter`
    /// (what [`Inbox::list`] answers from the start, at most `limit`),
    /// in the order of `users`: a reconnect storm's catch-ups read
    /// together. One read where the engine can; this default reads them
    /// one by one.
    async fn first_pages(
        &self,
        users: &[String],
        filter: StateFilter,
        limit: u32,
    ) -> Result<Vec<Vec<UserNotification>>, StoreError> {
        let mut pages = Vec::with_capacity(users.len());
        for user in users {
            pages.push(self.list(user, filter, 0, limit).await?);
        }
        Ok(pages)
    }

    /// Deletes notifications past retention, and expired-session records
    /// older than `unacknowledged_before`; returns how many recipient rows went.
    async fn purge(
        &self,
        acknowledged_before: Millis,
        unacknowledged_before: Millis,
    ) -> Result<u64, StoreError>;
}
