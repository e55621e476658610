//! The PostgreSQL store's inbox: storing a notification for its recipients
//! (retried when two nodes race on one id), acknowledging it (the first
//! acknowledgement by any recipient closes it, decided by the database),
//! reading and listing it, and deleting what is past retention.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::PgConnection;

use super::audit::{append, purge_audit};
use super::deadline::{with_deadline, ANSWER_DEADLINE, PURGE_DEADLINE};
use super::PostgresStore;
use crate::clock::Millis;
use crate::notification::{Notification, Recipient, StateFilter};
use crate::store::rows::{self, SELECT_USER};
use crate::store::{Acknowledged, Closed, Inbox, Inserted, Source, StoreError, UserNotification};
use crate::trail::record;

/// Attempts at an insert that lost a race (a deadlock between two nodes
/// storing the same notification, or its purge in between).
const INSERT_ATTEMPTS: u32 = 3;

/// Why an insert attempt failed.
enum Failed {
    /// It lost a race another attempt can win.
    Again(String),
    Store(StoreError),
}

impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Self {
        // Deadlock, or a serialization failure: PostgreSQL undid the
        // transaction so that the other could go on.
        let lost_race = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|code| code == "40P01" || code == "40001");
        if lost_race {
            Failed::Again(e.to_string())
        } else {
            Failed::Store(e.into())
        }
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::Store(e)
    }
}

/// The listing of one user's notifications in `filter`'s state; the
/// unacknowledged states read the partial index.
pub(super) fn list_query(filter: StateFilter) -> String {
    let condition = rows::state_condition(filter);
    format!("{SELECT_USER} WHERE r.user_id = $1 AND r.seq > $2 {condition} ORDER BY r.seq LIMIT $3")
}

/// Closes `id` if it is still open, in the acknowledgement's transaction:
/// the database decides, so two nodes acknowledging at once close it once
/// (the second waits for the first's row and then finds it closed). Its
/// steps go; the answer names whose sockets to tell.
async fn close_notification(
    conn: &mut PgConnection,
    id: &str,
    by: &str,
    at: Millis,
) -> Result<Option<Closed>, StoreError> {
    let closed = sqlx::query(
        "UPDATE notifications SET closed_at = $1, closed_by = $2 \
         WHERE id = $3 AND closed_at IS NULL",
    )
    .bind(at)
    .bind(by)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if closed == 0 {
        return Ok(None);
    }
    sqlx::query("DELETE FROM escalation_steps WHERE notification_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let users = sqlx::query_scalar(
        "SELECT user_id FROM recipients WHERE notification_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let roles = sqlx::query_scalar(
        "SELECT role FROM role_recipients WHERE notification_id = $1 ORDER BY role",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Closed {
        at,
        by: by.to_string(),
        users,
        roles,
    }))
}

