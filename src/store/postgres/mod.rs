//! The shared store: PostgreSQL, which several Herald nodes write at once.
//! Every write answers after its commit; new notifications and first
//! acknowledgements waiting at once share one statement and one commit
//! (group commit, `group.rs`), and a saturated store refuses calls at once
//! instead of holding them to their deadline. The
//! database, not a node, decides what came first (the first body of an id,
//! the first acknowledgement, the closing, which node fires an escalation
//! step). The audit trail stays one hash chain across the nodes without a
//! lock on the writes: each write commits its records unsealed, and one
//! sealer at a time, on any node, moves them into the chain (`seal.rs`).
//! Delivery marks and queued audit records, which nobody waits for, are
//! batched by a background task (`marks.rs`). An unreachable server answers
//! `Unavailable` within seconds: no call waits on it longer than its
//! deadline (`deadline.rs`).
//!
//! This file holds the store itself (its pool, its connecting); each
//! concept's statements live in a file of their own.

mod acknowledge;
mod audit;
mod chain;
mod deadline;
mod escalation;
mod files;
mod group;
mod inbox;
mod insert;
mod marks;
mod read_models;
mod room_grants;
mod seal;
mod sessions;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;
mod unsealed;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::Notify;

use self::acknowledge::Acks;
use self::deadline::{with_deadline, ACQUIRE_TIMEOUT, ANSWER_DEADLINE, MIGRATE_DEADLINE};
use self::group::Group;
use self::insert::Inserts;
use self::marks::Marks;
use self::seal::Sealer;
use super::{Store, StoreError};
use crate::clock::{SharedClock, SystemClock};

/// Connections one node keeps; several nodes share the server's limit
/// (PostgreSQL's default `max_connections` of 100 holds four nodes). Now
/// that writes do not wait for one another on the audit chain, they run
/// side by side: 20 carried about twice the notifications of 10 at 32 API
/// connections (bench/BENCHMARKS.md, "PostgreSQL: sealed audit trail").
const MAX_CONNECTIONS: u32 = 20;

/// Batches of new notifications, and of first acknowledgements, run at
/// once: a few, so that PostgreSQL's two cores and the network round trip
/// overlap, and few enough to leave the pool to reads, marks and sealing.
const INSERT_WORKERS: usize = 4;
const ACK_WORKERS: usize = 2;

/// Calls of one kind that may wait for a worker; past this the store is
/// saturated and answers `Unavailable` at once. About half a second of
/// the throughput measured at saturation.
const QUEUE: usize = 1024;

/// How long closing waits for connections still in use.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

pub struct PostgresStore {
    pool: PgPool,
    inserts: Group<Inserts>,
    acks: Group<Acks>,
    marks: Marks,
    /// Told after every commit that queued audit records.
    sealing: Arc<Notify>,
    /// None for a store that only inspects ([`PostgresStore::inspect`]).
    sealer: Option<Sealer>,
}

impl PostgresStore {
    /// Connects to the database at `url` as a node: brings its schema up
    /// to date (migrations take an advisory lock: nodes may start
    /// together) and takes part in sealing the audit trail.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, true).await
    }

    /// Connects as [`PostgresStore::connect`] does, but seals nothing: for
    /// `herald audit verify`, which reports the unsealed records as the
    /// nodes left them.
    pub async fn inspect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, false).await
    }

    async fn open(url: &str, sealing: bool) -> Result<Self, StoreError> {
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
        let wake = Arc::new(Notify::new());
        let marks = Marks::start(pool.clone(), wake.clone());
        let sealer = sealing.then(|| Sealer::start(pool.clone(), wake.clone()));
        // Queue waits are real time, whatever clock the notifications carry.
        let clock: SharedClock = Arc::new(SystemClock);
        let inserts = Inserts {
            pool: pool.clone(),
            sealing: wake.clone(),
        };
        let acks = Acks {
            pool: pool.clone(),
            sealing: wake.clone(),
        };
        Ok(Self {
            inserts: Group::start(
                "notifications",
                inserts,
                INSERT_WORKERS,
                QUEUE,
                clock.clone(),
            ),
            acks: Group::start("acknowledgements", acks, ACK_WORKERS, QUEUE, clock),
            pool,
            marks,
            sealing: wake,
            sealer,
        })
    }

    /// Tells this node's sealer that records were committed.
    fn committed_records(&self) {
        self.sealing.notify_one();
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
        // The marks' task writes its records first, so that the sealer's
        // last round seals them.
        self.marks.close().await;
        if let Some(sealer) = &self.sealer {
            sealer.close().await;
        }
        if tokio::time::timeout(CLOSE_WAIT, self.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("closed the store with connections still in use");
        }
    }
}
