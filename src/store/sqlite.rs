//! The embedded store: SQLite in WAL mode with full fsync, in the data
//! directory. Reads use a small pool; every write goes through the
//! group-commit writer and returns only after its transaction is committed.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use tokio::sync::oneshot;

use super::pending::Pending;
use super::statements::Statements;
use super::writer::{self, Write};
use super::{Acknowledged, Inserted, Store, StoreError, UserNotification};
use crate::clock::Millis;
use crate::notification::{Notification, Recipient, StateFilter};

pub struct SqliteStore {
    pool: SqlitePool,
    writer: flume::Sender<Write>,
    /// Joined at `close`, so the connection is closed (and the WAL
    /// checkpointed) before the process exits.
    writer_thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
    pending: Arc<Pending>,
}

const SELECT_USER: &str =
    "SELECT r.seq, r.user_id, r.delivered_at, r.acknowledged_at, n.id, n.body, n.created_at \
     FROM recipients r JOIN notifications n ON n.id = r.notification_id";

fn recipient(row: &SqliteRow) -> Result<Recipient, sqlx::Error> {
    Ok(Recipient {
        user_id: row.try_get("user_id")?,
        delivered_at: row.try_get("delivered_at")?,
        acknowledged_at: row.try_get("acknowledged_at")?,
    })
}

