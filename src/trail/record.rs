//! The one builder of the trail's records, for both engines: the entries
//! the store itself writes as a notification is stored, acknowledged (and
//! so closed) and purged, and those of deliveries (so SQLite and
//! PostgreSQL write the same records), and a record's fields in the one
//! order that the hash covers and the `audit` table stores them.

use super::{Entry, Kind, Record};
use crate::clock::Millis;

/// A record's fields in the order its hash covers them: `[seq, at, type,
/// notificationId, userId, socketId, level, detail as text, prevHash]`,
/// as a verifier outside Herald recomputes it. `D` is the detail's text,
/// owned or borrowed from where it was made once.
pub type Hashed<'r, D = Option<String>> = (
    i64,
    Millis,
    &'static str,
    Option<&'r str>,
    Option<&'r str>,
    Option<&'r str>,
    Option<u32>,
    D,
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
    with_detail(seq, e, e.detail.as_ref().map(|d| d.to_string()), prev)
}

/// As [`hashed`], with the detail's text made by the caller, who stores
/// the same text.
pub fn with_detail<'r, D>(seq: i64, e: &'r Entry, detail: D, prev: &'r str) -> Hashed<'r, D> {
    (
        seq,
        e.at,
        e.kind.as_str(),
        e.notification_id.as_deref(),
        e.user_id.as_deref(),
        e.socket_id.as_deref(),
        e.level,
        detail,
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
/// from `socket` and the `remote` address when known. When it closed the
/// notification (the first acknowledgement by any recipient does), the
/// same record says so with `"closed": true` in its detail: one record,
/// not an `acknowledged` and a `closed` record repeating the same user and
/// time. The timeline shows it as both events; older trails hold a
/// separate `closed` record, which reads the same.
pub fn acknowledged(
    id: &str,
    user: &str,
    at: Millis,
    socket: Option<&str>,
    remote: Option<&str>,
    closed: bool,
) -> Entry {
    let mut record = Entry::new(Kind::Acknowledged, at)
        .notification(id)
        .user(user);
    if let Some(sid) = socket {
        record = record.socket(sid);
    }
    let mut detail = serde_json::Map::new();
    if let Some(remote) = remote {
        detail.insert("remote".into(), remote.into());
    }
    if closed {
        detail.insert(CLOSED.into(), true.into());
    }
    if !detail.is_empty() {
        record = record.detail(serde_json::Value::Object(detail));
    }
    record
}

/// The detail field of an `acknowledged` record that closed its notification.
pub const CLOSED: &str = "closed";

/// The detail field of a `delivered` record listing the sockets of one
/// hand-over.
pub const SOCKETS: &str = "sockets";

/// The `delivered` record of one hand-over of `id` to `sockets` of `user`
/// at `at`. One socket goes in the record's socket column, as always;
/// several (a user with several tabs open) go in one record that lists
/// them in its detail, `{"sockets": [...]}`, instead of one record per
/// socket repeating the notification, the user and the time. The timeline
/// shows one `delivered` event per socket either way.
pub fn delivered(id: &str, user: &str, at: Millis, sockets: &[String]) -> Entry {
    let record = Entry::new(Kind::Delivered, at).notification(id).user(user);
    match sockets {
        [socket] => record.socket(socket),
        _ => record.detail(serde_json::json!({ SOCKETS: sockets })),
    }
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

/// The `file_shared` record of a file: who shared it (`sender`, `None` for
/// the backend), with whom, and what (its id, name-free: the SHA-256 and
/// size say what was shared without a patient's name in the trail).
pub fn file_shared(
    file_id: &str,
    sender: Option<&str>,
    recipients: &[String],
    sha256: &str,
    size: u64,
    room: Option<&str>,
    at: Millis,
) -> Entry {
    let mut detail = serde_json::json!({
        "fileId": file_id,
        "recipients": recipients,
        "sha256": sha256,
        "size": size,
    });
    if let Some(room) = room {
        detail["room"] = room.into();
    }
    let record = Entry::new(Kind::FileShared, at).detail(detail);
    match sender {
        Some(user) => record.user(user),
        None => record,
    }
}

/// The `file_downloaded` record: `user` downloaded `file_id` (a range of it
/// counts: the recipient chose what to read).
pub fn file_downloaded(file_id: &str, user: &str, sha256: &str, at: Millis) -> Entry {
    Entry::new(Kind::FileDownloaded, at)
        .user(user)
        .detail(serde_json::json!({ "fileId": file_id, "sha256": sha256 }))
}
