//! The audit trail of the clinical closed loop: what happened to each
//! notification (created, delivered to its sockets, reminded, escalated,
//! acknowledged, closed, webhooks) and the session security events, kept
//! append-only in the store as one hash chain, so that a record changed,
//! removed or inserted afterwards is found by `herald audit verify`; and
//! the signed checkpoints of its head that an outside witness keeps, so
//! that records cut off its end are found too.

mod chain;
pub mod checkpoint;
mod export;
pub mod record;
pub mod timeline;
mod walk;
pub mod witnessed;

use serde::Serialize;
use serde_json::Value;

pub use chain::{follows, link, verify, Anchor, Broken, Chain, Linker, GENESIS};
pub use export::{csv_header, csv_line, Format};
pub use walk::{walk, ChainReader, Stored, WalkError, Walked};

use crate::clock::{rfc3339, Millis};

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Created,
    Delivered,
    Redelivered,
    Acknowledged,
    Reminded,
    Escalated,
    WebhookSent,
    WebhookFailed,
    Closed,
    ConnectionRefused,
    SessionExpired,
    SessionLoggedOut,
    /// Records before this one were removed by retention (see `Anchor`).
    Purged,
    /// A file shared: by whom (`user_id`, none for the backend), with whom
    /// and its SHA-256 (`detail`).
    FileShared,
    /// A file downloaded by its recipient (`user_id`).
    FileDownloaded,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::Created,
        Kind::Delivered,
        Kind::Redelivered,
        Kind::Acknowledged,
        Kind::Reminded,
        Kind::Escalated,
        Kind::WebhookSent,
        Kind::WebhookFailed,
        Kind::Closed,
        Kind::ConnectionRefused,
        Kind::SessionExpired,
        Kind::SessionLoggedOut,
        Kind::Purged,
        Kind::FileShared,
        Kind::FileDownloaded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Delivered => "delivered",
            Kind::Redelivered => "redelivered",
            Kind::Acknowledged => "acknowledged",
            Kind::Reminded => "reminded",
            Kind::Escalated => "escalated",
            Kind::WebhookSent => "webhook_sent",
            Kind::WebhookFailed => "webhook_failed",
            Kind::Closed => "closed",
            Kind::ConnectionRefused => "connection_refused",
            Kind::SessionExpired => "session_expired",
            Kind::SessionLoggedOut => "session_logged_out",
            Kind::Purged => "purged",
            Kind::FileShared => "file_shared",
            Kind::FileDownloaded => "file_downloaded",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One event, before the store gives it its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub at: Millis,
    pub kind: Kind,
    pub notification_id: Option<String>,
    pub user_id: Option<String>,
    pub socket_id: Option<String>,
    pub level: Option<u32>,
    /// Facts of the event that have no column: an address, a reason, an
    /// HTTP status. Never a token or a notification body.
    pub detail: Option<Value>,
}

impl Entry {
    pub fn new(kind: Kind, at: Millis) -> Self {
        Self {
            at,
            kind,
            notification_id: None,
            user_id: None,
            socket_id: None,
            level: None,
            detail: None,
        }
    }

    pub fn notification(mut self, id: &str) -> Self {
        self.notification_id = Some(id.to_string());
        self
    }

    pub fn user(mut self, user: &str) -> Self {
        self.user_id = Some(user.to_string());
        self
    }

    pub fn socket(mut self, socket: &str) -> Self {
        self.socket_id = Some(socket.to_string());
        self
    }

    pub fn level(mut self, level: u32) -> Self {
        self.level = Some(level);
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// A stored record: its place in the chain, and the hashes that link it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub seq: i64,
    pub entry: Entry,
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    /// The entry's fields into `m`, as the API shows them; the
    /// notification's id only when `with_notification`.
    fn put_fields(&self, m: &mut serde_json::Map<String, Value>, with_notification: bool) {
        m.insert("at".into(), rfc3339(self.at).into());
        m.insert("type".into(), self.kind.as_str().into());
        let notification = self
            .notification_id
            .as_deref()
            .filter(|_| with_notification);
        let optional = [
            ("notificationId", notification),
            ("userId", self.user_id.as_deref()),
            ("socketId", self.socket_id.as_deref()),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                m.insert(k.into(), v.into());
            }
        }
        if let Some(l) = self.level {
            m.insert("level".into(), l.into());
        }
        if let Some(d) = &self.detail {
            m.insert("detail".into(), d.clone());
        }
    }

    /// The entry as a notification's timeline shows it: no chain fields,
    /// so a record reads the same before and after it is sealed.
    pub fn to_timeline_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        self.put_fields(&mut m, false);
        Value::Object(m)
    }
}

impl Record {
    /// The record as the API and the export show it.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("seq".into(), self.seq.into());
        self.entry.put_fields(&mut m, true);
        m.insert("prevHash".into(), self.prev_hash.clone().into());
        m.insert("hash".into(), self.hash.clone().into());
        Value::Object(m)
    }
}