pub(super) fn notification(row: &SqliteRow) -> Result<Notification, StoreError> {
    let id: String = row.try_get("id")?;
    let body: String = row.try_get("body")?;
    let created_at: i64 = row.try_get("created_at")?;
    Notification::from_stored(id, created_at, &body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn user_notification(row: &SqliteRow) -> Result<UserNotification, StoreError> {
    Ok(UserNotification {
        seq: row.try_get("seq")?,
        notification: notification(row)?,
        recipient: recipient(row)?,
    })
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
    /// Opens (creating if needed) `dir/herald.db` and runs migrations.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(e.to_string()))?;
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
        let (tx, rx) = flume::bounded(4096);
        let thread = writer::spawn(conn, rx, pending.clone())
            .map_err(|e| StoreError::Unavailable(format!("could not start the writer: {e}")))?;
        Ok(Self {
            pool,
            writer: tx,
            writer_thread: parking_lot::Mutex::new(Some(thread)),
            pending,
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
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(&self, n: &Notification, users: &[String]) -> Result<Inserted, StoreError> {
        let (n, users) = (n.clone(), users.to_vec());
        self.write(|reply| Write::Insert { n, users, reply }).await
    }

    fn mark_delivered(&self, id: &str, user: &str, at: Millis) {
        let write = Write::Delivered {
            id: id.to_string(),
            user: user.to_string(),
            at,
        };
        if self.writer.try_send(write).is_err() {
            // A full queue: the mark is informational, drop it rather than
            // pile up tasks (the notification stays unacknowledged either way).
            metrics::counter!("herald_store_marks_dropped_total").increment(1);
        }
    }

    async fn acknowledge(
        &self,
        id: &str,
        user: &str,
        at: Millis,
    ) -> Result<Option<Acknowledged>, StoreError> {
        let (id, user) = (id.to_string(), user.to_string());
        self.write(|reply| Write::Acknowledge {
            id,
            user,
            at,
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
        let n = notification(&row)?;
        let rows = sqlx::query(
            "SELECT user_id, delivered_at, acknowledged_at FROM recipients WHERE notification_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let recipients = rows.iter().map(recipient).collect::<Result<Vec<_>, _>>()?;
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
        row.as_ref().map(user_notification).transpose()
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
        let condition = match filter {
            StateFilter::All => "",
            StateFilter::Unacknowledged => "AND r.acknowledged_at IS NULL",
            StateFilter::Pending => "AND r.acknowledged_at IS NULL AND r.delivered_at IS NULL",
            StateFilter::Delivered => {
                "AND r.acknowledged_at IS NULL AND r.delivered_at IS NOT NULL"
            }
            StateFilter::Acknowledged => "AND r.acknowledged_at IS NOT NULL",
        };
        let sql = format!(
            "{SELECT_USER} WHERE r.user_id = ? AND r.seq > ? {condition} ORDER BY r.seq LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(user)
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_notification).collect()
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

    async fn expired_sessions(&self, since: Millis) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT session_id FROM expired_sessions WHERE expired_at >= ?")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("session_id"))
            .collect::<Result<_, _>>()?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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
    use super::*;
    use serde_json::json;

    async fn store() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (SqliteStore::open(dir.path()).await.unwrap(), dir)
    }

    fn note(id: &str, title: &str, at: Millis) -> Notification {
        Notification::from_body(json!({"id": id, "title": title}), || unreachable!(), at).unwrap()
    }

    #[tokio::test]
    async fn first_body_stands_and_recipients_are_idempotent() {
        let (s, _d) = store().await;
        let a = s
            .insert(&note("n1", "first", 1), &["u1".into()])
            .await
            .unwrap();
        assert_eq!(a.new_for, vec![true]);
        let b = s
            .insert(&note("n1", "second", 2), &["u1".into(), "u2".into()])
            .await
            .unwrap();
        assert_eq!(b.new_for, vec![false, true]);
        assert_eq!(b.notification.body["title"], "first");
        let (_, recipients) = s.notification("n1").await.unwrap().unwrap();
        assert_eq!(recipients.len(), 2);
    }

    #[tokio::test]
    async fn acknowledgement_is_per_recipient_and_first_time_stands() {
        let (s, _d) = store().await;
        s.insert(&note("n1", "t", 1), &["u1".into(), "u2".into()])
            .await
            .unwrap();
        let first = Acknowledged {
            at: 10,
            first: true,
        };
        assert_eq!(s.acknowledge("n1", "u1", 10).await.unwrap(), Some(first));
        // Again, even at the same millisecond: the first time stands, and
        // this one is not the first.
        let again = Acknowledged {
            at: 10,
            first: false,
        };
        assert_eq!(s.acknowledge("n1", "u1", 20).await.unwrap(), Some(again));
        assert_eq!(s.acknowledge("n1", "u1", 10).await.unwrap(), Some(again));
        assert_eq!(s.acknowledge("n1", "u3", 20).await.unwrap(), None);
        assert_eq!(s.acknowledge("nope", "u1", 20).await.unwrap(), None);
        let u2 = s.user_notification("n1", "u2").await.unwrap().unwrap();
        assert_eq!(u2.recipient.acknowledged_at, None);
    }

    #[tokio::test]
    async fn lists_filter_by_state_oldest_first_and_page() {
        let (s, _d) = store().await;
        for i in 0..5 {
            s.insert(&note(&format!("n{i}"), "t", i), &["u".into()])
                .await
                .unwrap();
        }
        s.mark_delivered("n1", "u", 100);
        s.acknowledge("n2", "u", 100).await.unwrap();
        let ids =
            |v: Vec<UserNotification>| v.into_iter().map(|x| x.notification.id).collect::<Vec<_>>();
        assert_eq!(
            ids(s.list("u", StateFilter::All, 0, 100).await.unwrap()),
            ["n0", "n1", "n2", "n3", "n4"]
        );
        assert_eq!(
            ids(s
                .list("u", StateFilter::Unacknowledged, 0, 100)
                .await
                .unwrap()),
            ["n0", "n1", "n3", "n4"]
        );
        assert_eq!(
            ids(s.list("u", StateFilter::Pending, 0, 100).await.unwrap()),
            ["n0", "n3", "n4"]
        );
        assert_eq!(
            ids(s.list("u", StateFilter::Delivered, 0, 100).await.unwrap()),
            ["n1"]
        );
        assert_eq!(
            ids(s
                .list("u", StateFilter::Acknowledged, 0, 100)
                .await
                .unwrap()),
            ["n2"]
        );
        let page = s.list("u", StateFilter::All, 0, 2).await.unwrap();
        let next = s.list("u", StateFilter::All, page[1].seq, 2).await.unwrap();
        assert_eq!(ids(next), ["n2", "n3"]);
    }

    #[tokio::test]
    async fn purge_respects_both_retentions() {
        let (s, _d) = store().await;
        s.insert(&note("old-unacked", "t", 1), &["u".into()])
            .await
            .unwrap();
        s.insert(&note("old-acked", "t", 1), &["u".into()])
            .await
            .unwrap();
        s.insert(&note("new", "t", 50), &["u".into()])
            .await
            .unwrap();
        s.acknowledge("old-acked", "u", 60).await.unwrap();
        assert_eq!(s.purge(10, 10).await.unwrap(), 1);
        assert!(s.notification("old-unacked").await.unwrap().is_none());
        assert!(s.notification("old-acked").await.unwrap().is_some());
        assert_eq!(s.purge(70, 10).await.unwrap(), 1);
        assert!(s.notification("new").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn concurrent_writes_are_committed_together_and_each_answered() {
        let (s, _d) = store().await;
        let s = std::sync::Arc::new(s);
        let writes: Vec<_> = (0..200)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.insert(&note(&format!("n{i}"), "t", i), &["u".into()])
                        .await
                })
            })
            .collect();
        for w in writes {
            assert_eq!(w.await.unwrap().unwrap().new_for, vec![true]);
        }
        let acks: Vec<_> = (0..200)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move { s.acknowledge(&format!("n{i}"), "u", 1000 + i).await })
            })
            .collect();
        for (i, a) in acks.into_iter().enumerate() {
            let a = a.await.unwrap().unwrap().unwrap();
            assert_eq!((a.at, a.first), (1000 + i as i64, true));
        }
        assert_eq!(
            s.list("u", StateFilter::Acknowledged, 0, 1000)
                .await
                .unwrap()
                .len(),
            200
        );
    }

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
    async fn the_stored_notification_is_the_one_answered() {
        let (s, _d) = store().await;
        // A float whose nearest double a fast parser can miss by one unit:
        // the answer (the notification as received) and every later read
        // (parsed from the stored text) must agree.
        let body = serde_json::from_str(r#"{"id":"lab-1","value":914.90173876894448}"#).unwrap();
        let n = Notification::from_body(body, || unreachable!(), 1).unwrap();
        let answered = s.insert(&n, &["u".into()]).await.unwrap().notification;
        let (stored, _) = s.notification("lab-1").await.unwrap().unwrap();
        assert_eq!(stored.body, answered.body);
        assert_eq!(
            serde_json::to_string(&stored).unwrap(),
            serde_json::to_string(&answered).unwrap()
        );
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
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SqliteStore::open(dir.path()).await.unwrap();
            s.insert(&note("n1", "t", 1), &["u".into()]).await.unwrap();
            s.expire_session("s1", "u", 5).await.unwrap();
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
    }
}
