//! Storing new notifications on PostgreSQL: the notifications waiting
//! together are stored in one statement (their rows, steps, recipients and
//! `created` records) and one commit (`group.rs`); one whose id is already
//! stored, or a batch that failed, is stored alone, retried when two nodes
//! race on one id.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use sqlx::{PgPool, Row};
use tokio::sync::Notify;

use super::group::Together;
use super::unsealed::{insert_unsealed_if, queue, EntryColumns};
use crate::clock::Millis;
use crate::notification::Notification;
use crate::store::rows;
use crate::store::{Inserted, StoreError};
use crate::trail::record;

/// Attempts at an insert that lost a race (a deadlock between two nodes
/// storing the same notification, or its purge in between).
const INSERT_ATTEMPTS: u32 = 3;

/// One notification to store, for its recipients, with its steps.
pub(super) struct Insert {
    pub n: Arc<Notification>,
    pub users: Vec<String>,
    pub steps: Vec<(u32, Millis)>,
}

impl Insert {
    fn created(&self) -> crate::trail::Entry {
        record::created(&self.n.id, self.n.created_at, &self.users)
    }

    /// The answer for a fresh notification, given the users whose
    /// recipient rows were new.
    fn inserted(&self, added: &[String]) -> Inserted {
        let mut added: HashSet<&str> = added.iter().map(String::as_str).collect();
        Inserted {
            notification: self.n.clone(),
            new_for: self
                .users
                .iter()
                .map(|u| added.remove(u.as_str()))
                .collect(),
        }
    }
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

static INSERT_FRESH: LazyLock<String> = LazyLock::new(insert_fresh_statement);

/// [`insert_fresh_statement`] for many notifications at once (each id once):
/// the rows of every one that is new, in the order given (so each user's
/// inbox and the chain follow the callers' order), and none of one whose
/// id is already stored. Answers the new ids and the (id, user) pairs whose
/// recipient rows were new.
fn insert_batch_statement() -> String {
    format!(
        "WITH fresh AS (INSERT INTO notifications (id, body, created_at, severity) \
         SELECT i.id, i.body, i.created_at, i.severity \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[]) \
         WITH ORDINALITY AS i(id, body, created_at, severity, call) ORDER BY i.call \
         ON CONFLICT (id) DO NOTHING RETURNING id), \
         steps AS (INSERT INTO escalation_steps (notification_id, level, due_at) \
         SELECT s.id, s.level, s.due_at \
         FROM UNNEST($5::text[], $6::bigint[], $7::bigint[]) AS s(id, level, due_at) \
         WHERE s.id IN (SELECT id FROM fresh)), \
         added AS (INSERT INTO recipients (notification_id, user_id, created_at) \
         SELECT u.id, u.user_id, u.created_at \
         FROM UNNEST($8::text[], $9::text[], $10::bigint[]) \
         WITH ORDINALITY AS u(id, user_id, created_at, position) \
         WHERE u.id IN (SELECT id FROM fresh) ORDER BY u.position \
         ON CONFLICT (notification_id, user_id) DO NOTHING RETURNING notification_id, user_id), \
         created AS ({}) \
         SELECT ARRAY(SELECT id FROM fresh) AS fresh, \
         ARRAY(SELECT notification_id FROM added) AS added_to, \
         ARRAY(SELECT user_id FROM added) AS added",
        insert_unsealed_if(11, "", "e.notification_id IN (SELECT id FROM fresh)")
    )
}

static INSERT_BATCH: LazyLock<String> = LazyLock::new(insert_batch_statement);

/// What storing notifications needs: the pool, and the sealer to tell.
pub(super) struct Inserts {
    pub pool: PgPool,
    pub sealing: Arc<Notify>,
}

impl Inserts {
    /// [`insert_fresh_statement`]: the users each recipient row was new for, or
    /// None when the id was already stored.
    async fn insert_fresh(&self, c: &Insert) -> Result<Option<Vec<String>>, sqlx::Error> {
        let (levels, due): (Vec<i64>, Vec<Millis>) = c
            .steps
            .iter()
            .map(|(level, due_at)| (i64::from(*level), *due_at))
            .unzip();
        let created = EntryColumns::of(&[c.created()]);
        let q = sqlx::query(&INSERT_FRESH)
            .bind(&c.n.id)
            .bind(c.n.to_json())
            .bind(c.n.created_at)
            .bind(c.n.severity())
            .bind(&levels)
            .bind(&due)
            .bind(&c.users);
        let row = created.bind(q).fetch_one(&self.pool).await?;
        let (fresh, added): (bool, Vec<String>) = (row.try_get("fresh")?, row.try_get("added")?);
        if !fresh {
            return Ok(None);
        }
        self.sealing.notify_one();
        Ok(Some(added))
    }

