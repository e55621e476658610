//! The durable notification inbox and the record of expired sessions,
//! behind one trait so the embedded SQLite store and a PostgreSQL store are
//! interchangeable.

mod closed_loop;
#[cfg(test)]
mod conformance;
mod metered;
mod postgres;
mod rows;
mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;

pub use closed_loop::{
    ClaimedStep, Closed, Completion, Escalation, ReportRow, Source, StepOutcome,
};
pub use metered::Metered;
#[doc(hidden)]
pub use postgres::testing;
pub use postgres::PostgresStore;
pub use sqlite::{backup, SqliteStore};

use crate::clock::Millis;
use crate::notification::{Notification, Recipient, StateFilter};
use crate::trail::{Anchor, ChainReader, Entry, Record};

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
    ) -> Result<Inserted, StoreError> {
        self.insert_scheduled(notification, users, &[]).await
    }

    /// As [`Store::insert`], and when the notification is new, in the same
    /// transaction: its `created` audit record, and its escalation steps,
    /// `(level, due_at)` each.
    async fn insert_scheduled(
        &self,
        notification: &Notification,
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

    /// As [`Store::acknowledge`], recording `source` in the audit trail.
    /// The first acknowledgement by any recipient also closes the
    /// notification: its remaining escalation steps go, in the same
    /// transaction as its `acknowledged` and `closed` records.
    async fn acknowledge_from(
        &self,
        id: &str,
        user: &str,
        at: Millis,
        source: &Source,
    ) -> Result<Option<Acknowledged>, StoreError>;

    /// Appends `entry` to the audit trail. Queued, not awaited, like a
    /// delivery mark: it rides with the next commit.
    fn record(&self, entry: Entry);

    /// Claims up to `limit` escalation steps due at `now` of open
    /// notifications, each for `owner` until `until`: steps whose earlier
    /// levels have all fired, and that nobody holds (a claim whose lease
    /// ran out is taken over). Oldest deadline first.
    async fn claim_steps(
        &self,
        now: Millis,
        owner: &str,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedStep>, StoreError>;

    /// Commits `c` if the step is still claimed by `c.owner` (and so the
    /// notification is still open); false, changing nothing, otherwise.
    async fn complete_step(&self, c: &Completion) -> Result<bool, StoreError>;

    /// When the earliest escalation step falls due, claimed or not (an
    /// indexed read: the scheduler asks at every wake).
    async fn next_step_due(&self) -> Result<Option<Millis>, StoreError>;

    /// When the first claim held past `now` runs out: when a due step that
    /// another node holds (or waits behind) can be taken over.
    async fn next_claim_end(&self, now: Millis) -> Result<Option<Millis>, StoreError>;

    /// Roles that are recipients of some open notification.
    async fn open_roles(&self) -> Result<Vec<String>, StoreError>;

    /// Makes `user`, whose token carries `role`, a recipient of every open
    /// notification that `role` is a recipient of (`only` narrows it to one
    /// notification); returns how many it joined.
    async fn join_role(
        &self,
        user: &str,
        role: &str,
        only: Option<&str>,
        at: Millis,
    ) -> Result<u64, StoreError>;

    /// The audit records of one notification, oldest first.
    async fn timeline(&self, id: &str) -> Result<Vec<Record>, StoreError>;

    /// Audit records with `seq > after` and `from <= at < to`, in chain
    /// order, at most `limit`.
    async fn audit_page(
        &self,
        after: i64,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError>;

    /// Where the remaining chain starts (after retention removed its oldest
    /// records).
    async fn audit_anchor(&self) -> Result<Anchor, StoreError>;

    /// Where the escalation of each of `ids` stands (a stored notification
    /// each; unknown ids are left out): one read for a page of the
    /// dashboard's list, through the audit trail's and the steps' indexes.
    async fn escalations(&self, ids: &[String]) -> Result<HashMap<String, Escalation>, StoreError>;

    /// Every notification created in `from <= createdAt < to`.
    async fn report_rows(&self, from: Millis, to: Millis) -> Result<Vec<ReportRow>, StoreError>;

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

/// `herald audit verify` walks the chain of any store.
impl<S: Store + ?Sized> ChainReader for S {
    type Error = StoreError;

    fn anchor(&self) -> impl std::future::Future<Output = Result<Anchor, StoreError>> + Send {
        self.audit_anchor()
    }

    fn records_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> impl std::future::Future<Output = Result<Vec<Record>, StoreError>> + Send {
        self.audit_page(seq, Millis::MIN, Millis::MAX, limit)
    }
}
