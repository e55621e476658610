//! The shared store: PostgreSQL, which several Herald nodes write at once.
//! Every write is its own transaction and answers after its commit; the
//! database, not a node, decides what came first (the first body of an id,
//! the first acknowledgement, the closing, which node fires an escalation
//! step). The audit trail stays one hash chain across the nodes: every
//! append holds the chain's head row locked until its commit. Delivery marks
//! and queued audit records, which nobody waits for, are batched by a
//! background task (`marks.rs`). An unreachable server answers
//! `Unavailable` within seconds: no call waits on it longer than its
//! deadline (`deadline.rs`).
//!
//! This file holds the store itself (its pool, its connecting); each
//! concept's statements live in a file of their own.

mod audit;
mod deadline;
mod escalation;
mod inbox;
mod marks;
mod read_models;
mod sessions;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use self::deadline::{with_deadline, ACQUIRE_TIMEOUT, ANSWER_DEADLINE, MIGRATE_DEADLINE};
use self::marks::Marks;
use super::{
    Acknowledged, ClaimedStep, Completion, Escalation, Inserted, ReportRow, Source, Store,
    StoreError, Unacknowledged, UserNotification,
};
use crate::clock::Millis;
use crate::notification::{Notification, Recipient, StateFilter};
use crate::trail::{Anchor, Entry, Record};

/// Connections one node keeps; several nodes share the server's limit.
const MAX_CONNECTIONS: u32 = 10;

/// How long closing waits for connections still in use.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

pub struct PostgresStore {
    pool: PgPool,
    marks: Marks,
}

impl PostgresStore {
    /// Connects to the database at `url` and brings its schema up to date
    /// (migrations take an advisory lock: nodes may start together).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("herald");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| match e {
                sqlx::Error::PoolTimedOut => StoreError::Unavailable(format!(
                    "PostgreSQL accepted no connection within {ACQUIRE_TIMEOUT:?}"
                )),
                e => e.into(),
            })?;
        with_deadline(MIGRATE_DEADLINE, async {
            sqlx::migrate!("migrations/postgres")
                .run(&pool)
                .await
                .map_err(|e| StoreError::Unavailable(format!("migrations failed: {e}")))
        })
        .await?;
        let marks = Marks::start(pool.clone());
        Ok(Self { pool, marks })
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn insert_scheduled(
        &self,
        n: &Notification,
        users: &[String],
        steps: &[(u32, Millis)],
    ) -> Result<Inserted, StoreError> {
        PostgresStore::insert_scheduled(self, n, users, steps).await
    }

    fn record(&self, entry: Entry) {
        PostgresStore::record(self, entry);
    }

    async fn claim_steps(
        &self,
        now: Millis,
        owner: &str,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedStep>, StoreError> {
        PostgresStore::claim_steps(self, now, owner, until, limit).await
    }

    async fn complete_step(&self, c: &Completion) -> Result<bool, StoreError> {
        PostgresStore::complete_step(self, c).await
    }

    async fn next_step_due(&self) -> Result<Option<Millis>, StoreError> {
        PostgresStore::next_step_due(self).await
    }

    async fn next_claim_end(&self, now: Millis) -> Result<Option<Millis>, StoreError> {
        PostgresStore::next_claim_end(self, now).await
    }

    async fn open_roles(&self) -> Result<Vec<String>, StoreError> {
        PostgresStore::open_roles(self).await
    }

    async fn join_role(
        &self,
        user: &str,
        role: &str,
        only: Option<&str>,
        at: Millis,
    ) -> Result<u64, StoreError> {
        PostgresStore::join_role(self, user, role, only, at).await
    }

    async fn escalations(&self, ids: &[String]) -> Result<HashMap<String, Escalation>, StoreError> {
        PostgresStore::escalations(self, ids).await
    }

    async fn timeline(&self, id: &str) -> Result<Vec<Record>, StoreError> {
        PostgresStore::timeline(self, id).await
    }

    async fn audit_page(
        &self,
        after: i64,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        PostgresStore::audit_page(self, after, from, to, limit).await
    }

    async fn audit_anchor(&self) -> Result<Anchor, StoreError> {
        PostgresStore::audit_anchor(self).await
    }

    async fn report_rows(&self, from: Millis, to: Millis) -> Result<Vec<ReportRow>, StoreError> {
        PostgresStore::report_rows(self, from, to).await
    }

    fn mark_delivered(&self, id: &str, user: &str, at: Millis) {
        PostgresStore::mark_delivered(self, id, user, at);
    }

    async fn acknowledge_from(
        &self,
        id: &str,
        user: &str,
        at: Millis,
        source: &Source,
    ) -> Result<Option<Acknowledged>, StoreError> {
        PostgresStore::acknowledge_from(self, id, user, at, source).await
    }

    async fn notification(
        &self,
        id: &str,
    ) -> Result<Option<(Notification, Vec<Recipient>)>, StoreError> {
        PostgresStore::notification(self, id).await
    }

    async fn user_notification(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<UserNotification>, StoreError> {
        PostgresStore::user_notification(self, id, user).await
    }

    async fn list(
        &self,
        user: &str,
        filter: StateFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<UserNotification>, StoreError> {
        PostgresStore::list(self, user, filter, after, limit).await
    }

    async fn purge(&self, acknowledged: Millis, unacknowledged: Millis) -> Result<u64, StoreError> {
        PostgresStore::purge(self, acknowledged, unacknowledged).await
    }

    async fn unacknowledged(&self, limit: u32) -> Result<Unacknowledged, StoreError> {
        PostgresStore::unacknowledged(self, limit).await
    }

    async fn claim_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<String, StoreError> {
        PostgresStore::claim_session(self, session, user, at).await
    }

    async fn expire_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        PostgresStore::expire_session(self, session, user, at).await
    }

    async fn expired_sessions(&self, since: Millis) -> Result<Vec<String>, StoreError> {
        PostgresStore::expired_sessions(self, since).await
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        PostgresStore::pending_count(self).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            sqlx::query("UPDATE write_probe SET probes = probes + 1 WHERE id = 1")
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    async fn close(&self) {
        self.marks.close().await;
        if tokio::time::timeout(CLOSE_WAIT, self.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("closed the store with connections still in use");
        }
    }
}