    /// One attempt at storing a notification whose id may be stored
    /// already, in one transaction: a new notification with its steps and
    /// its `created` record, or none of them.
    async fn insert_once(&self, c: &Insert) -> Result<Inserted, Failed> {
        let n = &c.n;
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
            let (levels, due): (Vec<i64>, Vec<Millis>) = c
                .steps
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
                Some(row) => Arc::new(rows::notification(&row)?),
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
        .bind(&c.users)
        .bind(n.created_at)
        .fetch_all(&mut *tx)
        .await?;
        if fresh {
            queue(&mut *tx, &[c.created()]).await?;
        }
        tx.commit().await?;
        if fresh {
            self.sealing.notify_one();
        }
        let mut inserted = c.inserted(&added);
        inserted.notification = notification;
        Ok(inserted)
    }
}

#[async_trait]
impl Together for Inserts {
    type Call = Insert;
    type Answer = Inserted;

    async fn together(
        &self,
        calls: &[Insert],
    ) -> Result<Vec<Option<Result<Inserted, StoreError>>>, StoreError> {
        // Each id once: a second call for one id in the batch runs alone,
        // after the first is committed, and finds it stored.
        let mut ids = HashSet::with_capacity(calls.len());
        let taken: Vec<bool> = calls.iter().map(|c| ids.insert(c.n.id.as_str())).collect();
        let mut notifications = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut steps = (Vec::new(), Vec::new(), Vec::new());
        let mut recipients = (Vec::new(), Vec::new(), Vec::new());
        let mut created = Vec::new();
        for c in calls
            .iter()
            .zip(&taken)
            .filter(|(_, t)| **t)
            .map(|(c, _)| c)
        {
            notifications.0.push(c.n.id.as_str());
            notifications.1.push(c.n.to_json());
            notifications.2.push(c.n.created_at);
            notifications.3.push(c.n.severity());
            for (level, due_at) in &c.steps {
                steps.0.push(c.n.id.as_str());
                steps.1.push(i64::from(*level));
                steps.2.push(*due_at);
            }
            for user in &c.users {
                recipients.0.push(c.n.id.as_str());
                recipients.1.push(user.as_str());
                recipients.2.push(c.n.created_at);
            }
            created.push(c.created());
        }
        let created = EntryColumns::of(&created);
        let q = sqlx::query(&INSERT_BATCH)
            .bind(&notifications.0)
            .bind(&notifications.1)
            .bind(&notifications.2)
            .bind(&notifications.3)
            .bind(&steps.0)
            .bind(&steps.1)
            .bind(&steps.2)
            .bind(&recipients.0)
            .bind(&recipients.1)
            .bind(&recipients.2);
        let row = created.bind(q).fetch_one(&self.pool).await?;
        let fresh: Vec<String> = row.try_get("fresh")?;
        let added_to: Vec<String> = row.try_get("added_to")?;
        let added: Vec<String> = row.try_get("added")?;
        if !fresh.is_empty() {
            self.sealing.notify_one();
        }
        let fresh: HashSet<String> = fresh.into_iter().collect();
        let mut added_by_id: HashMap<String, Vec<String>> = HashMap::new();
        for (id, user) in added_to.into_iter().zip(added) {
            added_by_id.entry(id).or_default().push(user);
        }
        Ok(calls
            .iter()
            .zip(taken)
            .map(|(c, taken)| {
                (taken && fresh.contains(&c.n.id)).then(|| {
                    Ok(c.inserted(added_by_id.get(&c.n.id).map_or(&[][..], Vec::as_slice)))
                })
            })
            .collect())
    }

    async fn alone(&self, c: &Insert) -> Result<Inserted, StoreError> {
        // Most notifications are new: one statement stores them.
        if let Some(added) = self.insert_fresh(c).await? {
            return Ok(c.inserted(&added));
        }
        let mut attempt = 1;
        loop {
            match self.insert_once(c).await {
                Ok(inserted) => return Ok(inserted),
                Err(Failed::Again(why)) if attempt < INSERT_ATTEMPTS => {
                    tracing::debug!(id = %c.n.id, attempt, why, "storing a notification again");
                    attempt += 1;
                }
                Err(Failed::Again(why)) => return Err(StoreError::Unavailable(why)),
                Err(Failed::Store(e)) => return Err(e),
            }
        }
    }
}
