//! Sealing the audit trail: moving committed unsealed records into the one
//! hash chain all nodes share. Writes queue their records unsealed, in
//! their own transactions (`audit.rs`), and never wait for one another;
//! one sealer at a time across the nodes (the holder of `SEAL_LOCK`)
//! gives a batch of them, oldest first, their places and hashes, and
//! deletes them from the unsealed table in the same transaction. Every node
//! runs a sealer: woken by its own commits, and on a timer, so that the
//! records a stopped or killed node committed are sealed by the others.
//! The chain's order is the sealing order, which keeps the order in which
//! each node committed (a record committed after another one was read is
//! sealed after it).

use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgPool, Row};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::chain::{append_sealed, SEAL_LOCK};
use super::deadline::{with_deadline, ANSWER_DEADLINE};
use super::unsealed::entry_columns;
use crate::store::rows::{self, Columns};
use crate::store::StoreError;
use crate::trail::Entry;

/// Most records one sealing transaction moves; a longer backlog takes
/// several, one after the other.
const BATCH: i64 = 1000;

/// How often a node looks for records to seal without having committed
/// any itself: the longest a stopped node's records wait, while another
/// node runs.
pub const SEAL_INTERVAL: Duration = Duration::from_secs(1);

/// When another node is sealing, how long this one waits before looking
/// again (that sealing may have started before this node's last commit),
/// and how many times it looks before leaving it to the timer.
const BUSY_RETRY: Duration = Duration::from_millis(25);
const BUSY_TRIES: u32 = 8;

/// Whether to wait for the sealing lock or leave it to its holder.
#[derive(Clone, Copy)]
enum Lock {
    Try,
    Wait,
}

enum Batch {
    /// Another node holds the sealing lock.
    Busy,
    Sealed {
        count: u64,
        /// As many as a batch holds: more may be waiting.
        full: bool,
    },
}

/// Seals up to [`BATCH`] of the oldest committed unsealed records, in one
/// transaction: all of them or none. A record that cannot be read back as
/// a node writes it (hostile or corrupt data) is not sealed, nor is any
/// after it: those before it are, and the error names it.
async fn seal_batch(pool: &PgPool, lock: Lock) -> Result<Batch, StoreError> {
    let mut tx = pool.begin().await?;
    let held = match lock {
        Lock::Try => {
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(SEAL_LOCK)
                .fetch_one(&mut *tx)
                .await?
        }
        Lock::Wait => {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(SEAL_LOCK)
                .execute(&mut *tx)
                .await?;
            true
        }
    };
    if !held {
        tx.rollback().await?;
        return Ok(Batch::Busy);
    }
    let found = sqlx::query(concat!(
        "SELECT id, ",
        entry_columns!(),
        " FROM audit_unsealed ORDER BY id LIMIT $1"
    ))
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let full = found.len() as i64 == BATCH;
    let mut ids = Vec::with_capacity(found.len());
    let mut entries = Vec::with_capacity(found.len());
    let mut corrupt = None;
    for row in &found {
        let id: i64 = row.try_get("id")?;
        match unsealed_entry(row) {
            Ok(entry) => {
                ids.push(id);
                entries.push(entry);
            }
            Err(e) => {
                corrupt = Some(format!("unsealed audit record {id}: {e}"));
                break;
            }
        }
    }
    let count = ids.len() as u64;
    if count > 0 {
        let deleted = sqlx::query("DELETE FROM audit_unsealed WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted != count {
            // Only the lock's holder deletes: something else changed them.
            tx.rollback().await?;
            return Err(StoreError::Corrupt(format!(
                "{count} unsealed audit records read, {deleted} deleted"
            )));
        }
        append_sealed(&mut tx, entries).await?;
    }
    tx.commit().await?;
    match corrupt {
        Some(why) => Err(StoreError::Corrupt(why)),
        None => Ok(Batch::Sealed {
            count,
            full: full && count > 0,
        }),
    }
}

/// An unsealed row as the entry a node wrote: what the chain cannot hold
/// faithfully (an unknown kind, a detail that is not JSON, a level out of
/// range) is corrupt, never sealed altered.
fn unsealed_entry(row: &sqlx::postgres::PgRow) -> Result<Entry, StoreError> {
    let entry = rows::audit_entry(row)?;
    if let Some(level) = row.maybe_integer("level")? {
        if u32::try_from(level).is_err() {
            return Err(StoreError::Corrupt(format!("level {level} out of range")));
        }
    }
    Ok(entry)
}

/// Seals every record committed so far, waiting for a sealer at work on
/// another node; answers how many this call sealed.
pub(super) async fn seal_all_waiting(pool: &PgPool) -> Result<u64, StoreError> {
    let mut sealed = 0;
    loop {
        match with_deadline(ANSWER_DEADLINE, seal_batch(pool, Lock::Wait)).await? {
            Batch::Sealed { count, full } => {
                sealed += count;
                if !full {
                    return Ok(sealed);
                }
            }
            Batch::Busy => unreachable!("a waiting lock is always held"),
        }
    }
}

/// Seals what is committed unless another node is at it (then looks
/// again shortly, in case that sealing began before this node's commits).
async fn seal_pending(pool: &PgPool) -> Result<u64, StoreError> {
    let (mut sealed, mut busy) = (0, 0);
    loop {
        match with_deadline(ANSWER_DEADLINE, seal_batch(pool, Lock::Try)).await? {
            Batch::Busy if busy < BUSY_TRIES => {
                busy += 1;
                tokio::time::sleep(BUSY_RETRY).await;
            }
            Batch::Busy => return Ok(sealed),
            Batch::Sealed { count, full } => {
                sealed += count;
                if !full {
                    return Ok(sealed);
                }
            }
        }
    }
}

/// A node's sealer: the task, and how to wake and stop it.
pub struct Sealer {
    stop: watch::Sender<bool>,
    task: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Sealer {
    /// Starts sealing through `pool` whenever `wake` is notified (after
    /// this node commits records) and every [`SEAL_INTERVAL`].
    pub fn start(pool: PgPool, wake: Arc<Notify>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(pool, wake, stopped));
        Self {
            stop,
            task: parking_lot::Mutex::new(Some(task)),
        }
    }

    /// Seals once more (what this node committed last), then stops.
    pub async fn close(&self) {
        self.stop.send_replace(true);
        let task = self.task.lock().take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the audit sealer failed");
            }
        }
    }
}

async fn run(pool: PgPool, wake: Arc<Notify>, mut stopped: watch::Receiver<bool>) {
    let mut timer = tokio::time::interval(SEAL_INTERVAL);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let last = tokio::select! {
            _ = wake.notified() => false,
            _ = timer.tick() => false,
            _ = stopped.changed() => true,
        };
        let sealed = seal_pending(&pool).await;
        report(&sealed, &mut failing);
        if last {
            return;
        }
    }
}

/// Logs a failure once, not once a second while it lasts, and its end.
fn report(sealed: &Result<u64, StoreError>, failing: &mut bool) {
    match sealed {
        Ok(_) if *failing => {
            *failing = false;
            tracing::info!("audit sealing resumed");
        }
        Ok(_) => {}
        Err(e) if !*failing => {
            *failing = true;
            match e {
                StoreError::Corrupt(_) => tracing::error!(
                    error = %e,
                    "audit sealing stopped at a record it cannot read; the records after it stay unsealed"
                ),
                StoreError::Unavailable(_) => tracing::warn!(
                    error = %e,
                    "audit sealing failed; the records stay unsealed and are sealed once it succeeds"
                ),
            }
        }
        Err(e) => tracing::debug!(error = %e, "audit sealing still failing"),
    }
}
