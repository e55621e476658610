//! What both engines read alike: the columns of a user's notification, the
//! condition each state filter adds, and the rebuilding of a notification,
//! a recipient and a user's view of them from a row of either driver.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{Escalation, ReportRow, StoreError, Unacknowledged, UserNotification};
use crate::notification::{Notification, Recipient, StateFilter};
use crate::trail::{Broken, Entry, Kind, Record, Stored};

/// Roles that are recipients of an open notification.
pub const OPEN_ROLES: &str = "SELECT DISTINCT rr.role FROM role_recipients rr \
     JOIN notifications n ON n.id = rr.notification_id WHERE n.closed_at IS NULL";

/// The first claim that runs out after the bound time (read through
/// `escalation_steps_by_claim`), in each engine's placeholder.
pub const NEXT_CLAIM_END_SQLITE: &str =
    "SELECT min(claimed_until) FROM escalation_steps WHERE claimed_until > ?1";
pub const NEXT_CLAIM_END_POSTGRES: &str =
    "SELECT min(claimed_until) FROM escalation_steps WHERE claimed_until > $1";

/// The `audit` table's columns, in the order of the values
/// `trail::record::Columns` gives: both engines write and read them by it.
macro_rules! audit_columns {
    () => {
        "seq, at, kind, notification_id, user_id, socket_id, level, detail, prev_hash, hash"
    };
}
pub(crate) use audit_columns;

/// An audit record's columns; followed by a `WHERE`.
pub const SELECT_AUDIT: &str = concat!("SELECT ", audit_columns!(), " FROM audit");

/// The report's rows for `?1 <= created_at < ?2`, in SQLite's placeholders.
pub const REPORT_ROWS_SQLITE: &str = "SELECT severity, created_at, closed_at FROM notifications \
     WHERE created_at >= ?1 AND created_at < ?2";

/// As [`REPORT_ROWS_SQLITE`], in PostgreSQL's.
pub const REPORT_ROWS_POSTGRES: &str = "SELECT severity, created_at, closed_at FROM notifications \
     WHERE created_at >= $1 AND created_at < $2";

/// Unacknowledged recipient rows (read through the partial index
/// `recipients_unacknowledged`), in SQL both stores speak.
pub const PENDING_COUNT: &str = "SELECT count(*) FROM recipients WHERE acknowledged_at IS NULL";

/// A user's notification: their recipient row joined to the notification.
/// Followed by a `WHERE` in each engine's placeholders.
pub const SELECT_USER: &str =
    "SELECT r.seq, r.user_id, r.delivered_at, r.acknowledged_at, r.escalation_level, \
     n.id, n.body, n.created_at \
     FROM recipients r JOIN notifications n ON n.id = r.notification_id";

/// The oldest unacknowledged recipients of every user, at most as many
/// as the engine's `limit` placeholder says.
pub fn unacknowledged_query(limit: &str) -> String {
    format!(
        "{SELECT_USER} WHERE r.acknowledged_at IS NULL ORDER BY r.created_at, r.seq LIMIT {limit}"
    )
}

/// How many recipients have not acknowledged.
pub const COUNT_UNACKNOWLEDGED: &str =
    "SELECT COUNT(*) AS total FROM recipients WHERE acknowledged_at IS NULL";

/// The condition `filter` adds to a listing of [`SELECT_USER`] rows: the
/// unacknowledged states are the ones the partial index serves.
/// A recipient added by escalation is no longer asked to acknowledge once
/// the notification is closed, so the unacknowledged states leave it out.
pub fn state_condition(filter: StateFilter) -> &'static str {
    match filter {
        StateFilter::All => "",
        StateFilter::Unacknowledged => {
            "AND r.acknowledged_at IS NULL AND (r.escalation_level IS NULL OR n.closed_at IS NULL)"
        }
        StateFilter::Pending => {
            "AND r.acknowledged_at IS NULL AND r.delivered_at IS NULL \
             AND (r.escalation_level IS NULL OR n.closed_at IS NULL)"
        }
        StateFilter::Delivered => {
            "AND r.acknowledged_at IS NULL AND r.delivered_at IS NOT NULL \
             AND (r.escalation_level IS NULL OR n.closed_at IS NULL)"
        }
        StateFilter::Acknowledged => "AND r.acknowledged_at IS NOT NULL",
    }
}

