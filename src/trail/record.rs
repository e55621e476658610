//! The one builder of the trail's records, for both engines: the entries
//! the store itself writes as a notification is stored, acknowledged,
//! closed and purged (so SQLite and PostgreSQL write the same records),
//! and a record's fields in the one order that the hash covers and the
//! `audit` table stores them.

use super::{Entry, Kind, Record};
use crate::clock::Millis;

/// A record's fields in the order its hash covers them: `[seq, at, type,
/// notificationId, userId, socketId, level, detail as text, prevHash]`,
/// as a verifier outside Herald recomputes it.
pub type Hashed<'r> = (
    i64,
    Millis,
    &'static str,
    Option<&'r str>,
    Option<&'r str>,
    Option<&'r str>,
    Option<u32>,
    Option<String>,
    &'r str,
);

/// A stored record's columns, in the `audit` table's order: the
/// [`Hashed`] fields, then the record's own hash.
pub type Columns<'r> = (
    i64,
    Millis,
    &'static str,
    Option<&'r str>,
    Option<&'r str>,
    Option<&'r str>,
    Option<u32>,
    Option<String>,
    &'r str,
    &'r str,
);

/// The fields of record `seq` holding `e`, linked to `prev`. The detail is
/// its JSON text: what the hash covers is what the column stores.
pub fn hashed<'r>(seq: i64, e: &'r Entry, prev: &'r str) -> Hashed<'r> {
    (
        seq,
        e.at,
        e.kind.as_str(),
        e.notification_id.as_deref(),
        e.user_id.as_deref(),
        e.socket_id.as_deref(),
        e.level,
        e.detail.as_ref().map(|d| d.to_string()),
        prev,
    )
}

impl Record {
    /// The columns this record is stored as.
    pub fn columns(&self) -> Columns<'_> {
        let (seq, at, kind, notification, user, socket, level, detail, prev) =
            hashed(self.seq, &self.entry, &self.prev_hash);
        (
            seq,
            at,
            kind,
            notification,
            user,
            socket,
            level,
            detail,
            prev,
            &self.hash,
        )
    }
}

/// The `created` record of notification `id`, stored at `at` for `users`.
pub fn created(id: &str, at: Millis, users: &[String]) -> Entry {
    let created = Entry::new(Kind::Created, at)
        .notification(id)
        .detail(serde_json::json!({ "recipients": users.len() }));
    match users {
        [user] => created.user(user),
        _ => created,
    }
}

/// The `acknowledged` record of `user`'s first acknowledgement of `id`,
/// from `socket` and the `remote` address when known.
pub fn acknowledged(
    id: &str,
    user: &str,
    at: Millis,
    socket: Option<&str>,
    remote: Option<&str>,
) -> Entry {
    let mut record = Entry::new(Kind::Acknowledged, at)
        .notification(id)
        .user(user);
    if let Some(sid) = socket {
        record = record.socket(sid);
    }
    if let Some(remote) = remote {
        record = record.detail(serde_json::json!({ "remote": remote }));
    }
    record
}

/// The `closed` record of `id`, closed by `by`'s first acknowledgement.
pub fn closed(id: &str, by: &str, at: Millis) -> Entry {
    Entry::new(Kind::Closed, at).notification(id).user(by)
}

/// The `purged` record: retention removed the `removed` records before
/// `before`, through record `through`, whose hash `anchor_hash` the rest
/// of the chain now verifies from.
pub fn purged(before: Millis, through: i64, removed: u64, anchor_hash: &str) -> Entry {
    Entry::new(Kind::Purged, before).detail(serde_json::json!({
        "through": through,
        "removed": removed,
        "anchorHash": anchor_hash,
    }))
}
