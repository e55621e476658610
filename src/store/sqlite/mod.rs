//! The embedded store: SQLite in WAL mode with full fsync, in the data
//! directory. Reads use a small pool; every write goes through the
//! group-commit writer and returns only after its transaction is committed.
//!
//! This file opens the store and answers its calls; the writer thread
//! (`writer.rs`) commits batches with the statements it prepared once
//! (`statements.rs`), takes the delivery marks set aside when its queue was
//! full (`spilled.rs`), and keeps the count of who has something pending
//! (`pending.rs`). `backup.rs` copies the database while it runs.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::SqlitePool;
use tokio::sync::oneshot;

pub mod backup;
mod file_rows;
mod files;
mod pending;
mod spilled;
mod statements;
mod writer;

use self::pending::Pending;
use self::spilled::Spilled;
use self::statements::Statements;
use self::writer::Write;
use super::rows::{self, Columns, PENDING_COUNT, SELECT_USER};
use super::{
    Acknowledged, AuditTrail, ClaimedStep, Completion, Escalation, EscalationSteps, Inbox,
    Inserted, ReadModels, ReportRow, RoomGrants, SessionRecords, Source, Store, StoreError,
    Unacknowledged, Unsealed, UserNotification,
};
use crate::clock::Millis;
use crate::notification::{Notification, Recipient, StateFilter};
use crate::trail::{self, Anchor, Chain, Entry, Record, Stored};

/// The data directory's folder of shared files' bytes; uploads are written
/// in it first (the API's staging folder), so keeping one is a rename.
pub const FILES_DIR: &str = "files";

/// Writes that may wait for the writer before a caller waits for room
/// (a delivery mark is set aside instead).
const WRITER_QUEUE: usize = 4096;

pub struct SqliteStore {
    pool: SqlitePool,
    writer: flume::Sender<Write>,
    /// Joined at `close`, so the connection is closed (and the WAL
    /// checkpointed) before the process exits.
    writer_thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
    pending: Arc<Pending>,
    /// Delivery marks that found the writer's queue full.
    spilled: Arc<Spilled>,
    /// Where shared files' bytes are kept (`files.rs`).
    files_dir: std::path::PathBuf,
    /// Read-held by each keep of a file from its bytes' link to its row's
    /// commit; write-held by the sweep of unreferenced bytes (`files.rs`).
    keeping: tokio::sync::RwLock<()>,
}

