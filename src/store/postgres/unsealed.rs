//! The PostgreSQL store's unsealed audit records: a write queues the
//! records of what it does in `audit_unsealed`, in its own transaction, so
//! they commit exactly when it does, and no write waits for another node's
//! (the sealer, `seal.rs`, later gives them their places in the chain).

use sqlx::PgExecutor;

use crate::clock::Millis;
use crate::trail::Entry;

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
