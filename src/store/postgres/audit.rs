//! The PostgreSQL store's audit trail: appending to the one hash chain all
//! nodes share (the head row stays locked until the appending transaction
//! commits), removing its oldest records at retention, and reading it back.

use async_trait::async_trait;
use sqlx::PgConnection;

use super::deadline::{with_deadline, ANSWER_DEADLINE};
use super::PostgresStore;
use crate::clock::Millis;
use crate::store::rows::{self, audit_columns, Columns};
use crate::store::{AuditTrail, StoreError};
use crate::trail::{record, Anchor, Chain, Entry, Record};

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
    // One array per column, for one statement whatever the number of records.
    let n = records.len();
    let (mut seqs, mut ats, mut kinds) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut notifications, mut users, mut sockets) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut levels, mut details, mut prevs, mut hashes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in &records {
        let (seq, at, kind, notification, user, socket, level, detail, prev, hash) = r.columns();
        seqs.push(seq);
        ats.push(at);
        kinds.push(kind);
        notifications.push(notification);
        users.push(user);
        sockets.push(socket);
        levels.push(level.map(i64::from));
        details.push(detail);
        prevs.push(prev);
        hashes.push(hash);
    }
    sqlx::query(concat!(
        "INSERT INTO audit (",
        audit_columns!(),
        ") SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
         $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[])",
    ))
    .bind(seqs)
    .bind(ats)
    .bind(kinds)
    .bind(notifications)
    .bind(users)
    .bind(sockets)
    .bind(levels)
    .bind(details)
    .bind(prevs)
    .bind(hashes)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(head.seq)
        .bind(&head.hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes the audit records before `before` (the chain's oldest ones, up
/// to the last of them), keeps the last removed record's place and hash as
/// the anchor the rest verifies from, and says so in a `purged` record.
/// The head stays locked throughout, so no node appends in between.
pub(super) async fn purge_audit(conn: &mut PgConnection, before: Millis) -> Result<(), StoreError> {
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
    Ok(append(conn, vec![purged]).await?)
}

#[async_trait]
impl AuditTrail for PostgresStore {
    fn record(&self, entry: Entry) {
        self.marks.record(entry);
    }

    async fn timeline(&self, id: &str) -> Result<Vec<Record>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
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
}
