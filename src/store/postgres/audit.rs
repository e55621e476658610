//! The PostgreSQL store's audit trail: writing records unsealed, in the
//! transaction of the write they describe (no lock shared by the nodes);
//! appending to the one hash chain, which only the sealer (`seal.rs`) and
//! retention do, holding the chain's head; removing the chain's oldest
//! records at retention; and reading it back, the unsealed records too.

use async_trait::async_trait;
use sqlx::{PgConnection, PgExecutor};

use super::deadline::{with_deadline, ANSWER_DEADLINE};
use super::seal::{self, SEAL_LOCK};
use super::PostgresStore;
use crate::clock::Millis;
use crate::store::rows::{self, audit_columns, Columns};
use crate::store::{AuditTrail, StoreError, Unsealed};
use crate::trail::{record, Anchor, Chain, Entry, Record};

/// An entry's columns in `audit_unsealed`, in the order of [`EntryColumns`].
macro_rules! entry_columns {
    () => {
        "at, kind, notification_id, user_id, socket_id, level, detail"
    };
}
pub(super) use entry_columns;

/// Entries as one array per column, so that one statement writes any
/// number of them.
#[derive(Default)]
pub(super) struct EntryColumns {
    ats: Vec<Millis>,
    kinds: Vec<&'static str>,
    notifications: Vec<Option<String>>,
    users: Vec<Option<String>>,
    sockets: Vec<Option<String>>,
    levels: Vec<Option<i64>>,
    details: Vec<Option<String>>,
}

impl EntryColumns {
    pub(super) fn of(entries: &[Entry]) -> Self {
        let mut c = Self::default();
        for e in entries {
            c.ats.push(e.at);
            c.kinds.push(e.kind.as_str());
            c.notifications.push(e.notification_id.clone());
            c.users.push(e.user_id.clone());
            c.sockets.push(e.socket_id.clone());
            c.levels.push(e.level.map(i64::from));
            // The text the hash will cover once the record is sealed.
            c.details.push(e.detail.as_ref().map(|d| d.to_string()));
        }
        c
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ats.is_empty()
    }

    /// Binds the seven arrays, in the order [`insert_unsealed`] numbers them.
    pub(super) fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        q.bind(&self.ats)
            .bind(&self.kinds)
            .bind(&self.notifications)
            .bind(&self.users)
            .bind(&self.sockets)
            .bind(&self.levels)
            .bind(&self.details)
    }
}

/// The statement that queues the entries bound from placeholder `$first`
/// on (seven arrays, [`EntryColumns::bind`]) as unsealed records, in the
/// order given: their ids, and so their places in the chain, follow it.
pub(super) fn insert_unsealed(first: usize) -> String {
    insert_unsealed_if(first, "", "TRUE")
}

/// [`insert_unsealed`], writing only the entries for which `condition`
/// holds, with the tables `gate` names (of a `WITH` before it) beside
/// them: "fresh, " writes nothing unless `fresh` has a row. Their columns
/// must not be named as an entry's; `e.position` is an entry's, from 1.
pub(super) fn insert_unsealed_if(first: usize, gate: &str, condition: &str) -> String {
    let p: Vec<String> = (first..first + 7).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO audit_unsealed ({cols}) SELECT {cols} FROM {gate}UNNEST(\
         {}::bigint[], {}::text[], {}::text[], {}::text[], {}::text[], {}::bigint[], {}::text[]) \
         WITH ORDINALITY AS e({cols}, position) WHERE {condition} ORDER BY e.position",
        p[0],
        p[1],
        p[2],
        p[3],
        p[4],
        p[5],
        p[6],
        cols = entry_columns!(),
    )
}

