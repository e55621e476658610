//! Group commit for the SQLite store: one thread owns the write connection
//! and commits every write waiting in its queue in one transaction (one
//! fsync), answering each caller only after that commit. Latency at low load
//! is one commit; throughput under load grows with the batch instead of
//! queueing on SQLite's write lock.
//!
//! The thread runs SQLite directly (rusqlite, cached prepared statements):
//! a whole batch costs one hand-over between threads each way, where an
//! async driver pays one per statement.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;

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

fn insert(c: &Connection, n: &Notification, users: &[String]) -> Result<Inserted, StoreError> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO notifications (id, body, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute((&n.id, n.to_json(), n.created_at))?;
    let notification = c
        .prepare_cached("SELECT id, body, created_at FROM notifications WHERE id = ?1")?
        .query_row([&n.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
    let (id, body, created_at) = notification;
    let notification = Notification::from_stored(id, created_at, &body)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut add = c.prepare_cached(
        "INSERT OR IGNORE INTO recipients (notification_id, user_id, created_at) VALUES (?1, ?2, ?3)",
    )?;
    let mut new_for = Vec::with_capacity(users.len());
    for user in users {
        new_for.push(add.execute((&n.id, user, n.created_at))? == 1);
    }
    Ok(Inserted {
        notification,
        new_for,
    })
}

fn apply(c: &Connection, w: &Write) -> Result<Done, StoreError> {
    Ok(match w {
        Write::Insert { n, users, .. } => Done::Inserted(insert(c, n, users)?),
        Write::Delivered { id, user, at, .. } => {
            c.prepare_cached("UPDATE recipients SET delivered_at = ?1 WHERE notification_id = ?2 AND user_id = ?3 AND delivered_at IS NULL")?
                .execute((at, id, user))?;
            Done::Unit
        }
        Write::Acknowledge { id, user, at, .. } => {
            let first = c
                .prepare_cached(
                    "UPDATE recipients SET acknowledged_at = ?1 \
                     WHERE notification_id = ?2 AND user_id = ?3 AND acknowledged_at IS NULL",
                )?
                .execute((at, id, user))?
                == 1;
            let at = c
                .prepare_cached(
                    "SELECT acknowledged_at FROM recipients WHERE notification_id = ?1 AND user_id = ?2",
                )?
                .query_row((id, user), |r| r.get::<_, Option<i64>>(0))
                .optional()?
                .flatten();
            Done::Acknowledged(at, first)
        }
        Write::ExpireSession {
            session, user, at, ..
        } => {
            c.prepare_cached("INSERT OR IGNORE INTO expired_sessions (session_id, user_id, expired_at) VALUES (?1, ?2, ?3)")?
                .execute((session, user, at))?;
            Done::Unit
        }
        Write::Purge {
            acknowledged_before,
            unacknowledged_before,
            ..
        } => {
            let gone = c
                .prepare_cached(
                    "DELETE FROM recipients WHERE (acknowledged_at IS NOT NULL AND acknowledged_at < ?1) \
                     OR (acknowledged_at IS NULL AND created_at < ?2)",
                )?
                .execute((acknowledged_before, unacknowledged_before))?;
            c.prepare_cached("DELETE FROM notifications WHERE NOT EXISTS (SELECT 1 FROM recipients r WHERE r.notification_id = notifications.id)")?
                .execute(())?;
            c.prepare_cached("DELETE FROM expired_sessions WHERE expired_at < ?1")?
                .execute([unacknowledged_before])?;
            Done::Count(gone as u64)
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

fn reload(conn: &Connection, pending: &Pending) {
    if let Err(e) = pending.reload(conn) {
        tracing::error!(error = %e, "could not recount pending notifications; every catch-up queries the store until a recount succeeds");
        pending.mark_unknown();
    }
}

/// Applies `writes` in one transaction (rolled back on any error).
fn transaction(conn: &mut Connection, writes: &[Write]) -> Result<Vec<Done>, StoreError> {
    let tx = conn.transaction()?;
    let done = writes
        .iter()
        .map(|w| apply(&tx, w))
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    Ok(done)
}

/// Applies `batch` in one transaction; on failure, each write alone, so one
/// bad write cannot fail the others.
fn commit(conn: &mut Connection, batch: Vec<Write>, pending: &Pending) {
    match transaction(conn, &batch) {
        Ok(done) => {
            metrics::histogram!("herald_store_batch_size").record(batch.len() as f64);
            let purged = batch.iter().any(|w| matches!(w, Write::Purge { .. }));
            for (w, d) in batch.iter().zip(&done) {
                account(w, d, pending);
            }
            if purged {
                reload(conn, pending);
            }
            for (w, d) in batch.into_iter().zip(done) {
                w.reply(Ok(d));
            }
        }
        Err(_) if batch.len() > 1 => {
            for w in batch {
                let alone = transaction(conn, std::slice::from_ref(&w)).map(|mut d| d.remove(0));
                if let Ok(d) = &alone {
                    account(&w, d, pending);
                }
                w.reply(alone);
            }
            reload(conn, pending);
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

/// Starts the writer thread; it runs until a `Close` or until every sender
/// is gone.
pub fn spawn(
    conn: Connection,
    rx: flume::Receiver<Write>,
    pending: Arc<Pending>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("herald-sqlite-writer".into())
        .spawn(move || run(conn, rx, &pending))
}

fn run(mut conn: Connection, rx: flume::Receiver<Write>, pending: &Pending) {
    while let Ok(first) = rx.recv() {
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
            match rx.recv_timeout(MARKS_LINGER) {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let closing = batch.iter().any(|w| matches!(w, Write::Close { .. }));
        commit(&mut conn, batch, pending);
        if closing {
            break;
        }
    }
}
