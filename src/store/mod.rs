//! The durable notification inbox and the record of expired sessions,
//! behind one trait so the embedded SQLite store and a PostgreSQL store are
//! interchangeable.

pub mod backup;
#[cfg(test)]
mod conformance;
mod marks;
mod metered;
mod pending;
mod postgres;
mod rows;
mod spilled;
mod sqlite;
mod statements;
mod writer;

use async_trait::async_trait;

pub use metered::Metered;
pub use postgres::{drop_fresh_database, fresh_database, PostgresStore};
pub use sqlite::SqliteStore;

use crate::clock::Millis;
use crate::notification::{Notification, Recipient, StateFilter};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// What storing a notification for some users did.
#[derive(Debug, Clone)]
pub struct Inserted {
    /// The stored notification: the first body given for this id.
    pub notification: Notification,
    /// For each requested user, in order: true when that user is a new recipient.
    pub new_for: Vec<bool>,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledged {
    /// The time of the first acknowledgement, which stands.
    pub at: Millis,
    /// Whether this acknowledgement was that first one.
    pub first: bool,
    /// When the recipient got the notification (time-to-acknowledge starts here).
    pub created_at: Millis,
}

/// A notification as one user sees it.
#[derive(Debug, Clone)]
pub struct UserNotification {
    /// Position in the user's inbox; increases with insertion.
    pub seq: i64,
    pub notification: Notification,
    pub recipient: Recipient,
}

/// The oldest unacknowledged notifications of every recipient, and how
/// many there are in all.
#[derive(Debug, Clone)]
pub struct Unacknowledged {
    pub total: u64,
    pub oldest: Vec<UserNotification>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores `notification` for every user in `users` (deduplicated by the
    /// caller) in one transaction. An existing id keeps its first body.
    async fn insert(
        &self,
        notification: &Notification,
        users: &[String],
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

    /// Every recipient's unacknowledged notifications, oldest first (by
    /// creation, then by insertion), at most `limit`, with their total:
    /// what the operators' dashboard watches. Reads only; one answer is
    /// one consistent snapshot on neither engine, so the total may count
    /// a row the page no longer shows.
    async fn unacknowledged(&self, limit: u32) -> Result<Unacknowledged, StoreError>;

    /// Deletes notifications past retention, and expired-session records
    /// older than `unacknowledged_before`; returns how many recipient rows went.
    async fn purge(
        &self,
        acknowledged_before: Millis,
        unacknowledged_before: Millis,
    ) -> Result<u64, StoreError>;

    /// Records that `session` has expired; its tokens are refused from now on.
    async fn expire_session(&self, session: &str, user: &str, at: Millis)
        -> Result<(), StoreError>;

    /// Makes `user` the owner of `session` unless it already has one, and
    /// answers the owner: the user whose token first used the session.
    /// Kept as long as expired-session records (the unacknowledged
    /// retention, counted from the first use).
    async fn claim_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<String, StoreError>;

    /// Every session expired at or after `since`.
    async fn expired_sessions(&self, since: Millis) -> Result<Vec<String>, StoreError>;

    /// Recipients who have not acknowledged their notification yet, over
    /// all users (the pending gauge of `/metrics`; the partial index of the
    /// unacknowledged answers it).
    async fn pending_count(&self) -> Result<u64, StoreError>;

    /// Answers when the store can serve requests: it reads, and a write
    /// commits (a store that can only read, such as one on a full disk or
    /// with a stopped writer, is not ready).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Flushes and closes the store.
    async fn close(&self);
}
