//! The PostgreSQL store's inbox: storing a notification for its recipients
//! (retried when two nodes race on one id), acknowledging it (the first
//! acknowledgement by any recipient closes it, decided by the database),
//! reading and listing it, and deleting what is past retention.

use std::collections::HashSet;
use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::Row;

use super::chain::purge_audit;
use super::deadline::{with_deadline, ANSWER_DEADLINE, PURGE_DEADLINE};
use super::seal::seal_all_waiting;
use super::unsealed::{insert_unsealed_if, queue, EntryColumns};
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

/// Whose sockets to tell that `id` closed: read after the closing
/// committed, so a role member whose joining the closing waited for is
/// among them (a join after it leaves the closed notification out).
async fn closed_by(
    conn: impl sqlx::PgExecutor<'_>,
    id: &str,
    by: &str,
    at: Millis,
) -> Result<Closed, StoreError> {
    let (users, roles): (Vec<String>, Vec<String>) = sqlx::query_as(
        "SELECT ARRAY(SELECT user_id FROM recipients WHERE notification_id = $1 ORDER BY seq), \
         ARRAY(SELECT role FROM role_recipients WHERE notification_id = $1 ORDER BY role)",
    )
    .bind(id)
    .fetch_one(conn)
    .await?;
    Ok(Closed {
        at,
        by: by.to_string(),
        users,
        roles,
    })
}

/// A new notification, its steps, its recipients (in the order given) and
/// its `created` record, in one statement: one round trip and one commit.
/// Nothing is written when the id is already stored (or being stored by
/// another node, whose commit this waits for): the answer says so, and
/// the caller stores the recipients against the first body.
fn insert_fresh_statement() -> String {
    format!(
        "WITH fresh AS (INSERT INTO notifications (id, body, created_at, severity) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING id), \
         steps AS (INSERT INTO escalation_steps (notification_id, level, due_at) \
         SELECT f.id, s.level, s.due_at FROM fresh f, UNNEST($5::bigint[], $6::bigint[]) \
         AS s(level, due_at)), \
         added AS (INSERT INTO recipients (notification_id, user_id, created_at) \
         SELECT f.id, u.user_id, $3 FROM fresh f, \
         UNNEST($7::text[]) WITH ORDINALITY AS u(user_id, position) ORDER BY u.position \
         ON CONFLICT (notification_id, user_id) DO NOTHING RETURNING user_id), \
         created AS ({}) \
         SELECT EXISTS (SELECT 1 FROM fresh) AS fresh, ARRAY(SELECT user_id FROM added) AS added",
        insert_unsealed_if(8, "fresh, ", "TRUE")
    )
}

/// The statement of [`insert_fresh_statement`], built once.
static INSERT_FRESH: LazyLock<String> = LazyLock::new(insert_fresh_statement);

/// A first acknowledgement, the closing it makes if the notification is
/// still open (its steps go), and its one record, in one statement. Both
/// forms of the record are bound from `$4` (as it reads when the
/// acknowledgement did not close the notification, then when it did); the
/// statement keeps the one that is true. Two nodes
/// acknowledging at once close it once: the second closing waits for the
/// first's row and then finds it closed. Answers the recipient's creation
/// time (None: acknowledged before, or not a recipient) and whether it
/// closed the notification.
fn acknowledge_statement() -> String {
    format!(
        "WITH ack AS (UPDATE recipients SET acknowledged_at = $1 \
         WHERE notification_id = $2 AND user_id = $3 AND acknowledged_at IS NULL \
         RETURNING created_at), \
         closed AS (UPDATE notifications SET closed_at = $1, closed_by = $3 \
         WHERE id = $2 AND closed_at IS NULL AND EXISTS (SELECT 1 FROM ack) RETURNING id), \
         steps AS (DELETE FROM escalation_steps WHERE notification_id IN (SELECT id FROM closed)), \
         recorded AS ({}) \
         SELECT (SELECT created_at FROM ack) AS created_at, EXISTS (SELECT 1 FROM closed) AS closed",
        insert_unsealed_if(4, "ack, ", "((e.position = 2) = EXISTS (SELECT 1 FROM closed))")
    )
}

static ACKNOWLEDGE: LazyLock<String> = LazyLock::new(acknowledge_statement);

impl PostgresStore {
    /// [`insert_fresh_statement`]: the users each recipient row was new for, or
    /// None when the id was already stored.
    async fn insert_fresh(
        &self,
        n: &Notification,
        users: &[String],
        steps: &[(u32, Millis)],
    ) -> Result<Option<Vec<String>>, sqlx::Error> {
        let (levels, due): (Vec<i64>, Vec<Millis>) = steps
            .iter()
            .map(|(level, due_at)| (i64::from(*level), *due_at))
            .unzip();
        let created = EntryColumns::of(&[record::created(&n.id, n.created_at, users)]);
        let q = sqlx::query(&INSERT_FRESH)
            .bind(&n.id)
            .bind(n.to_json())
            .bind(n.created_at)
            .bind(n.severity())
            .bind(&levels)
            .bind(&due)
            .bind(users);
        let row = created.bind(q).fetch_one(&self.pool).await?;
        let (fresh, added): (bool, Vec<String>) = (row.try_get("fresh")?, row.try_get("added")?);
        if !fresh {
            return Ok(None);
        }
        self.committed_records();
        Ok(Some(added))
    }

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
            queue(&mut *tx, &[record::created(&n.id, n.created_at, users)]).await?;
        }
        tx.commit().await?;
        if fresh {
            self.committed_records();
        }
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
            // Most notifications are new: one statement stores them.
            if let Some(added) = self.insert_fresh(n, users, steps).await? {
                let mut added: HashSet<String> = added.into_iter().collect();
                return Ok(Inserted {
                    notification: n.clone(),
                    new_for: users.iter().map(|u| added.remove(u)).collect(),
                });
            }
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
            // Both forms of the one record: the statement keeps the one
            // that says whether this acknowledgement closed the notification.
            let acknowledged = |closing| {
                record::acknowledged(
                    id,
                    user,
                    at,
                    source.socket_id.as_deref(),
                    source.remote.as_deref(),
                    closing,
                )
            };
            let records = EntryColumns::of(&[acknowledged(false), acknowledged(true)]);
            let q = sqlx::query(&ACKNOWLEDGE).bind(at).bind(id).bind(user);
            let row = records.bind(q).fetch_one(&self.pool).await?;
            let first: Option<Millis> = row.try_get("created_at")?;
            if let Some(created_at) = first {
                self.committed_records();
                let closed = if row.try_get("closed")? {
                    Some(closed_by(&self.pool, id, user, at).await?)
                } else {
                    None
                };
                return Ok(Some(Acknowledged {
                    at,
                    first: true,
                    created_at,
                    closed,
                }));
            }
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
        // Retention judges the chain: what is committed is sealed first, so
        // an old record goes with the purge that finds it old, sealed or not.
        self.marks.settle().await;
        seal_all_waiting(&self.pool).await?;
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
