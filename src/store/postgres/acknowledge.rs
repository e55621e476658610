//! First acknowledgements on PostgreSQL: the acknowledgements waiting
//! together are written in one statement and one commit (`group.rs`), the
//! closing each makes included; the first acknowledgement by any recipient
//! closes its notification, once, decided by the database even when two
//! nodes acknowledge at once. One that is not a first acknowledgement, or
//! a batch that failed, runs alone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use sqlx::{PgPool, Row};
use tokio::sync::Notify;

use super::group::Together;
use super::unsealed::{insert_unsealed_if, EntryColumns};
use crate::clock::Millis;
use crate::store::{Acknowledged, Closed, Source, StoreError};
use crate::trail::{record, Entry};

/// One recipient's acknowledgement.
pub(super) struct Ack {
    pub id: String,
    pub user: String,
    pub at: Millis,
    pub source: Source,
}

impl Ack {
    /// Both forms of its one record, as it reads when the acknowledgement
    /// did not close the notification, then when it did: the statement
    /// keeps the one that is true.
    fn records(&self) -> [Entry; 2] {
        let acknowledged = |closing| {
            record::acknowledged(
                &self.id,
                &self.user,
                self.at,
                self.source.socket_id.as_deref(),
                self.source.remote.as_deref(),
                closing,
            )
        };
        [acknowledged(false), acknowledged(true)]
    }
}

/// A first acknowledgement, the closing it makes if the notification is
/// still open (its steps go), and its one record, in one statement. Both
/// forms of the record are bound from `$4`. Two nodes acknowledging at
/// once close it once: the second closing waits for the first's row and
/// then finds it closed. Answers the recipient's creation time (None:
/// acknowledged before, or not a recipient) and whether it closed the
/// notification.
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

/// [`acknowledge_statement`] for many acknowledgements at once (each
/// recipient once). Of several first acknowledgements of one open
/// notification, the earliest caller's closes it. Each call's two records
/// are entries `2c - 1` and `2c` (call `c` from 1), and it keeps the one
/// that is true, so the chain follows the callers' order. Answers, per
/// call, the recipient's creation time (None: not a first acknowledgement)
/// and whether it closed the notification.
fn acknowledge_batch_statement() -> String {
    format!(
        "WITH input AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]) \
         WITH ORDINALITY AS a(id, user_id, at, call)), \
         ack AS (UPDATE recipients r SET acknowledged_at = a.at FROM input a \
         WHERE r.notification_id = a.id AND r.user_id = a.user_id AND r.acknowledged_at IS NULL \
         RETURNING a.call, r.created_at), \
         first AS (SELECT DISTINCT ON (a.id) a.id, a.user_id, a.at \
         FROM input a JOIN ack k ON k.call = a.call ORDER BY a.id, a.call), \
         closed AS (UPDATE notifications n SET closed_at = f.at, closed_by = f.user_id \
         FROM first f WHERE n.id = f.id AND n.closed_at IS NULL RETURNING n.id, n.closed_by), \
         steps AS (DELETE FROM escalation_steps WHERE notification_id IN (SELECT id FROM closed)), \
         outcome AS (SELECT a.call AS call, k.created_at AS created_at, \
         (c.id IS NOT NULL) AS closing FROM input a \
         LEFT JOIN ack k ON k.call = a.call \
         LEFT JOIN closed c ON c.id = a.id AND c.closed_by = a.user_id), \
         recorded AS ({}) \
         SELECT call, created_at, closing FROM outcome ORDER BY call",
        insert_unsealed_if(
            4,
            "outcome o, ",
            "o.call = (e.position + 1) / 2 AND o.created_at IS NOT NULL \
             AND ((e.position % 2 = 0) = o.closing)"
        )
    )
}

static ACKNOWLEDGE_BATCH: LazyLock<String> = LazyLock::new(acknowledge_batch_statement);

