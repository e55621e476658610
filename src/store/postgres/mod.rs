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

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use self::deadline::{with_deadline, ACQUIRE_TIMEOUT, ANSWER_DEADLINE, MIGRATE_DEADLINE};
use self::marks::Marks;
use super::{Store, StoreError};

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
