//! The durable notification inbox and the record of expired sessions,
//! behind one contract so the embedded SQLite store and a PostgreSQL store
//! are interchangeable.
//!
//! The contract is one trait per concept (`inbox.rs`, `escalation_steps.rs`,
//! `audit_trail.rs`, `session_records.rs`, `read_models.rs`, `room_grants.rs`, `files.rs`), each method
//! documented with the invariant both engines keep, and [`Store`], which
//! joins them with the store's health. Each engine has its folder
//! (`sqlite/`, `postgres/`); `metered.rs` times either; `conformance/`
//! runs the contract's tests on both.

mod audit_trail;
mod closed_loop;
#[cfg(test)]
mod conformance;
mod escalation_steps;
mod files;
mod inbox;
mod metered;
mod postgres;
mod read_models;
mod room_grants;
mod rows;
mod session_records;
mod sqlite;

use async_trait::async_trait;

use crate::clock::Millis;

pub use audit_trail::{AuditTrail, Unsealed};

pub use closed_loop::{
    ClaimedStep, Closed, Completion, Escalation, ReportRow, Source, StepOutcome,
};
pub use escalation_steps::EscalationSteps;
pub use files::{Content, Files};
pub use inbox::{Acknowledged, Inbox, Inserted, UserNotification};
pub use metered::Metered;
#[doc(hidden)]
pub use postgres::testing;
pub use postgres::PostgresStore;
pub use read_models::{ReadModels, Unacknowledged};
pub use room_grants::RoomGrants;
pub use session_records::SessionRecords;
pub use sqlite::{backup, SqliteStore, FILES_DIR};

#[derive(Debug, Clone, thiserror::Error)]
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

/// A file's bytes could not be read or written where the store keeps them.
impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if stored_data_unreadable(&e) {
            StoreError::Corrupt(e.to_string())
        } else {
            StoreError::Unavailable(e.to_string())
        }
    }
}

/// Whether the store answered, with data that cannot be read: a column of
/// another type than the schema's, or (SQLite) a damaged database file.
/// Everything else (no connection, a timeout, a refused statement) is the
/// store not answering.
fn stored_data_unreadable(e: &sqlx::Error) -> bool {
    /// SQLITE_CORRUPT and SQLITE_NOTADB, the primary codes of the extended
    /// ones SQLite answers: the file's pages are damaged.
    const DAMAGED: [i32; 2] = [11, 26];
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => true,
        sqlx::Error::Database(db) => {
            db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                && db
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .is_some_and(|c| DAMAGED.contains(&(c & 0xff)))
        }
        _ => false,
    }
}

/// A store: one engine's answer to every concept of the contract, and its
/// health. `Arc<dyn Store>` is what the Hub and the server hold.
#[async_trait]
pub trait Store:
    Inbox + EscalationSteps + AuditTrail + SessionRecords + ReadModels + RoomGrants + Files
{
    /// Records the live hand-over of `id` to `sockets` of `user` at `at`:
    /// its delivery mark ([`Inbox::mark_delivered`]) and one `delivered`
    /// audit record listing the sockets. Queued, not awaited, as both are;
    /// an engine may queue them as one write.
    fn delivered(&self, id: &str, user: &str, at: Millis, sockets: &[String]) {
        self.mark_delivered(id, user, at);
        self.record(crate::trail::record::delivered(id, user, at, sockets));
    }

    /// Answers when the store can serve requests: it reads, and a write
    /// commits (a store that can only read, such as one on a full disk or
    /// with a stopped writer, is not ready).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Flushes and closes the store.
    async fn close(&self);
}
