//! The PostgreSQL store's hash chain itself: appending records to it while
//! holding its head row, which only the sealer and retention do, both
//! under [`SEAL_LOCK`]; and retention's removal of its oldest records.

use sqlx::PgConnection;

use crate::clock::Millis;
use crate::store::rows::audit_columns;
use crate::store::StoreError;
use crate::trail::{record, Chain, Entry, Record};

/// The advisory lock whose holder seals or purges: one at a time in the
/// database, whichever node it runs on. ("HrldSeal")
pub(super) const SEAL_LOCK: i64 = 0x4872_6c64_5365_616c;

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