impl PostgresStore {
    /// One attempt at [`Inbox::insert_scheduled`], in one transaction: a
    /// new notification with its steps and its `created` record, or none
    /// of them.
    async fn insert_once(
        &self,
        n: &Notification,
        users: &[String],
        steps: &[(u32, Millis)],
    ) -> Result<Inserted, Failed> {
        let mut tx = self.pool.begin().await?;
        let fresh = sqlx::query(
            "INSERT INTO notifications (id, body, created_at, severity) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(&n.id)
        .bind(n.to_json())
        .bind(n.created_at)
        .bind(n.severity())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        let notification = if fresh {
            let (levels, due): (Vec<i64>, Vec<Millis>) = steps
                .iter()
                .map(|(level, due_at)| (i64::from(*level), *due_at))
                .unzip();
            sqlx::query(
                "INSERT INTO escalation_steps (notification_id, level, due_at) \
                 SELECT $1, s.level, s.due_at FROM UNNEST($2::bigint[], $3::bigint[]) \
                 AS s(level, due_at) ON CONFLICT (notification_id, level) DO NOTHING",
            )
            .bind(&n.id)
            .bind(&levels)
            .bind(&due)
            .execute(&mut *tx)
            .await?;
            n.clone()
        } else {
            // The first body stands. The lock keeps a purge from deleting
            // it before this transaction's recipients refer to it.
            let stored = sqlx::query(
                "SELECT id, body, created_at FROM notifications WHERE id = $1 FOR KEY SHARE",
            )
            .bind(&n.id)
            .fetch_optional(&mut *tx)
            .await?;
            match stored {
                Some(row) => rows::notification(&row)?,
                None => return Err(Failed::Again("purged while being stored again".into())),
            }
        };
        // Every recipient in one statement, in the order given, so each
        // user's inbox order follows insertion.
        let added: Vec<String> = sqlx::query_scalar(
            "INSERT INTO recipients (notification_id, user_id, created_at) \
             SELECT $1, u.user_id, $3 \
             FROM UNNEST($2::text[]) WITH ORDINALITY AS u(user_id, position) \
             ORDER BY u.position \
             ON CONFLICT (notification_id, user_id) DO NOTHING RETURNING user_id",
        )
        .bind(&n.id)
        .bind(users)
        .bind(n.created_at)
        .fetch_all(&mut *tx)
        .await?;
        if fresh {
            append(&mut tx, vec![record::created(&n.id, n.created_at, users)]).await?;
        }
        tx.commit().await?;
        let mut added: HashSet<String> = added.into_iter().collect();
        let new_for = users.iter().map(|u| added.remove(u)).collect();
        Ok(Inserted {
            notification,
            new_for,
        })
    }
}

#[async_trait]
impl Inbox for PostgresStore {
    async fn insert_scheduled(
        &self,
        n: &Notification,
        users: &[String],
        steps: &[(u32, Millis)],
    ) -> Result<Inserted, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let mut attempt = 1;
            loop {
                match self.insert_once(n, users, steps).await {
                    Ok(inserted) => return Ok(inserted),
                    Err(Failed::Again(why)) if attempt < INSERT_ATTEMPTS => {
                        tracing::debug!(id = %n.id, attempt, why, "storing a notification again");
                        attempt += 1;
                    }
                    Err(Failed::Again(why)) => return Err(StoreError::Unavailable(why)),
                    Err(Failed::Store(e)) => return Err(e),
                }
            }
        })
        .await
    }

    fn mark_delivered(&self, id: &str, user: &str, at: Millis) {
        self.marks.queue(id, user, at);
    }

    async fn acknowledge_from(
        &self,
        id: &str,
        user: &str,
        at: Millis,
        source: &Source,
    ) -> Result<Option<Acknowledged>, StoreError> {
        // The marks and records this node queued before commit before it.
        self.marks.settle().await;
        with_deadline(ANSWER_DEADLINE, async {
            let mut tx = self.pool.begin().await?;
            let first: Option<Millis> = sqlx::query_scalar(
                "UPDATE recipients SET acknowledged_at = $1 \
                 WHERE notification_id = $2 AND user_id = $3 AND acknowledged_at IS NULL \
                 RETURNING created_at",
            )
            .bind(at)
            .bind(id)
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(created_at) = first {
                let closed = close_notification(&mut tx, id, user, at).await?;
                let records = vec![record::acknowledged(
                    id,
                    user,
                    at,
                    source.socket_id.as_deref(),
                    source.remote.as_deref(),
                    closed.is_some(),
                )];
                append(&mut tx, records).await?;
                tx.commit().await?;
                return Ok(Some(Acknowledged {
                    at,
                    first: true,
                    created_at,
                    closed,
                }));
            }
            tx.rollback().await?;
            // Acknowledged before, or not a recipient. An acknowledgement
            // racing this one (another node's) held the row until its
            // commit, so this read, a new statement, sees its time.
            let stored: Option<(Option<Millis>, Millis)> = sqlx::query_as(
                "SELECT acknowledged_at, created_at FROM recipients \
                 WHERE notification_id = $1 AND user_id = $2",
            )
            .bind(id)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
            Ok(stored.and_then(|(first_at, created_at)| {
                first_at.map(|at| Acknowledged {
                    at,
                    first: false,
                    created_at,
                    closed: None,
                })
            }))
        })
        .await
    }

    async fn notification(
        &self,
        id: &str,
    ) -> Result<Option<(Notification, Vec<Recipient>)>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let Some(row) =
                sqlx::query("SELECT id, body, created_at FROM notifications WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
            else {
                return Ok(None);
            };
            let n = rows::notification(&row)?;
            let recipients = sqlx::query(
                "SELECT user_id, delivered_at, acknowledged_at, escalation_level FROM recipients \
                 WHERE notification_id = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            let recipients = recipients
                .iter()
                .map(rows::recipient)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((n, recipients)))
        })
        .await
    }

    async fn user_notification(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<UserNotification>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let row = sqlx::query(&format!(
                "{SELECT_USER} WHERE r.notification_id = $1 AND r.user_id = $2"
            ))
            .bind(id)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(rows::user_notification).transpose()
        })
        .await
    }

    /// `seq` is drawn when a row is inserted, and nodes commit concurrently:
    /// a row may commit after one with a higher `seq` was read. Catch-up
    /// loses nothing by it (such a row is delivered live by the node that
    /// stored it, and stays unacknowledged for the next catch-up).
    async fn list(
        &self,
        user: &str,
        filter: StateFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<UserNotification>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let listed = sqlx::query(&list_query(filter))
                .bind(user)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            listed.iter().map(rows::user_notification).collect()
        })
        .await
    }

    async fn purge(
        &self,
        acknowledged_before: Millis,
        unacknowledged_before: Millis,
    ) -> Result<u64, StoreError> {
        with_deadline(PURGE_DEADLINE, async {
            let mut tx = self.pool.begin().await?;
            let gone = sqlx::query(
                "DELETE FROM recipients \
                 WHERE (acknowledged_at IS NOT NULL AND acknowledged_at < $1) \
                 OR (acknowledged_at IS NULL AND created_at < $2)",
            )
            .bind(acknowledged_before)
            .bind(unacknowledged_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // A notification being stored again right now is locked by that
            // insert: it is skipped, not deleted under its new recipients.
            sqlx::query(
                "DELETE FROM notifications WHERE id IN (\
                 SELECT n.id FROM notifications n WHERE NOT EXISTS \
                 (SELECT 1 FROM recipients r WHERE r.notification_id = n.id) \
                 FOR UPDATE SKIP LOCKED)",
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM expired_sessions WHERE expired_at < $1")
                .bind(unacknowledged_before)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM session_owners WHERE claimed_at < $1")
                .bind(unacknowledged_before)
                .execute(&mut *tx)
                .await?;
            purge_audit(&mut tx, acknowledged_before.min(unacknowledged_before)).await?;
            tx.commit().await?;
            Ok(gone)
        })
        .await
    }
}
