//! The PostgreSQL store's audit trail as the API and `herald audit verify`
//! read it: a notification's timeline (sealed and unsealed records), pages
//! of the chain, its anchor, sealing on demand and the unsealed records'
//! count. Writing is in `unsealed.rs`, sealing in `seal.rs`, the chain in
//! `chain.rs`.

use async_trait::async_trait;
use sqlx::postgres::PgRow;

use super::deadline::{with_deadline, ANSWER_DEADLINE};
use super::seal;
use super::unsealed::entry_columns;
use super::PostgresStore;
use crate::clock::Millis;
use crate::store::rows::{self, Columns};
use crate::store::{AuditTrail, StoreError, Unsealed};
use crate::trail::{Anchor, Chain, Entry, Record, Stored};

/// A notification's records: the sealed ones in chain order, then the
/// unsealed ones in the order the sealer will give them. One statement,
/// so one snapshot: a record being sealed meanwhile is read exactly once.
const TIMELINE: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM (SELECT 0 AS part, seq AS place, ",
    entry_columns!(),
    " FROM audit WHERE notification_id = $1 \
     UNION ALL SELECT 1, id, ",
    entry_columns!(),
    " FROM audit_unsealed WHERE notification_id = $1) t ORDER BY part, place"
);

impl PostgresStore {
    /// The `audit` rows with `seq > after` (and `from <= at < to` in
    /// `period`), in chain order, at most `limit`.
    async fn audit_rows(
        &self,
        after: i64,
        period: Option<(Millis, Millis)>,
        limit: u32,
    ) -> Result<Vec<PgRow>, StoreError> {
        let select = rows::SELECT_AUDIT;
        let sql = match period {
            Some(_) => {
                format!("{select} WHERE seq > $1 AND at >= $2 AND at < $3 ORDER BY seq LIMIT $4")
            }
            None => format!("{select} WHERE seq > $1 ORDER BY seq LIMIT $2"),
        };
        with_deadline(ANSWER_DEADLINE, async {
            let mut query = sqlx::query(&sql).bind(after);
            if let Some((from, to)) = period {
                query = query.bind(from).bind(to);
            }
            Ok(query.bind(i64::from(limit)).fetch_all(&self.pool).await?)
        })
        .await
    }
}

#[async_trait]
impl AuditTrail for PostgresStore {
    fn record(&self, entry: Entry) {
        self.marks.record(entry);
    }

    async fn timeline(&self, id: &str) -> Result<Vec<Entry>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let found = sqlx::query(TIMELINE).bind(id).fetch_all(&self.pool).await?;
            found.iter().map(rows::audit_entry).collect()
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
        with_deadline(ANSWER_DEADLINE, async {
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

    /// The sealer's head: what it links the next sealed record to.
    async fn audit_head(&self) -> Result<Chain, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
            Ok(Chain {
                seq: r.integer("seq")?,
                hash: r.text("hash")?,
            })
        })
        .await
    }

    async fn seal_audit(&self) -> Result<u64, StoreError> {
        // Those this node queued first: they are committed before sealing.
        self.marks.settle().await;
        seal::seal_all_waiting(&self.pool).await
    }

    async fn unsealed(&self) -> Result<Unsealed, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let (count, age): (i64, Option<f64>) = sqlx::query_as(
                "SELECT count(*), \
                 (extract(epoch FROM clock_timestamp() - min(queued_at)) * 1000)::float8 \
                 FROM audit_unsealed",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(Unsealed {
                count: count.max(0) as u64,
                oldest_age_ms: age.map(|a| a.max(0.0) as u64),
            })
        })
        .await
    }
}