/// The writer's own connection, with the pool's settings: WAL, a full
/// fsync at every commit, foreign keys, and a wait for a busy database.
fn writer_connection(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl SqliteStore {
    /// Queues a delivery mark, with the hand-over's audit record when it
    /// has one: one write for both. Nobody waits for it; a full queue
    /// sets it aside, never drops it (see `spilled.rs`).
    fn queue_delivered(&self, id: &str, user: &str, at: Millis, record: Option<Entry>) {
        let write = Write::Delivered {
            id: id.to_string(),
            user: user.to_string(),
            at,
            record,
        };
        match self.writer.try_send(write) {
            Ok(()) => {}
            Err(flume::TrySendError::Full(Write::Delivered {
                id,
                user,
                at,
                record,
            })) => {
                self.spilled.push(id, user, at, record);
                crate::observe::prometheus::marks_spilled();
                let _ = self.writer.try_send(Write::Spilled);
            }
            Err(_) => {
                tracing::warn!(
                    "a delivery mark came after the store was closed; it is not recorded"
                );
                crate::observe::prometheus::marks_dropped(1);
            }
        }
    }

    /// Opens (creating if needed) `dir/herald.db` and runs migrations.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_queue(dir, WRITER_QUEUE).await
    }

    /// As [`SqliteStore::open`], with room for `queue` writes waiting for
    /// the writer (a test fills a small one).
    async fn open_with_queue(dir: &Path, queue: usize) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let files_dir = dir.join(FILES_DIR);
        std::fs::create_dir_all(&files_dir).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let url = format!("sqlite://{}", dir.join("herald.db").display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let conn = writer_connection(&dir.join("herald.db"))?;
        // Fails here, at start, rather than on the first write.
        drop(Statements::prepare(&conn)?);
        let pending = Arc::new(Pending::default());
        pending.reload(&conn)?;
        let (tx, rx) = flume::bounded(queue);
        let spilled = Arc::new(Spilled::default());
        let set_aside = spilled.clone();
        let thread = writer::spawn(conn, rx, pending.clone(), move || set_aside.take())
            .map_err(|e| StoreError::Unavailable(format!("could not start the writer: {e}")))?;
        Ok(Self {
            pool,
            writer: tx,
            writer_thread: parking_lot::Mutex::new(Some(thread)),
            pending,
            spilled,
            files_dir,
            keeping: tokio::sync::RwLock::new(()),
        })
    }

    /// Queues a write and waits for its committed result.
    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Write,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("the store is closed".into());
        self.writer
            .send_async(make(reply))
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// The `audit` rows with `seq > after` (and `from <= at < to` in
    /// `period`), in chain order, at most `limit`.
    async fn audit_rows(
        &self,
        after: i64,
        period: Option<(Millis, Millis)>,
        limit: u32,
    ) -> Result<Vec<SqliteRow>, StoreError> {
        let select = rows::SELECT_AUDIT;
        let rows = match period {
            // The period's records lie in the range of records of its hours
            // (`audit_hours`): read that range in order, from the later of
            // its start and `after`, keeping those of the period. A period
            // with no hour reads nothing (its bounds are NULL).
            Some((from, to)) => {
                let sql = format!(
                    "{select} WHERE seq > max(?1, (SELECT min(first_seq) - 1 FROM audit_hours \
                       WHERE hour BETWEEN ?4 AND ?5)) \
                     AND seq <= (SELECT max(last_seq) FROM audit_hours WHERE hour BETWEEN ?4 AND ?5) \
                     AND at >= ?2 AND at < ?3 ORDER BY seq LIMIT ?6"
                );
                sqlx::query(&sql)
                    .bind(after)
                    .bind(from)
                    .bind(to)
                    .bind(statements::audit_hour(from))
                    .bind(statements::audit_hour(to))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{select} WHERE seq > ? ORDER BY seq LIMIT ?"))
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }
}

#[async_trait]
impl Inbox for SqliteStore {
    async fn insert_scheduled(
        &self,
        n: &Arc<Notification>,
        users: &[String],
        steps: &[(u32, Millis)],
    ) -> Result<Inserted, StoreError> {
        let (n, users, steps) = (n.clone(), users.to_vec(), steps.to_vec());
        self.write(|reply| Write::Insert {
            n,
            users,
            steps,
            reply,
        })
        .await
    }

    fn mark_delivered(&self, id: &str, user: &str, at: Millis) {
        self.queue_delivered(id, user, at, None);
    }

    async fn acknowledge_from(
        &self,
        id: &str,
        user: &str,
        at: Millis,
        source: &Source,
    ) -> Result<Option<Acknowledged>, StoreError> {
        let (id, user, source) = (id.to_string(), user.to_string(), source.clone());
        self.write(|reply| Write::Acknowledge {
            id,
            user,
            at,
            source,
            reply,
        })
        .await
    }

    async fn notification(
        &self,
        id: &str,
    ) -> Result<Option<(Notification, Vec<Recipient>)>, StoreError> {
        let Some(row) = sqlx::query("SELECT id, body, created_at FROM notifications WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let n = rows::notification(&row)?;
        let recipients = sqlx::query(
            "SELECT user_id, delivered_at, acknowledged_at, escalation_level FROM recipients \
             WHERE notification_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let recipients = recipients
            .iter()
            .map(rows::recipient)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((n, recipients)))
    }

    async fn user_notification(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<UserNotification>, StoreError> {
        let row = sqlx::query(&format!(
            "{SELECT_USER} WHERE r.notification_id = ? AND r.user_id = ?"
        ))
        .bind(id)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::user_notification).transpose()
    }

    async fn list(
        &self,
        user: &str,
        filter: StateFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<UserNotification>, StoreError> {
        if matches!(
            filter,
            StateFilter::Unacknowledged | StateFilter::Pending | StateFilter::Delivered
        ) && !self.pending.has(user)
        {
            return Ok(Vec::new());
        }
        let condition = rows::state_condition(filter);
        let sql = format!(
            "{SELECT_USER} WHERE r.user_id = ? AND r.seq > ? {condition} ORDER BY r.seq LIMIT ?"
        );
        let listed = sqlx::query(&sql)
            .bind(user)
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        listed.iter().map(rows::user_notification).collect()
    }

    async fn purge(
        &self,
        acknowledged_before: Millis,
        unacknowledged_before: Millis,
    ) -> Result<u64, StoreError> {
        self.write(|reply| Write::Purge {
            acknowledged_before,
            unacknowledged_before,
            reply,
        })
        .await
    }
}

#[async_trait]
impl EscalationSteps for SqliteStore {
    async fn claim_steps(
        &self,
        now: Millis,
        owner: &str,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedStep>, StoreError> {
        let owner = owner.to_string();
        self.write(|reply| Write::ClaimSteps {
            now,
            owner,
            until,
            limit,
            reply,
        })
        .await
    }

    async fn complete_step(&self, c: &Completion) -> Result<bool, StoreError> {
        let c = c.clone();
        self.write(|reply| Write::CompleteStep { c, reply }).await
    }

    async fn next_step_due(&self) -> Result<Option<Millis>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT min(due_at) FROM escalation_steps")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn next_claim_end(&self, now: Millis) -> Result<Option<Millis>, StoreError> {
        Ok(sqlx::query_scalar(rows::NEXT_CLAIM_END_SQLITE)
            .bind(now)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn open_roles(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(rows::OPEN_ROLES)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn join_role(
        &self,
        user: &str,
        role: &str,
        only: Option<&str>,
        at: Millis,
    ) -> Result<u64, StoreError> {
        let (user, role, only) = (user.to_string(), role.to_string(), only.map(str::to_string));
        self.write(|reply| Write::JoinRole {
            user,
            role,
            only,
            at,
            reply,
        })
        .await
    }
}

#[async_trait]
impl AuditTrail for SqliteStore {
    fn record(&self, entry: Entry) {
        match self.writer.try_send(Write::Record { entry }) {
            Ok(()) => {}
            Err(flume::TrySendError::Full(Write::Record { entry })) => {
                self.spilled.push_record(entry);
                crate::observe::prometheus::marks_spilled();
                let _ = self.writer.try_send(Write::Spilled);
            }
            Err(_) => {
                tracing::warn!(
                    "an audit record came after the store was closed; it is not recorded"
                );
                crate::observe::prometheus::marks_dropped(1);
            }
        }
    }

    async fn timeline(&self, id: &str) -> Result<Vec<Entry>, StoreError> {
        let found = sqlx::query(&format!(
            "{} WHERE notification_id = ? ORDER BY seq",
            rows::SELECT_AUDIT
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::audit_entry).collect()
    }

    async fn audit_page(
        &self,
        after: i64,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        let found = self.audit_rows(after, Some((from, to)), limit).await?;
        found.iter().map(rows::audit_record).collect()
    }

    async fn audit_chain(&self, after: i64, limit: u32) -> Result<Vec<Stored>, StoreError> {
        // Every record, whatever its time says: a time changed to text
        // must not hide its record from the walk.
        let found = self.audit_rows(after, None, limit).await?;
        found.iter().map(rows::chain_record).collect()
    }

    async fn audit_anchor(&self) -> Result<Anchor, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_anchor WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Anchor {
                seq: r.integer("seq")?,
                hash: r.text("hash")?,
            }),
            None => Ok(Anchor::default()),
        }
    }

    /// The newest record, else the anchor (retention removed every record).
    async fn audit_head(&self) -> Result<Chain, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Chain {
                seq: r.integer("seq")?,
                hash: r.text("hash")?,
            }),
            None => self.audit_anchor().await.map(Chain::from),
        }
    }

    /// The writer appends each record to the chain in the transaction that
    /// commits it: nothing is ever left to seal.
    async fn seal_audit(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn unsealed(&self) -> Result<Unsealed, StoreError> {
        Ok(Unsealed::default())
    }
}

#[async_trait]
impl SessionRecords for SqliteStore {
    async fn expire_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        let (session, user) = (session.to_string(), user.to_string());
        self.write(|reply| Write::ExpireSession {
            session,
            user,
            at,
            reply,
        })
        .await
    }

    async fn claim_sessions(
        &self,
        claims: &[(String, String)],
        at: Millis,
    ) -> Result<Vec<String>, StoreError> {
        let claims = claims.to_vec();
        self.write(|reply| Write::ClaimSessions { claims, at, reply })
            .await
    }

    async fn expired_sessions(&self, since: Millis) -> Result<Vec<String>, StoreError> {
        let expired = sqlx::query("SELECT session_id FROM expired_sessions WHERE expired_at >= ?")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        Ok(expired
            .iter()
            .map(|r| r.text("session_id"))
            .collect::<Result<_, _>>()?)
    }
}

#[async_trait]
impl RoomGrants for SqliteStore {
    async fn grant_room(&self, room: &str, user: &str, at: Millis) -> Result<bool, StoreError> {
        let (room, user) = (room.to_string(), user.to_string());
        self.write(|reply| Write::RoomGrant {
            room,
            user,
            at,
            revoke: false,
            reply,
        })
        .await
    }

    async fn revoke_room(&self, room: &str, user: &str) -> Result<bool, StoreError> {
        let (room, user) = (room.to_string(), user.to_string());
        self.write(|reply| Write::RoomGrant {
            room,
            user,
            at: 0,
            revoke: true,
            reply,
        })
        .await
    }

    async fn room_granted(&self, room: &str, user: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM room_grants WHERE room = ? AND user_id = ?")
            .bind(room)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl ReadModels for SqliteStore {
    async fn escalations(&self, ids: &[String]) -> Result<HashMap<String, Escalation>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        // The ids travel as one JSON array: one statement whatever their number.
        let ids = serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let found = sqlx::query(&rows::escalations_query(
            "n.id IN (SELECT value FROM json_each(?1))",
            "audit",
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::escalation).collect()
    }

    async fn report_rows(&self, from: Millis, to: Millis) -> Result<Vec<ReportRow>, StoreError> {
        let found = sqlx::query(rows::REPORT_ROWS_SQLITE)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::report_row).collect()
    }

    async fn unacknowledged(&self, limit: u32) -> Result<Unacknowledged, StoreError> {
        let oldest = sqlx::query(&rows::unacknowledged_query("?"))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let total = sqlx::query(rows::COUNT_UNACKNOWLEDGED)
            .fetch_one(&self.pool)
            .await?;
        rows::unacknowledged(&total, &oldest)
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(PENDING_COUNT)
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn delivered(&self, id: &str, user: &str, at: Millis, sockets: &[String]) {
        let record = trail::record::delivered(id, user, at, sockets);
        self.queue_delivered(id, user, at, Some(record));
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        self.write(|reply| Write::Probe { reply }).await
    }

    async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.writer.send_async(Write::Close { reply }).await.is_ok() {
            let _ = done.await;
        }
        let thread = self.writer_thread.lock().take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    //! SQLite's own tests; the contract both engines keep is tested in
    //! `conformance/`.

    use super::*;
    use crate::store::conformance::{note, sqlite as store};

    async fn unacked(s: &SqliteStore) -> usize {
        s.list("u", StateFilter::Unacknowledged, 0, 100)
            .await
            .unwrap()
            .len()
    }

    #[tokio::test]
    async fn the_pending_index_follows_inserts_acks_and_purges() {
        let (s, _d) = store().await;
        assert_eq!(unacked(&s).await, 0);
        s.insert(&note("a", "t", 1), &["u".into()]).await.unwrap();
        s.insert(&note("b", "t", 50), &["u".into()]).await.unwrap();
        s.insert(&note("a", "t", 60), &["u".into()]).await.unwrap();
        assert_eq!(unacked(&s).await, 2, "a repeated id is not counted twice");
        s.acknowledge("a", "u", 70).await.unwrap();
        s.acknowledge("a", "u", 80).await.unwrap();
        assert_eq!(
            unacked(&s).await,
            1,
            "a second acknowledgement is not counted twice"
        );
        s.purge(0, 60).await.unwrap();
        assert_eq!(unacked(&s).await, 0, "purged: b was older than 60");
        s.insert(&note("c", "t", 90), &["u".into()]).await.unwrap();
        assert_eq!(unacked(&s).await, 1);
    }

    #[tokio::test]
    async fn a_failing_write_is_undone_and_fails_alone() {
        let (s, d) = store().await;
        // A trigger refuses one user's recipient row, after the
        // notification's own row is written in the same transaction.
        rusqlite::Connection::open(d.path().join("herald.db"))
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON recipients WHEN NEW.user_id = 'bad' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        let s = std::sync::Arc::new(s);
        let writes: Vec<_> = ["u1", "bad", "u3", "bad", "u5"]
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let (s, user) = (s.clone(), user.to_string());
                tokio::spawn(
                    async move { s.insert(&note(&format!("n{i}"), "t", 1), &[user]).await },
                )
            })
            .collect();
        let results: Vec<bool> = futures::future::join_all(writes)
            .await
            .into_iter()
            .map(|r| r.unwrap().is_ok())
            .collect();
        assert_eq!(results, vec![true, false, true, false, true]);
        for (i, stored) in [(0, true), (1, false), (2, true), (3, false), (4, true)] {
            assert_eq!(
                s.notification(&format!("n{i}")).await.unwrap().is_some(),
                stored,
                "n{i}: a refused insert leaves no notification row"
            );
        }
        // The writer is in a clean state: later writes commit.
        s.insert(&note("later", "t", 2), &["u1".into()])
            .await
            .unwrap();
        assert_eq!(
            s.acknowledge("later", "u1", 3).await.unwrap().map(|a| a.at),
            Some(3)
        );
        assert_eq!(
            s.list("u1", StateFilter::Unacknowledged, 0, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn delivery_marks_that_find_the_queue_full_are_kept_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open_with_queue(dir.path(), 2).await.unwrap();
        let users: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        s.insert(&note("n", "t", 1), &users).await.unwrap();
        // Another connection holds the write lock: the writer stalls on its
        // first batch and the queue of two is full at once.
        let blocker = rusqlite::Connection::open(dir.path().join("herald.db")).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        for u in &users {
            s.mark_delivered("n", u, 5);
        }
        blocker.execute_batch("COMMIT").unwrap();
        // An awaited write commits after every mark made before it.
        s.acknowledge("n", "u0", 6).await.unwrap();
        let (_, recipients) = s.notification("n").await.unwrap().unwrap();
        let unmarked: Vec<_> = recipients
            .iter()
            .filter(|r| r.delivered_at.is_none())
            .map(|r| r.user_id.clone())
            .collect();
        assert!(unmarked.is_empty(), "marks lost: {unmarked:?}");
        s.close().await;
    }

    #[tokio::test]
    async fn a_transaction_s_records_go_in_few_statements_and_verify() {
        let (s, d) = store().await;
        s.insert(&note("n", "t", 1), &["u".into()]).await.unwrap();
        // The writer's statements on a second connection: one transaction
        // of 45 records, inserted as 32 + 8 + 4 + 1 rows.
        let conn = writer_connection(&d.path().join("herald.db")).unwrap();
        let mut w = Statements::prepare(&conn).unwrap();
        w.begin().unwrap();
        for i in 0..45 {
            w.append(
                Entry::new(crate::trail::Kind::Delivered, 10 + i)
                    .notification("n")
                    .user("u")
                    .socket(&format!("s{i}")),
            );
        }
        w.commit().unwrap();
        drop(w);
        let all = s.audit_page(0, 0, Millis::MAX, 1000).await.unwrap();
        assert_eq!(all.len(), 46);
        assert_eq!(all[45].entry.socket_id.as_deref(), Some("s44"));
        let anchor = s.audit_anchor().await.unwrap();
        assert_eq!(
            crate::trail::verify(&mut crate::trail::Chain::from(anchor), &all),
            Ok(46)
        );
        // A rolled-back transaction leaves neither rows nor a moved head.
        let mut w = Statements::prepare(&conn).unwrap();
        w.begin().unwrap();
        w.append(Entry::new(crate::trail::Kind::Delivered, 99));
        w.rollback();
        w.begin().unwrap();
        w.append(Entry::new(crate::trail::Kind::Delivered, 100));
        w.commit().unwrap();
        let all = s.audit_page(0, 0, Millis::MAX, 1000).await.unwrap();
        assert_eq!(all.len(), 47);
        let anchor = s.audit_anchor().await.unwrap();
        assert_eq!(
            crate::trail::verify(&mut crate::trail::Chain::from(anchor), &all),
            Ok(47)
        );
    }

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SqliteStore::open(dir.path()).await.unwrap();
            s.insert(&note("n1", "t", 1), &["u".into()]).await.unwrap();
            s.expire_session("s1", "u", 5).await.unwrap();
            s.claim_session("owned", "u", 5).await.unwrap();
            s.close().await;
        }
        let s = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(
            s.list("u", StateFilter::Unacknowledged, 0, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(s.expired_sessions(0).await.unwrap(), vec!["s1".to_string()]);
        assert!(s.expired_sessions(6).await.unwrap().is_empty());
        assert_eq!(s.claim_session("owned", "other", 7).await.unwrap(), "u");
    }

    #[tokio::test]
    async fn a_closing_after_a_restart_ends_the_steps_and_names_the_roles_stored_before_it() {
        use crate::store::conformance::{completion, levels};
        use crate::store::StepOutcome;
        // Without an escalation policy a closing skips the steps and roles
        // statements; the writer of a restarted store learns from the
        // tables that there are some.
        let (s, d) = store().await;
        let steps = [(1, 100), (2, 200)];
        s.insert_scheduled(&Arc::new(note("n", "t", 0)), &["u".into()], &steps)
            .await
            .unwrap();
        assert_eq!(levels(&s, 100, "a").await, [(1, false, 0)]);
        let mut to_role = completion("n", 1, "a", 101, StepOutcome::Done);
        to_role.add_role = Some("attending".into());
        assert!(s.complete_step(&to_role).await.unwrap());
        s.close().await;

        let s = SqliteStore::open(d.path()).await.unwrap();
        assert_eq!(s.next_step_due().await.unwrap(), Some(200));
        let closed = s.acknowledge("n", "u", 150).await.unwrap().unwrap();
        assert_eq!(closed.closed.unwrap().roles, ["attending"]);
        assert_eq!(s.next_step_due().await.unwrap(), None);
        assert!(s.open_roles().await.unwrap().is_empty());
        s.close().await;
    }
}