/// Queues `entries` as unsealed records through `conn`: in the caller's
/// transaction, they commit exactly when its writes do. Takes no lock any
/// other write waits for.
pub(super) async fn queue<'c>(
    conn: impl PgExecutor<'c>,
    entries: &[Entry],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let columns = EntryColumns::of(entries);
    columns
        .bind(sqlx::query(&insert_unsealed(1)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends `entries` to the chain itself in the transaction on `conn`,
/// which holds the chain's head row locked until it ends: only the sealer
/// and retention do, under [`SEAL_LOCK`]. (A node of a Herald version
/// before sealing appends the same way, holding the same row, so the
/// chain stays one while the nodes are upgraded one by one.)
pub(super) async fn append_sealed(
    conn: &mut PgConnection,
    entries: Vec<Entry>,
) -> Result<Chain, sqlx::Error> {
    let (seq, hash): (i64, String) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *conn)
            .await?;
    let mut head = Chain { seq, hash };
    if entries.is_empty() {
        return Ok(head);
    }
    let records: Vec<Record> = entries.into_iter().map(|e| head.append(e)).collect();
    // One array per column, for one statement whatever the number of
    // records, and the head moved by the same statement.
    let n = records.len();
    let mut c = SealedColumns::with_capacity(n);
    for r in &records {
        c.push(r);
    }
    let moved: i64 = sqlx::query_scalar(concat!(
        "WITH sealed AS (INSERT INTO audit (",
        audit_columns!(),
        ") SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
         $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[]) \
         RETURNING 1) \
         UPDATE audit_head SET seq = $11, hash = $12 WHERE id = 1 \
         RETURNING (SELECT count(*) FROM sealed)",
    ))
    .bind(c.seqs)
    .bind(c.ats)
    .bind(c.kinds)
    .bind(c.notifications)
    .bind(c.users)
    .bind(c.sockets)
    .bind(c.levels)
    .bind(c.details)
    .bind(c.prevs)
    .bind(c.hashes)
    .bind(head.seq)
    .bind(&head.hash)
    .fetch_one(&mut *conn)
    .await?;
    debug_assert_eq!(moved, n as i64);
    Ok(head)
}

/// Sealed records as one array per `audit` column.
struct SealedColumns<'r> {
    seqs: Vec<i64>,
    ats: Vec<Millis>,
    kinds: Vec<&'static str>,
    notifications: Vec<Option<&'r str>>,
    users: Vec<Option<&'r str>>,
    sockets: Vec<Option<&'r str>>,
    levels: Vec<Option<i64>>,
    details: Vec<Option<String>>,
    prevs: Vec<&'r str>,
    hashes: Vec<&'r str>,
}

impl<'r> SealedColumns<'r> {
    fn with_capacity(n: usize) -> Self {
        Self {
            seqs: Vec::with_capacity(n),
            ats: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
            notifications: Vec::with_capacity(n),
            users: Vec::with_capacity(n),
            sockets: Vec::with_capacity(n),
            levels: Vec::with_capacity(n),
            details: Vec::with_capacity(n),
            prevs: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, r: &'r Record) {
        let (seq, at, kind, notification, user, socket, level, detail, prev, hash) = r.columns();
        self.seqs.push(seq);
        self.ats.push(at);
        self.kinds.push(kind);
        self.notifications.push(notification);
        self.users.push(user);
        self.sockets.push(socket);
        self.levels.push(level.map(i64::from));
        self.details.push(detail);
        self.prevs.push(prev);
        self.hashes.push(hash);
    }
}

/// Removes the audit records before `before` (the chain's oldest ones, up
/// to the last of them), keeps the last removed record's place and hash as
/// the anchor the rest verifies from, and says so in a `purged` record.
/// It holds the sealing lock and the head throughout, so nothing is
/// sealed in between. Unsealed records stay: they are sealed first, and a
/// later purge removes them when they are old enough.
pub(super) async fn purge_audit(conn: &mut PgConnection, before: Millis) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SEAL_LOCK)
        .execute(&mut *conn)
        .await?;
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
    let purged = record::purged(before, last, removed, &hash);
    append_sealed(conn, vec![purged]).await?;
    Ok(())
}

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
        with_deadline(ANSWER_DEADLINE, async {
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