/// Whose sockets to tell that each of `closed` (id, closer, time) closed:
/// read after the closing committed, so a role member whose joining the
/// closing waited for is among them (a join after it leaves the closed
/// notification out). One statement for them all.
async fn closed_by(
    pool: &PgPool,
    closed: &[(&str, &str, Millis)],
) -> Result<HashMap<String, Closed>, StoreError> {
    let ids: Vec<&str> = closed.iter().map(|(id, _, _)| *id).collect();
    let rows = sqlx::query(
        "SELECT c.id, \
         ARRAY(SELECT user_id FROM recipients WHERE notification_id = c.id ORDER BY seq) AS users, \
         ARRAY(SELECT role FROM role_recipients WHERE notification_id = c.id ORDER BY role) AS roles \
         FROM UNNEST($1::text[]) AS c(id)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut read = HashMap::with_capacity(rows.len());
    for (row, (id, by, at)) in rows.iter().zip(closed) {
        read.insert(
            id.to_string(),
            Closed {
                at: *at,
                by: by.to_string(),
                users: row.try_get("users")?,
                roles: row.try_get("roles")?,
            },
        );
    }
    Ok(read)
}

/// What acknowledging needs: the pool, and the sealer to tell.
pub(super) struct Acks {
    pub pool: PgPool,
    pub sealing: Arc<Notify>,
}

#[async_trait]
impl Together for Acks {
    type Call = Ack;
    type Answer = Option<Acknowledged>;

    async fn together(
        &self,
        calls: &[Ack],
    ) -> Result<Vec<Option<Result<Option<Acknowledged>, StoreError>>>, StoreError> {
        // Each recipient once: another call for the same one runs alone,
        // after this commit, and reads the first time.
        let mut seen = HashSet::with_capacity(calls.len());
        let taken: Vec<bool> = calls
            .iter()
            .map(|c| seen.insert((c.id.as_str(), c.user.as_str())))
            .collect();
        let batch: Vec<&Ack> = calls
            .iter()
            .zip(&taken)
            .filter_map(|(c, taken)| taken.then_some(c))
            .collect();
        let ids: Vec<&str> = batch.iter().map(|c| c.id.as_str()).collect();
        let users: Vec<&str> = batch.iter().map(|c| c.user.as_str()).collect();
        let ats: Vec<Millis> = batch.iter().map(|c| c.at).collect();
        let records: Vec<Entry> = batch.iter().flat_map(|c| c.records()).collect();
        let records = EntryColumns::of(&records);
        let q = sqlx::query(&ACKNOWLEDGE_BATCH)
            .bind(&ids)
            .bind(&users)
            .bind(&ats);
        let rows = records.bind(q).fetch_all(&self.pool).await?;
        // The acknowledgements are committed: from here on a failure is
        // each call's answer, and none of them runs again.
        let outcomes: Result<Vec<(Option<Millis>, bool)>, StoreError> = if rows.len() == batch.len()
        {
            rows.iter()
                .map(|row| Ok((row.try_get("created_at")?, row.try_get("closing")?)))
                .collect()
        } else {
            Err(StoreError::Corrupt(format!(
                "{} acknowledgements written, {} answered",
                batch.len(),
                rows.len()
            )))
        };
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(e) => {
                return Ok(calls
                    .iter()
                    .zip(taken)
                    .map(|(_, taken)| taken.then(|| Err(e.clone())))
                    .collect())
            }
        };
        if outcomes.iter().any(|(first, _)| first.is_some()) {
            self.sealing.notify_one();
        }
        let closing: Vec<(&str, &str, Millis)> = batch
            .iter()
            .zip(&outcomes)
            .filter(|(_, (_, closing))| *closing)
            .map(|(c, _)| (c.id.as_str(), c.user.as_str(), c.at))
            .collect();
        let mut closed = if closing.is_empty() {
            Ok(HashMap::new())
        } else {
            closed_by(&self.pool, &closing).await
        };
        let mut outcomes = outcomes.into_iter();
        Ok(calls
            .iter()
            .zip(taken)
            .map(|(c, taken)| {
                if !taken {
                    return None;
                }
                let (created_at, closing) = outcomes.next()?;
                // Not a first acknowledgement: it runs alone, and reads
                // the time that stands.
                let created_at = created_at?;
                let closed = match (&mut closed, closing) {
                    (_, false) => None,
                    (Ok(read), true) => read.remove(&c.id),
                    (Err(e), true) => return Some(Err(e.clone())),
                };
                Some(Ok(Some(Acknowledged {
                    at: c.at,
                    first: true,
                    created_at,
                    closed,
                })))
            })
            .collect())
    }

    async fn alone(&self, c: &Ack) -> Result<Option<Acknowledged>, StoreError> {
        let records = EntryColumns::of(&c.records());
        let q = sqlx::query(&ACKNOWLEDGE)
            .bind(c.at)
            .bind(&c.id)
            .bind(&c.user);
        let row = records.bind(q).fetch_one(&self.pool).await?;
        let first: Option<Millis> = row.try_get("created_at")?;
        if let Some(created_at) = first {
            self.sealing.notify_one();
            let closed = if row.try_get("closed")? {
                let mut read =
                    closed_by(&self.pool, &[(c.id.as_str(), c.user.as_str(), c.at)]).await?;
                read.remove(&c.id)
            } else {
                None
            };
            return Ok(Some(Acknowledged {
                at: c.at,
                first: true,
                created_at,
                closed,
            }));
        }
        // Acknowledged before, or not a recipient. An acknowledgement
        // racing this one (another node's) held the row until its commit,
        // so this read, a new statement, sees its time.
        let stored: Option<(Option<Millis>, Millis)> = sqlx::query_as(
            "SELECT acknowledged_at, created_at FROM recipients \
             WHERE notification_id = $1 AND user_id = $2",
        )
        .bind(&c.id)
        .bind(&c.user)
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
    }
}