/// The columns the store reads, by name, from a row of any driver that
/// stores ids and bodies as text and times as 64-bit integers.
pub trait Columns {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn integer(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn maybe_integer(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn maybe_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database>,
    String: Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database>,
    i64: Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.try_get(column)
    }

    fn integer(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.try_get(column)
    }

    fn maybe_integer(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }

    fn maybe_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
}

/// A row of [`SELECT_AUDIT`].
pub fn audit_record(row: &impl Columns) -> Result<Record, StoreError> {
    Ok(Record {
        seq: row.integer("seq")?,
        entry: audit_entry(row)?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    })
}

/// A row of [`SELECT_AUDIT`] as `herald audit verify` reads it: a row
/// whose columns do not decode is a broken record at its place (the
/// primary key, which every engine keeps an integer).
pub fn chain_record(row: &impl Columns) -> Result<Stored, StoreError> {
    let seq = row.integer("seq")?;
    Ok(audit_record(row).map_err(|e| Broken {
        seq,
        why: format!("it cannot be read ({e}): the record was changed"),
    }))
}

/// The entry of an audit row, sealed or not: its columns but the chain's.
pub fn audit_entry(row: &impl Columns) -> Result<Entry, StoreError> {
    let kind = row.text("kind")?;
    let kind = Kind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown audit record kind {kind:?}")))?;
    let detail = match row.maybe_text("detail")? {
        Some(d) => Some(
            serde_json::from_str(&d)
                .map_err(|e| StoreError::Corrupt(format!("audit detail: {e}")))?,
        ),
        None => None,
    };
    Ok(Entry {
        at: row.integer("at")?,
        kind,
        notification_id: row.maybe_text("notification_id")?,
        user_id: row.maybe_text("user_id")?,
        socket_id: row.maybe_text("socket_id")?,
        level: row
            .maybe_integer("level")?
            .and_then(|l| u32::try_from(l).ok()),
        detail,
    })
}

/// Where the escalation of the notifications whose ids `ids` selects
/// stands (`ids` is each engine's condition on `n.id`): the highest level
/// fired by the audit records (those of `trail`, a table or a subquery
/// with the audit columns), and the step due next. One row per id.
pub fn escalations_query(ids: &str, trail: &str) -> String {
    format!(
        "SELECT n.id, n.closed_at, \
         (SELECT max(a.level) FROM {trail} a WHERE a.notification_id = n.id \
           AND a.kind IN ('reminded', 'escalated', 'webhook_sent')) AS fired, \
         (SELECT s.level FROM escalation_steps s WHERE s.notification_id = n.id AND NOT s.fired \
           ORDER BY s.due_at, s.level LIMIT 1) AS next_level, \
         (SELECT s.due_at FROM escalation_steps s WHERE s.notification_id = n.id AND NOT s.fired \
           ORDER BY s.due_at, s.level LIMIT 1) AS next_due \
         FROM notifications n WHERE {ids}"
    )
}

/// A row of [`escalations_query`].
pub fn escalation(row: &impl Columns) -> Result<(String, Escalation), StoreError> {
    let level = |l: Option<i64>| l.and_then(|l| u32::try_from(l).ok());
    let next = match (
        level(row.maybe_integer("next_level")?),
        row.maybe_integer("next_due")?,
    ) {
        (Some(l), Some(due)) => Some((l, due)),
        _ => None,
    };
    Ok((
        row.text("id")?,
        Escalation {
            fired: level(row.maybe_integer("fired")?).unwrap_or(0),
            next,
            closed_at: row.maybe_integer("closed_at")?,
        },
    ))
}

/// A row of the report's query.
pub fn report_row(row: &impl Columns) -> Result<ReportRow, StoreError> {
    Ok(ReportRow {
        severity: row.maybe_text("severity")?,
        created_at: row.integer("created_at")?,
        closed_at: row.maybe_integer("closed_at")?,
    })
}

pub fn recipient(row: &impl Columns) -> Result<Recipient, sqlx::Error> {
    Ok(Recipient {
        user_id: row.text("user_id")?,
        delivered_at: row.maybe_integer("delivered_at")?,
        acknowledged_at: row.maybe_integer("acknowledged_at")?,
        escalation_level: row
            .maybe_integer("escalation_level")?
            .and_then(|l| u32::try_from(l).ok()),
    })
}

/// The notification of a row with its `id`, `body` and `created_at`.
pub fn notification(row: &impl Columns) -> Result<Notification, StoreError> {
    let body = row.text("body")?;
    Notification::from_stored(row.text("id")?, row.integer("created_at")?, &body)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A row of [`SELECT_USER`].
pub fn user_notification(row: &impl Columns) -> Result<UserNotification, StoreError> {
    Ok(UserNotification {
        seq: row.integer("seq")?,
        notification: notification(row)?,
        recipient: recipient(row)?,
    })
}

/// The dashboard's listing from the row of [`COUNT_UNACKNOWLEDGED`] and the
/// rows of [`unacknowledged_query`].
pub fn unacknowledged<R: Columns>(
    total: &impl Columns,
    oldest: &[R],
) -> Result<Unacknowledged, StoreError> {
    Ok(Unacknowledged {
        total: total.integer("total")?.max(0) as u64,
        oldest: oldest
            .iter()
            .map(user_notification)
            .collect::<Result<_, _>>()?,
    })
}

/// The columns of a shared file, as [`shared_file`] reads them (`f` is
/// the `files` table).
pub const SELECT_FILE: &str = "SELECT f.file_id, f.name, f.size, f.content_type, f.sha256, \
     f.sender, f.room, f.created_at, f.expires_at FROM files f";

/// A row of [`SELECT_FILE`].
pub fn shared_file(row: &impl Columns) -> Result<crate::files::SharedFile, StoreError> {
    Ok(crate::files::SharedFile {
        file_id: row.text("file_id")?,
        name: row.text("name")?,
        size: row.integer("size")? as u64,
        content_type: row.text("content_type")?,
        sha256: row.text("sha256")?,
        sender: row.maybe_text("sender")?,
        room: row.maybe_text("room")?,
        created_at: row.integer("created_at")?,
        expires_at: row.integer("expires_at")?,
    })
}
