//! The shared store: PostgreSQL, which several Herald nodes write at once.
//! Every write is its own transaction and answers after its commit; the
//! database, not a node, decides what came first (the first body of an id,
//! the first acknowledgement, the closing, which node fires an escalation
//! step). The audit trail stays one hash chain across the nodes: every
//! append holds the chain's head row locked until its commit. Delivery marks
//! and queued audit records, which nobody waits for, are batched by a
//! background task (`marks.rs`). An unreachable server answers
//! `Unavailable` within seconds: no call waits on it longer than its deadline.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Row};

use super::marks::Marks;
use super::rows::{self, Columns, PENDING_COUNT, SELECT_USER};
use super::{
    Acknowledged, ClaimedStep, Closed, Completion, Escalation, Inserted, ReportRow, Source, Store,
    StoreError, Then, Unacknowledged, UserNotification,
};
use crate::clock::Millis;
use crate::notification::{Notification, Recipient, StateFilter};
use crate::trail::{Anchor, Chain, Entry, Kind, Record};

/// Connections one node keeps; several nodes share the server's limit.
const MAX_CONNECTIONS: u32 = 10;

/// How long a call waits for a connection, a new one included: an outage
/// answers within this, whether the server refuses or does not answer.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a call may take in all. A server that stops answering on an
/// open connection (a network partition) fails the call here instead of
/// holding the request until the operating system gives the connection up.
const ANSWER_DEADLINE: Duration = Duration::from_secs(5);

/// How long a retention purge may take: it deletes in bulk, and nobody
/// waits on it but a timer.
const PURGE_DEADLINE: Duration = Duration::from_secs(300);

/// How long the migrations may take, waiting for another node's included.
const MIGRATE_DEADLINE: Duration = Duration::from_secs(60);

/// How long closing waits for connections still in use.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Attempts at an insert that lost a race (a deadlock between two nodes
/// storing the same notification, or its purge in between).
const INSERT_ATTEMPTS: u32 = 3;

pub struct PostgresStore {
    pool: PgPool,
    marks: Marks,
}

/// Runs `work`, failing it as unavailable past `limit`.
async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(format!(
            "PostgreSQL did not answer within {limit:?}"
        )))
    })
}

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
fn list_query(filter: StateFilter) -> String {
    let condition = rows::state_condition(filter);
    format!("{SELECT_USER} WHERE r.user_id = $1 AND r.seq > $2 {condition} ORDER BY r.seq LIMIT $3")
}

/// Appends `entries` to the audit chain in the transaction on `conn`.
/// The head row stays locked until that transaction ends, so the nodes
/// append one after another and every record links to the one committed
/// before it. Callers append last, after their other writes: the head is
/// held only for the appending, and no transaction holding it waits on a
/// row another transaction holds while waiting for the head.
pub(super) async fn append(
    conn: &mut PgConnection,
    entries: Vec<Entry>,
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let (seq, hash): (i64, String) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *conn)
            .await?;
    let mut head = Chain { seq, hash };
    let records: Vec<Record> = entries.into_iter().map(|e| head.append(e)).collect();
    let column = |f: fn(&Record) -> Option<String>| records.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO audit (seq, at, kind, notification_id, user_id, socket_id, level, detail, \
         prev_hash, hash) \
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[])",
    )
    .bind(records.iter().map(|r| r.seq).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.entry.at).collect::<Vec<_>>())
    .bind(column(|r| Some(r.entry.kind.as_str().to_string())))
    .bind(column(|r| r.entry.notification_id.clone()))
    .bind(column(|r| r.entry.user_id.clone()))
    .bind(column(|r| r.entry.socket_id.clone()))
    .bind(
        records
            .iter()
            .map(|r| r.entry.level.map(i64::from))
            .collect::<Vec<_>>(),
    )
    // The text the hash covers: `link` hashes the detail's serialisation.
    .bind(column(|r| r.entry.detail.as_ref().map(|d| d.to_string())))
    .bind(column(|r| Some(r.prev_hash.clone())))
    .bind(column(|r| Some(r.hash.clone())))
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(head.seq)
        .bind(&head.hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Closes `id` if it is still open, in the acknowledgement's transaction:
/// the database decides, so two nodes acknowledging at once close it once
/// (the second waits for the first's row and then finds it closed). Its
/// steps go; the answer names whose sockets to tell.
async fn close(
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

/// Removes the audit records before `before` (the chain's oldest ones, up
/// to the last of them), keeps the last removed record's place and hash as
/// the anchor the rest verifies from, and says so in a `purged` record.
/// The head stays locked throughout, so no node appends in between.
async fn purge_audit(conn: &mut PgConnection, before: Millis) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE")
        .execute(&mut *conn)
        .await?;
    let last: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, hash FROM audit WHERE seq = (SELECT max(seq) FROM audit WHERE at < $1)",
    )
    .bind(before)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((last, hash)) = last else {
        return Ok(());
    };
    let removed = sqlx::query("DELETE FROM audit WHERE seq <= $1")
        .bind(last)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("UPDATE audit_anchor SET seq = $1, hash = $2 WHERE id = 1")
        .bind(last)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    let purged = Entry::new(Kind::Purged, before).detail(serde_json::json!({
        "through": last,
        "removed": removed,
        "anchorHash": hash,
    }));
    Ok(append(conn, vec![purged]).await?)
}

