//! Group commit for the SQLite store: one task owns the write connection and
//! commits every write waiting in its queue in one transaction (one fsync),
//! answering each caller only after that commit. Latency at low load is one
//! commit; throughput under load grows with the batch instead of queueing
//! on SQLite's write lock.

use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use super::pending::Pending;
use super::{Inserted, StoreError};
use crate::clock::Millis;
use crate::notification::Notification;

/// Most writes committed together.
const MAX_BATCH: usize = 512;

/// One write and the caller waiting for its committed result.
pub enum Write {
    Insert {
        n: Notification,
        users: Vec<String>,
        reply: oneshot::Sender<Result<Inserted, StoreError>>,
    },
    /// Nobody waits for this one; it joins the next commit.
    Delivered {
        id: String,
        user: String,
        at: Millis,
    },
    Acknowledge {
        id: String,
        user: String,
        at: Millis,
        reply: oneshot::Sender<Result<Option<Millis>, StoreError>>,
    },
    ExpireSession {
        session: String,
        user: String,
        at: Millis,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Purge {
        acknowledged_before: Millis,
        unacknowledged_before: Millis,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// Finish what is queued, then stop.
    Close { reply: oneshot::Sender<()> },
}

/// A write's result, held until its transaction commits.
enum Done {
    Inserted(Inserted),
    Unit,
    /// The (first) acknowledgement time, and whether this write was the first.
    Acknowledged(Option<Millis>, bool),
    Count(u64),
}

impl Write {
    fn reply(self, result: Result<Done, StoreError>) {
        match (self, result) {
            (Write::Insert { reply, .. }, Ok(Done::Inserted(i))) => drop(reply.send(Ok(i))),
            (Write::Insert { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::Delivered { .. }, Ok(_)) => {}
            (Write::Delivered { .. }, Err(e)) => {
                tracing::warn!(error = %e, "could not record a delivery")
            }
            (Write::ExpireSession { reply, .. }, r) => drop(reply.send(r.map(|_| ()))),
            (Write::Acknowledge { reply, .. }, Ok(Done::Acknowledged(a, _))) => {
                drop(reply.send(Ok(a)))
            }
            (Write::Acknowledge { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::Purge { reply, .. }, Ok(Done::Count(n))) => drop(reply.send(Ok(n))),
            (Write::Purge { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::Close { reply }, _) => drop(reply.send(())),
            (_, Ok(_)) => unreachable!("each write produces its own kind of result"),
        }
    }
}

async fn insert(
    c: &mut SqliteConnection,
    n: &Notification,
    users: &[String],
) -> Result<Inserted, StoreError> {
    sqlx::query("INSERT OR IGNORE INTO notifications (id, body, created_at) VALUES (?, ?, ?)")
        .bind(&n.id)
        .bind(n.to_json())
        .bind(n.created_at)
        .execute(&mut *c)
        .await?;
    let row = sqlx::query("SELECT id, body, created_at FROM notifications WHERE id = ?")
        .bind(&n.id)
        .fetch_one(&mut *c)
        .await?;
    let notification = super::sqlite::notification(&row)?;
    let mut new_for = Vec::with_capacity(users.len());
    for user in users {
        let done = sqlx::query("INSERT OR IGNORE INTO recipients (notification_id, user_id, created_at) VALUES (?, ?, ?)")
            .bind(&n.id)
            .bind(user)
            .bind(n.created_at)
            .execute(&mut *c)
            .await?;
        new_for.push(done.rows_affected() == 1);
    }
    Ok(Inserted {
        notification,
        new_for,
    })
}

async fn apply(c: &mut SqliteConnection, w: &Write) -> Result<Done, StoreError> {
    Ok(match w {
        Write::Insert { n, users, .. } => Done::Inserted(insert(c, n, users).await?),
        Write::Delivered { id, user, at, .. } => {
            sqlx::query("UPDATE recipients SET delivered_at = ? WHERE notification_id = ? AND user_id = ? AND delivered_at IS NULL")
                .bind(at)
                .bind(id)
                .bind(user)
                .execute(&mut *c)
                .await?;
            Done::Unit
        }
        Write::Acknowledge { id, user, at, .. } => {
            let first = sqlx::query(
                "UPDATE recipients SET acknowledged_at = ? \
                 WHERE notification_id = ? AND user_id = ? AND acknowledged_at IS NULL",
            )
            .bind(at)
            .bind(id)
            .bind(user)
            .execute(&mut *c)
            .await?
            .rows_affected()
                == 1;
            let row = sqlx::query(
                "SELECT acknowledged_at FROM recipients WHERE notification_id = ? AND user_id = ?",
            )
            .bind(id)
            .bind(user)
            .fetch_optional(&mut *c)
            .await?;
            let at = match row {
                Some(r) => r.try_get::<Option<i64>, _>("acknowledged_at")?,
                None => None,
            };
            Done::Acknowledged(at, first)
        }
        Write::ExpireSession {
            session, user, at, ..
        } => {
            sqlx::query("INSERT OR IGNORE INTO expired_sessions (session_id, user_id, expired_at) VALUES (?, ?, ?)")
                .bind(session)
                .bind(user)
                .bind(at)
                .execute(&mut *c)
                .await?;
            Done::Unit
        }
        Write::Purge {
            acknowledged_before,
            unacknowledged_before,
            ..
        } => {
            let gone = sqlx::query(
                "DELETE FROM recipients WHERE (acknowledged_at IS NOT NULL AND acknowledged_at < ?) \
                 OR (acknowledged_at IS NULL AND created_at < ?)",
            )
            .bind(acknowledged_before)
            .bind(unacknowledged_before)
            .execute(&mut *c)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM notifications WHERE NOT EXISTS (SELECT 1 FROM recipients r WHERE r.notification_id = notifications.id)")
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM expired_sessions WHERE expired_at < ?")
                .bind(unacknowledged_before)
                .execute(&mut *c)
                .await?;
            Done::Count(gone)
        }
        Write::Close { .. } => Done::Unit,
    })
}

/// Keeps the pending counts in step with a committed write.
fn account(w: &Write, d: &Done, pending: &Pending) {
    match (w, d) {
        (Write::Insert { users, .. }, Done::Inserted(i)) => {
            for (user, new) in users.iter().zip(&i.new_for) {
                if *new {
                    pending.add(user);
                }
            }
        }
        (Write::Acknowledge { user, .. }, Done::Acknowledged(_, true)) => {
            pending.acknowledged(user)
        }
        _ => {}
    }
}

async fn reload(conn: &mut SqliteConnection, pending: &Pending) {
    if let Err(e) = pending.reload(conn).await {
        tracing::error!(error = %e, "could not recount pending notifications; every catch-up queries the store until a recount succeeds");
        pending.mark_unknown();
    }
}

/// Applies `batch` in one transaction; on failure, each write alone, so one
/// bad write cannot fail the others.
async fn commit(conn: &mut SqliteConnection, batch: Vec<Write>, pending: &Pending) {
    let together: Result<Vec<Done>, StoreError> = async {
        let mut tx = conn.begin().await?;
        let mut done = Vec::with_capacity(batch.len());
        for w in &batch {
            done.push(apply(&mut tx, w).await?);
        }
        tx.commit().await?;
        Ok(done)
    }
    .await;
    match together {
        Ok(done) => {
            metrics::histogram!("herald_store_batch_size").record(batch.len() as f64);
            let purged = batch.iter().any(|w| matches!(w, Write::Purge { .. }));
            for (w, d) in batch.iter().zip(&done) {
                account(w, d, pending);
            }
            if purged {
                reload(conn, pending).await;
            }
            for (w, d) in batch.into_iter().zip(done) {
                w.reply(Ok(d));
            }
        }
        Err(_) if batch.len() > 1 => {
            for w in batch {
                let alone: Result<Done, StoreError> = async {
                    let mut tx = conn.begin().await?;
                    let d = apply(&mut tx, &w).await?;
                    tx.commit().await?;
                    Ok(d)
                }
                .await;
                if let Ok(d) = &alone {
                    account(&w, d, pending);
                }
                w.reply(alone);
            }
            reload(conn, pending).await;
        }
        Err(e) => {
            for w in batch {
                w.reply(Err(StoreError::Unavailable(e.to_string())));
            }
        }
    }
}

/// How long a batch of nothing but delivery marks waits for a write that
/// someone is waiting on, so the marks share its commit.
const MARKS_LINGER: Duration = Duration::from_millis(20);

/// The writer task: runs until a `Close` or until every sender is gone.
pub async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Write>, pending: Arc<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        loop {
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(w) => batch.push(w),
                    Err(_) => break,
                }
            }
            let marks_only = batch.iter().all(|w| matches!(w, Write::Delivered { .. }));
            if !marks_only || batch.len() >= MAX_BATCH {
                break;
            }
            match tokio::time::timeout(MARKS_LINGER, rx.recv()).await {
                Ok(Some(w)) => batch.push(w),
                _ => break,
            }
        }
        let closing = batch.iter().any(|w| matches!(w, Write::Close { .. }));
        commit(&mut conn, batch, &pending).await;
        if closing {
            break;
        }
    }
    let _ = conn.close().await;
}