/// A level or count stored as BIGINT, back to what the store hands out.
fn small(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value} out of range")))
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
        within(MIGRATE_DEADLINE, async {
            sqlx::migrate!("migrations/postgres")
                .run(&pool)
                .await
                .map_err(|e| StoreError::Unavailable(format!("migrations failed: {e}")))
        })
        .await?;
        let marks = Marks::start(pool.clone());
        Ok(Self { pool, marks })
    }

    /// Runs `insert`, which adds a `(session, user, time)` row unless the
    /// session has one already: the first expiry and the first owner stand.
    async fn first_session_row(
        &self,
        insert: &'static str,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(insert)
            .bind(session)
            .bind(user)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One attempt at [`Store::insert_scheduled`], in one transaction: a
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
            append(&mut tx, vec![super::closed_loop::created_entry(n, users)]).await?;
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
impl Store for PostgresStore {
    async fn insert_scheduled(
        &self,
        n: &Notification,
        users: &[String],
        steps: &[(u32, Millis)],
    ) -> Result<Inserted, StoreError> {
        within(ANSWER_DEADLINE, async {
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

    fn record(&self, entry: Entry) {
        self.marks.record(entry);
    }

    async fn claim_steps(
        &self,
        now: Millis,
        owner: &str,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedStep>, StoreError> {
        within(ANSWER_DEADLINE, async {
            // A step another node is claiming right now is locked: skipped,
            // not waited for, so each due step goes to exactly one node. A
            // row locked and claimed meanwhile is read again once unlocked,
            // and its new lease leaves it out.
            let claimed = sqlx::query(
                "WITH claimed AS (\
                   UPDATE escalation_steps SET claimed_by = $2, claimed_until = $3 \
                   WHERE (notification_id, level) IN (\
                     SELECT s.notification_id, s.level FROM escalation_steps s \
                     WHERE s.due_at <= $1 AND s.claimed_until <= $1 \
                     AND NOT EXISTS (SELECT 1 FROM escalation_steps p \
                       WHERE p.notification_id = s.notification_id AND p.blocking \
                       AND p.level < s.level) \
                     ORDER BY s.due_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
                   RETURNING notification_id, level, fired, attempts, due_at) \
                 SELECT c.level, c.fired, c.attempts, c.due_at, n.id, n.body, n.created_at \
                 FROM claimed c JOIN notifications n ON n.id = c.notification_id",
            )
            .bind(now)
            .bind(owner)
            .bind(until)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            let mut steps = claimed
                .iter()
                .map(|row| {
                    Ok(ClaimedStep {
                        notification: rows::notification(row)?,
                        level: small(row.integer("level")?, "escalation level")?,
                        fired: row.try_get("fired")?,
                        attempts: small(row.integer("attempts")?, "webhook attempts")?,
                        due_at: row.integer("due_at")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            steps.sort_by_key(|s| (s.due_at, s.level));
            Ok(steps)
        })
        .await
    }

    async fn complete_step(&self, c: &Completion) -> Result<bool, StoreError> {
        // Records this node queued before the step (its deliveries) come
        // before the step's own in the chain, as on SQLite.
        self.marks.settle().await;
        within(ANSWER_DEADLINE, async {
            let mut tx = self.pool.begin().await?;
            let level = i64::from(c.level);
            // Locked until the commit: a node taking the claim over, or an
            // acknowledgement closing the notification (which deletes its
            // steps), waits for this one, or this one sees what they did.
            let held = sqlx::query(
                "SELECT 1 FROM escalation_steps \
                 WHERE notification_id = $1 AND level = $2 AND claimed_by = $3 FOR UPDATE",
            )
            .bind(&c.notification_id)
            .bind(level)
            .bind(&c.owner)
            .fetch_optional(&mut *tx)
            .await?;
            if held.is_none() {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO recipients (notification_id, user_id, created_at, escalation_level) \
                 SELECT $1, u.user_id, $3, $4 \
                 FROM UNNEST($2::text[]) WITH ORDINALITY AS u(user_id, position) \
                 ORDER BY u.position \
                 ON CONFLICT (notification_id, user_id) DO NOTHING",
            )
            .bind(&c.notification_id)
            .bind(&c.add_users)
            .bind(c.at)
            .bind(level)
            .execute(&mut *tx)
            .await?;
            if let Some(role) = &c.add_role {
                sqlx::query(
                    "INSERT INTO role_recipients (notification_id, role, level, added_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (notification_id, role) DO NOTHING",
                )
                .bind(&c.notification_id)
                .bind(role)
                .bind(level)
                .bind(c.at)
                .execute(&mut *tx)
                .await?;
            }
            let (then, retry_at) = match c.then {
                Then::Fired => (
                    "UPDATE escalation_steps SET fired = TRUE \
                     WHERE notification_id = $1 AND level = $2",
                    None,
                ),
                Then::Done => (
                    "DELETE FROM escalation_steps WHERE notification_id = $1 AND level = $2",
                    None,
                ),
                Then::RetryAt(at) => (
                    "UPDATE escalation_steps SET blocking = FALSE, attempts = attempts + 1, \
                     due_at = $3, claimed_by = NULL, claimed_until = 0 \
                     WHERE notification_id = $1 AND level = $2",
                    Some(at),
                ),
            };
            let mut then = sqlx::query(then).bind(&c.notification_id).bind(level);
            if let Some(at) = retry_at {
                then = then.bind(at);
            }
            then.execute(&mut *tx).await?;
            append(&mut tx, c.audit.clone()).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn next_step_due(&self) -> Result<Option<Millis>, StoreError> {
        within(ANSWER_DEADLINE, async {
            Ok(
                sqlx::query_scalar("SELECT min(due_at) FROM escalation_steps")
                    .fetch_one(&self.pool)
                    .await?,
            )
        })
        .await
    }

    async fn next_claim_end(&self, now: Millis) -> Result<Option<Millis>, StoreError> {
        within(ANSWER_DEADLINE, async {
            Ok(sqlx::query_scalar(rows::NEXT_CLAIM_END_POSTGRES)
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
        })
        .await
    }

    async fn open_roles(&self) -> Result<Vec<String>, StoreError> {
        within(ANSWER_DEADLINE, async {
            Ok(sqlx::query_scalar(rows::OPEN_ROLES)
                .fetch_all(&self.pool)
                .await?)
        })
        .await
    }

    async fn join_role(
        &self,
        user: &str,
        role: &str,
        only: Option<&str>,
        at: Millis,
    ) -> Result<u64, StoreError> {
        within(ANSWER_DEADLINE, async {
            // The share lock orders a join against a closing on another
            // node: the join waits for the closing and then leaves the
            // notification out, or the closing waits for the join and
            // names the new recipient among those to tell.
            let joined = sqlx::query(
                "INSERT INTO recipients (notification_id, user_id, created_at, escalation_level) \
                 SELECT rr.notification_id, $1, $3, rr.level FROM role_recipients rr \
                 JOIN notifications n ON n.id = rr.notification_id \
                 WHERE rr.role = $2 AND n.closed_at IS NULL \
                 AND ($4::text IS NULL OR rr.notification_id = $4) \
                 ORDER BY rr.notification_id FOR SHARE OF n \
                 ON CONFLICT (notification_id, user_id) DO NOTHING",
            )
            .bind(user)
            .bind(role)
            .bind(at)
            .bind(only)
            .execute(&self.pool)
            .await?
            .rows_affected();
            Ok(joined)
        })
        .await
    }

    async fn timeline(&self, id: &str) -> Result<Vec<Record>, StoreError> {
        within(ANSWER_DEADLINE, async {
            let found = sqlx::query(&format!(
                "{} WHERE notification_id = $1 ORDER BY seq",
                rows::SELECT_AUDIT
            ))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            found.iter().map(rows::audit_record).collect()
        })
        .await
    }

    async fn audit_page(
        &self,
        after: i64,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        within(ANSWER_DEADLINE, async {
            let found = sqlx::query(&format!(
                "{} WHERE seq > $1 AND at >= $2 AND at < $3 ORDER BY seq LIMIT $4",
                rows::SELECT_AUDIT
            ))
            .bind(after)
            .bind(from)
            .bind(to)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            found.iter().map(rows::audit_record).collect()
        })
        .await
    }

    async fn audit_anchor(&self) -> Result<Anchor, StoreError> {
        within(ANSWER_DEADLINE, async {
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
        })
        .await
    }

    async fn escalations(&self, ids: &[String]) -> Result<HashMap<String, Escalation>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        within(ANSWER_DEADLINE, async {
            let found = sqlx::query(&rows::escalations_query("n.id = ANY($1)"))
                .bind(ids)
                .fetch_all(&self.pool)
                .await?;
            found.iter().map(rows::escalation).collect()
        })
        .await
    }

    async fn report_rows(&self, from: Millis, to: Millis) -> Result<Vec<ReportRow>, StoreError> {
        within(ANSWER_DEADLINE, async {
            let found = sqlx::query(rows::REPORT_ROWS_POSTGRES)
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
            found.iter().map(rows::report_row).collect()
        })
        .await
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
        within(ANSWER_DEADLINE, async {
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
                let mut records =
                    vec![super::closed_loop::acknowledged_entry(id, user, at, source)];
                let closed = close(&mut tx, id, user, at).await?;
                if closed.is_some() {
                    records.push(Entry::new(Kind::Closed, at).notification(id).user(user));
                }
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
        within(ANSWER_DEADLINE, async {
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
        within(ANSWER_DEADLINE, async {
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
        within(ANSWER_DEADLINE, async {
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

    async fn unacknowledged(&self, limit: u32) -> Result<Unacknowledged, StoreError> {
        within(ANSWER_DEADLINE, async {
            let oldest = sqlx::query(&rows::unacknowledged_query("$1"))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            let total = sqlx::query(rows::COUNT_UNACKNOWLEDGED)
                .fetch_one(&self.pool)
                .await?;
            rows::unacknowledged(&total, &oldest)
        })
        .await
    }

    async fn purge(
        &self,
        acknowledged_before: Millis,
        unacknowledged_before: Millis,
    ) -> Result<u64, StoreError> {
        within(PURGE_DEADLINE, async {
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

    async fn expire_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        within(ANSWER_DEADLINE, async {
            self.first_session_row(
                "INSERT INTO expired_sessions (session_id, user_id, expired_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (session_id) DO NOTHING",
                session,
                user,
                at,
            )
            .await
        })
        .await
    }

    async fn claim_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<String, StoreError> {
        within(ANSWER_DEADLINE, async {
            // Two statements, not one: the read after a conflict must see
            // the row another node's claim just committed, which a single
            // statement's snapshot (taken before the wait) would not. A
            // purge between the two leaves no row: claim again.
            loop {
                self.first_session_row(
                    "INSERT INTO session_owners (session_id, user_id, claimed_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (session_id) DO NOTHING",
                    session,
                    user,
                    at,
                )
                .await?;
                let owner = sqlx::query("SELECT user_id FROM session_owners WHERE session_id = $1")
                    .bind(session)
                    .fetch_optional(&self.pool)
                    .await?;
                if let Some(row) = owner {
                    return Ok(row.text("user_id")?);
                }
            }
        })
        .await
    }

    async fn expired_sessions(&self, since: Millis) -> Result<Vec<String>, StoreError> {
        within(ANSWER_DEADLINE, async {
            let expired =
                sqlx::query("SELECT session_id FROM expired_sessions WHERE expired_at >= $1")
                    .bind(since)
                    .fetch_all(&self.pool)
                    .await?;
            Ok(expired
                .iter()
                .map(|r| r.text("session_id"))
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        within(ANSWER_DEADLINE, async {
            let n: i64 = sqlx::query_scalar(PENDING_COUNT)
                .fetch_one(&self.pool)
                .await?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        within(ANSWER_DEADLINE, async {
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

/// What [`fresh_database`] names its databases: the prefix, then the Unix
/// time in seconds and a random part.
const FRESH_PREFIX: &str = "herald_test_";

/// How long creating or dropping a database may take: the server copies
/// or removes a whole database, slower while other tests do the same.
const ADMIN_DEADLINE: Duration = Duration::from_secs(30);

/// A database left by [`fresh_database`] this long ago is dropped by the
/// next call: a test run that stopped early left it.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// For tests and tools, not the server: creates an empty database on the
/// server of `base` (a URL whose user may create databases), and returns
/// its URL. Stale ones it made before are dropped first.
pub async fn fresh_database(base: &str) -> Result<String, StoreError> {
    let mut admin = admin_connection(base).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    drop_stale(&mut admin, now).await;
    let name = format!(
        "{FRESH_PREFIX}{}_{:08x}",
        now.as_secs(),
        rand::random::<u32>()
    );
    within(ADMIN_DEADLINE, async {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        Ok(())
    })
    .await?;
    let _ = admin.close().await;
    with_database(base, &name)
}

/// For tests and tools: drops a database [`fresh_database`] made, given
/// its URL; any other database is refused. Its connections are ended.
pub async fn drop_fresh_database(base: &str, url: &str) -> Result<(), StoreError> {
    let name = url
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|name| made_fresh(name))
        .ok_or_else(|| {
            StoreError::Unavailable("not a database made by fresh_database".to_string())
        })?;
    let mut admin = admin_connection(base).await?;
    let dropped = drop_database(&mut admin, name).await;
    let _ = admin.close().await;
    dropped
}

/// True for a name [`fresh_database`] could have made, and so safe to
/// quote unescaped.
fn made_fresh(name: &str) -> bool {
    name.strip_prefix(FRESH_PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

async fn admin_connection(base: &str) -> Result<PgConnection, StoreError> {
    within(ACQUIRE_TIMEOUT, async {
        Ok(PgConnection::connect(base).await?)
    })
    .await
}

async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<(), StoreError> {
    within(ADMIN_DEADLINE, async {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut *admin)
            .await?;
        Ok(())
    })
    .await
}

/// Drops the databases [`fresh_database`] made over a day before `now`.
async fn drop_stale(admin: &mut PgConnection, now: Duration) {
    let names: Vec<String> = match within(ANSWER_DEADLINE, async {
        Ok(
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
                .bind(FRESH_PREFIX)
                .fetch_all(&mut *admin)
                .await?,
        )
    })
    .await
    {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!(error = %e, "could not list stale test databases");
            return;
        }
    };
    for name in names.iter().filter(|n| made_fresh(n)) {
        let made = name[FRESH_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|secs| secs.parse::<u64>().ok());
        let stale =
            made.is_some_and(|made| now.as_secs().saturating_sub(made) > STALE_AFTER.as_secs());
        if stale {
            if let Err(e) = drop_database(admin, name).await {
                tracing::warn!(database = %name, error = %e, "could not drop a stale test database");
            }
        }
    }
}

/// `base` with its database replaced by `name`, its parameters kept.
fn with_database(base: &str, name: &str) -> Result<String, StoreError> {
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base, None),
    };
    let authority = head
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| StoreError::Unavailable("the database URL has no scheme".to_string()))?;
    let server = match head[authority..].find('/') {
        Some(path) => &head[..authority + path],
        None => head,
    };
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    //! PostgreSQL's own tests: what only a shared, remote database can
    //! show (several nodes, a lost server). The contract both engines keep
    //! is tested in `conformance.rs`.

    use std::net::SocketAddr;
    use std::time::Instant;

    use futures::future::join_all;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    use super::*;
    use crate::store::conformance::{note, TestDatabase};
    use crate::trail;

    fn unavailable<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
        matches!(r, Err(StoreError::Unavailable(_)))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_agree_on_each_first_acknowledgement() {
        let db = TestDatabase::create().await;
        let (a, b) = (db.store().await, db.store().await);
        let notes: Vec<_> = (0..50).map(|i| note(&format!("n{i}"), "t", i)).collect();
        for n in &notes {
            a.insert(n, &["u".into()]).await.unwrap();
        }
        let races = join_all(notes.iter().map(|n| async {
            tokio::join!(
                a.acknowledge(&n.id, "u", 100),
                b.acknowledge(&n.id, "u", 200)
            )
        }))
        .await;
        for (n, (x, y)) in notes.iter().zip(races) {
            let (x, y) = (x.unwrap().unwrap(), y.unwrap().unwrap());
            assert!(x.first != y.first, "{}: exactly one is first", n.id);
            let winner = if x.first { 100 } else { 200 };
            assert_eq!((x.at, y.at), (winner, winner), "{}", n.id);
            let stored = b.user_notification(&n.id, "u").await.unwrap().unwrap();
            assert_eq!(stored.recipient.acknowledged_at, Some(winner));
        }
        a.close().await;
        b.close().await;
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_claim_each_due_step_once() {
        let db = TestDatabase::create().await;
        let (a, b) = (db.store().await, db.store().await);
        for i in 0..60 {
            let n = note(&format!("n{i}"), "t", i);
            a.insert_scheduled(&n, &["u".into()], &[(1, 10), (2, 20)])
                .await
                .unwrap();
        }
        // Several claims at once on each node, until none is left due:
        // level 2 waits for level 1, which nobody completes here.
        let mut claimed: Vec<(String, u32, &str)> = Vec::new();
        loop {
            let claims = (0..4).flat_map(|_| [(&a, "a"), (&b, "b")]);
            let rounds = join_all(claims.map(|(s, owner)| async move {
                let steps = s.claim_steps(100, owner, 10_000, 5).await.unwrap();
                (steps, owner)
            }))
            .await;
            let before = claimed.len();
            for (steps, owner) in rounds {
                claimed.extend(
                    steps
                        .into_iter()
                        .map(|c| (c.notification.id, c.level, owner)),
                );
            }
            if claimed.len() == before {
                break;
            }
        }
        let mut steps: Vec<_> = claimed.iter().map(|(id, level, _)| (id, level)).collect();
        steps.sort();
        steps.dedup();
        assert_eq!(steps.len(), claimed.len(), "a step was claimed twice");
        assert_eq!(steps.len(), 60, "every level 1, and only those");
        assert!(claimed.iter().all(|(_, level, _)| *level == 1));
        // The claim fences its completion: the other node cannot complete it.
        let (id, level, owner) = &claimed[0];
        let other = if *owner == "a" { "b" } else { "a" };
        let (owner_store, other_store) = if *owner == "a" { (&a, &b) } else { (&b, &a) };
        let finish = |by: &str| Completion {
            notification_id: id.clone(),
            level: *level,
            owner: by.into(),
            at: 200,
            add_users: vec![],
            add_role: None,
            audit: vec![],
            then: Then::Done,
        };
        assert!(!other_store.complete_step(&finish(other)).await.unwrap());
        assert!(owner_store.complete_step(&finish(owner)).await.unwrap());
        a.close().await;
        b.close().await;
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_appending_at_once_leave_one_verifiable_chain() {
        let db = TestDatabase::create().await;
        let (a, b) = (db.store().await, db.store().await);
        let users: Vec<String> = vec!["u".into(), "v".into()];
        let notes: Vec<_> = (0..40).map(|i| note(&format!("n{i}"), "t", i)).collect();
        // Both nodes store each notification at once: one `created` each.
        join_all(notes.iter().map(|n| async {
            let (x, y) = tokio::join!(a.insert(n, &users), b.insert(n, &users));
            x.unwrap();
            y.unwrap();
        }))
        .await;
        for i in 0..100 {
            for (s, socket) in [(&a, "sa"), (&b, "sb")] {
                s.record(
                    Entry::new(Kind::Delivered, 100 + i)
                        .notification(&notes[usize::try_from(i).unwrap() % 40].id)
                        .user("u")
                        .socket(socket),
                );
            }
        }
        // Two recipients acknowledge at once on two nodes: both are first
        // for themselves, and the notification closes once.
        let races = join_all(notes.iter().map(|n| async {
            tokio::join!(
                a.acknowledge(&n.id, "u", 1000),
                b.acknowledge(&n.id, "v", 1001)
            )
        }))
        .await;
        for (n, (x, y)) in notes.iter().zip(races) {
            let (x, y) = (x.unwrap().unwrap(), y.unwrap().unwrap());
            assert!(x.first && y.first, "{}", n.id);
            assert!(
                x.closed.is_some() != y.closed.is_some(),
                "{}: closed exactly once",
                n.id
            );
        }
        a.close().await;
        b.close().await;
        let c = db.store().await;
        let chain = c.audit_page(0, 0, Millis::MAX, 10_000).await.unwrap();
        let anchor = c.audit_anchor().await.unwrap();
        // 40 created, 200 delivered, 80 acknowledged, 40 closed.
        assert_eq!(trail::verify(&mut Chain::from(anchor), &chain), Ok(360));
        let count = |kind| chain.iter().filter(|r| r.entry.kind == kind).count();
        assert_eq!((count(Kind::Created), count(Kind::Closed)), (40, 40));
        c.close().await;
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_storing_one_notification_agree_on_its_body_and_recipients() {
        let db = TestDatabase::create().await;
        let (a, b) = (db.store().await, db.store().await);
        let forward: Vec<String> = ["u1", "u2", "u3"].map(String::from).to_vec();
        let backward: Vec<String> = forward.iter().rev().cloned().collect();
        for round in 0..20 {
            let id = format!("n{round}");
            if round % 2 == 1 {
                // Already stored: both inserts only add recipients, in
                // opposite orders (where two transactions can deadlock).
                a.insert(&note(&id, "before", 0), &["u0".into()])
                    .await
                    .unwrap();
            }
            let (from_a, from_b) = (note(&id, "from a", 1), note(&id, "from b", 2));
            let (x, y) = tokio::join!(a.insert(&from_a, &forward), b.insert(&from_b, &backward));
            let (x, y) = (x.unwrap(), y.unwrap());
            assert_eq!(x.notification.body, y.notification.body, "{id}");
            if round % 2 == 1 {
                assert_eq!(x.notification.body["title"], "before");
            }
            for (i, user) in forward.iter().enumerate() {
                let j = backward.iter().position(|u| u == user).unwrap();
                assert!(
                    x.new_for[i] != y.new_for[j],
                    "{id}: {user} is new for exactly one node"
                );
            }
            let (_, recipients) = a.notification(&id).await.unwrap().unwrap();
            assert_eq!(recipients.len(), 3 + round % 2, "{id}");
        }
        a.close().await;
        b.close().await;
        db.drop().await;
    }

    #[tokio::test]
    async fn ten_thousand_recipients_are_stored_at_once() {
        let db = TestDatabase::create().await;
        let s = db.store().await;
        let users: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
        let inserted = s.insert(&note("big", "t", 1), &users).await.unwrap();
        assert_eq!(inserted.new_for.len(), 10_000);
        assert!(inserted.new_for.iter().all(|new| *new));
        let mut more = users.clone();
        more.insert(5000, "late".into());
        let again = s.insert(&note("big", "second", 2), &more).await.unwrap();
        assert_eq!(again.notification.body["title"], "t");
        let new: Vec<usize> = (0..more.len()).filter(|i| again.new_for[*i]).collect();
        assert_eq!(new, [5000], "only the late user is new");
        let (_, recipients) = s.notification("big").await.unwrap().unwrap();
        let stored: Vec<&str> = recipients.iter().map(|r| r.user_id.as_str()).collect();
        let expected: Vec<&str> = users.iter().map(String::as_str).chain(["late"]).collect();
        assert_eq!(stored, expected, "in the order they were added");
        let inbox = s
            .list("user-9999", StateFilter::Unacknowledged, 0, 10)
            .await
            .unwrap();
        assert_eq!(inbox.len(), 1);
        s.close().await;
        db.drop().await;
    }

    #[tokio::test]
    async fn unacknowledged_listings_read_the_partial_index() {
        let db = TestDatabase::create().await;
        let s = db.store().await;
        for i in 0..200 {
            let id = format!("n{i}");
            s.insert(&note(&id, "t", i), &["u".into(), "v".into()])
                .await
                .unwrap();
            if i >= 10 {
                s.acknowledge(&id, "u", 1000).await.unwrap();
            }
        }
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("ANALYZE recipients")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut conn)
            .await
            .unwrap();
        for filter in [
            StateFilter::Unacknowledged,
            StateFilter::Pending,
            StateFilter::Delivered,
        ] {
            let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", list_query(filter)))
                .bind("u")
                .bind(0_i64)
                .bind(100_i64)
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let plan = plan.join("\n");
            assert!(
                plan.contains("recipients_unacknowledged"),
                "{filter:?}:\n{plan}"
            );
        }
        conn.close().await.unwrap();
        s.close().await;
        db.drop().await;
    }

    #[tokio::test]
    async fn closing_writes_the_queued_delivery_marks() {
        let db = TestDatabase::create().await;
        let s = db.store().await;
        let users: Vec<String> = (0..300).map(|i| format!("u{i}")).collect();
        s.insert(&note("n", "t", 1), &users).await.unwrap();
        for user in &users {
            s.mark_delivered("n", user, 50);
        }
        s.close().await;
        assert_eq!(s.marks.dropped(), 0);
        let other = db.store().await;
        let (_, recipients) = other.notification("n").await.unwrap().unwrap();
        assert!(recipients.iter().all(|r| r.delivered_at == Some(50)));
        other.close().await;
        db.drop().await;
    }

    #[tokio::test]
    async fn connecting_to_no_server_fails_within_seconds() {
        // A port nothing listens on: connections are refused.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://postgres@127.0.0.1:{port}/herald");
        let started = Instant::now();
        assert!(unavailable(PostgresStore::connect(&url).await.map(|_| ())));
        assert!(started.elapsed() < ACQUIRE_TIMEOUT + Duration::from_secs(2));
    }

    /// What a [`Proxy`] does with the connections it carries.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Link {
        Up,
        /// Connections stay open, nothing crosses (a network partition).
        Silent,
        /// Every connection is closed as soon as it opens (a server down).
        Cut,
    }

    /// A TCP relay to the test server, to take it away from a store.
    struct Proxy {
        addr: SocketAddr,
        link: watch::Sender<Link>,
    }

    impl Proxy {
        async fn start(upstream: String) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (link, watching) = watch::channel(Link::Up);
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(carry(client, upstream.clone(), watching.clone()));
                }
            });
            Self { addr, link }
        }

        fn set(&self, link: Link) {
            self.link.send_replace(link);
        }

        /// `url` with its server replaced by this relay.
        fn url(&self, url: &str) -> String {
            let (scheme, rest) = url.split_once("://").unwrap();
            let (authority, path) = rest.split_once('/').unwrap();
            let user = authority
                .rsplit_once('@')
                .map(|(user, _)| format!("{user}@"))
                .unwrap_or_default();
            format!("{scheme}://{user}{}/{path}", self.addr)
        }
    }

    async fn carry(mut client: TcpStream, upstream: String, mut link: watch::Receiver<Link>) {
        if *link.borrow_and_update() != Link::Up {
            return hold(link, client).await;
        }
        let Ok(mut server) = TcpStream::connect(&upstream).await else {
            return;
        };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
            _ = link.changed() => hold(link, (client, server)).await,
        }
    }

    /// Keeps `sockets` open, carrying nothing, while the link is silent.
    async fn hold<T>(mut link: watch::Receiver<Link>, sockets: T) {
        while *link.borrow_and_update() == Link::Silent {
            if link.changed().await.is_err() {
                break;
            }
        }
        drop(sockets);
    }

    #[tokio::test]
    async fn a_lost_server_is_answered_unavailable_within_seconds_and_comes_back() {
        let db = TestDatabase::create().await;
        let options = PgConnectOptions::from_str(&db.url).unwrap();
        let proxy = Proxy::start(format!("{}:{}", options.get_host(), options.get_port())).await;
        let s = PostgresStore::connect(&proxy.url(&db.url)).await.unwrap();
        s.insert(&note("n", "t", 1), &["u".into()]).await.unwrap();
        let quick = ANSWER_DEADLINE + Duration::from_secs(1);

        // Partitioned: connections open, no answer.
        proxy.set(Link::Silent);
        let started = Instant::now();
        assert!(unavailable(s.ping().await));
        assert!(started.elapsed() < quick, "{:?}", started.elapsed());

        // Down: every connection closed.
        proxy.set(Link::Cut);
        let started = Instant::now();
        assert!(unavailable(s.list("u", StateFilter::All, 0, 10).await));
        assert!(unavailable(
            s.insert(&note("m", "t", 2), &["u".into()]).await
        ));
        // A mark queued now fails through its retries, and is counted.
        s.mark_delivered("n", "u", 3);
        assert!(unavailable(s.acknowledge("n", "u", 4).await));
        assert!(started.elapsed() < quick, "{:?}", started.elapsed());
        let waited = Instant::now();
        while s.marks.dropped() == 0 && waited.elapsed() < quick {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(s.marks.dropped(), 1);

        // Back: the store answers again, without reconnecting by hand.
        proxy.set(Link::Up);
        let back = Instant::now();
        while s.ping().await.is_err() {
            assert!(back.elapsed() < quick, "the store did not come back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let a = s.acknowledge("n", "u", 5).await.unwrap().unwrap();
        assert_eq!((a.at, a.first), (5, true));
        s.close().await;
        db.drop().await;
    }

    #[tokio::test]
    async fn a_fresh_database_replaces_those_left_over_a_day() {
        let db = TestDatabase::create().await;
        let base = PgConnectOptions::from_str(&db.url).unwrap();
        let mut admin = PgConnection::connect_with(&base.database("postgres"))
            .await
            .unwrap();
        // Made in 1970 by the name's reckoning; one made now stays.
        for name in ["herald_test_1_0badf00d", "herald_test_1_0badf00e"] {
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        let next = TestDatabase::create().await;
        let left: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'herald_test_%'",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(!left.iter().any(|n| n.starts_with("herald_test_1_0badf00")));
        let name = |url: &str| url.rsplit('/').next().unwrap().to_string();
        assert!(left.contains(&name(&db.url)) && left.contains(&name(&next.url)));
        admin.close().await.unwrap();
        next.drop().await;
        db.drop().await;
    }

    #[test]
    fn a_fresh_database_keeps_the_server_and_parameters_of_its_base() {
        let url = |base| with_database(base, "herald_test_1_ab").unwrap();
        assert_eq!(
            url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/herald_test_1_ab"
        );
        assert_eq!(
            url("postgres://u:p@db:5432?sslmode=disable"),
            "postgres://u:p@db:5432/herald_test_1_ab?sslmode=disable"
        );
        assert_eq!(url("postgresql://h"), "postgresql://h/herald_test_1_ab");
        assert!(with_database("nowhere", "x").is_err());
        assert!(made_fresh("herald_test_1700000000_0a1b2c3d"));
        assert!(!made_fresh("herald_test_"));
        assert!(!made_fresh("postgres"));
        assert!(
            !made_fresh("herald_test_1_AB"),
            "unquoted, it would name another"
        );
        assert!(!made_fresh("herald_test_1; DROP TABLE x"));
    }
}
