//! The notification model: a backend's JSON object, kept whole, with the
//! `id` and `createdAt` Herald fills in, and each recipient's state.

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::clock::{rfc3339, Millis};

/// Longest notification id the API accepts.
pub const MAX_ID_LEN: usize = 128;

/// A stored notification: the backend's object with `id` and `createdAt` set.
///
/// It keeps its JSON text beside the object, made once: the store writes
/// that text, and the API's answer, each socket's emit and a catch-up send
/// it as it is, instead of each serialising the object again. One read
/// back from the store keeps the stored text and parses its object only
/// when something asks for a field (a catch-up sends the text alone).
#[derive(Debug, Clone)]
pub struct Notification {
    pub id: String,
    pub created_at: Millis,
    body: OnceLock<Map<String, Value>>,
    json: Box<RawValue>,
}

impl PartialEq for Notification {
    /// The text is the object's, written by the one serialiser: equal
    /// objects have equal texts.
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.created_at == other.created_at
            && self.json.get() == other.json.get()
    }
}

/// Why a notification body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNotification {
    #[error("notification must be a JSON object")]
    NotAnObject,
    #[error(
        "id must be a string of 1 to 128 characters from A-Z a-z 0-9 . _ : -, and not . or .."
    )]
    BadId,
}

/// True for ids of 1..=128 characters from `A-Z a-z 0-9 . _ : -`, other
/// than `.` and `..`: an id appears in URLs, and clients that normalise
/// URLs turn those two into the parent path, so the notification could
/// never be read back.
pub fn valid_id(id: &str) -> bool {
    !matches!(id, "." | "..")
        && !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl Notification {
    /// The backend's `severity`, which picks the escalation policy.
    pub fn severity(&self) -> Option<&str> {
        self.body().get("severity").and_then(Value::as_str)
    }

    /// Builds a notification from a backend body. `id` is taken from the
    /// body, else `fallback_id`; `createdAt` is set to `now`. A `redelivered`
    /// field is dropped: only Herald sets it, on catch-up deliveries.
    pub fn from_body(
        body: Value,
        fallback_id: impl FnOnce() -> String,
        now: Millis,
    ) -> Result<Self, InvalidNotification> {
        let Value::Object(mut body) = body else {
            return Err(InvalidNotification::NotAnObject);
        };
        let id = match body.get("id") {
            None | Some(Value::Null) => fallback_id(),
            Some(Value::String(s)) if valid_id(s) => s.clone(),
            Some(_) => return Err(InvalidNotification::BadId),
        };
        body.remove("redelivered");
        body.insert("id".into(), Value::String(id.clone()));
        body.insert("createdAt".into(), Value::String(rfc3339(now)));
        Ok(Self::from_parts(id, now, body))
    }

    /// A notification from its parts, as another node sent them: its text
    /// is made here, once.
    pub fn from_parts(id: String, created_at: Millis, body: Map<String, Value>) -> Self {
        let text = serde_json::to_string(&body).expect("a JSON map always serialises");
        let json = RawValue::from_string(text).expect("serde_json wrote valid JSON");
        Self {
            id,
            created_at,
            body: OnceLock::from(body),
            json,
        }
    }

    /// Rebuilds a stored notification from its JSON text, which it keeps
    /// as its text; refused unless the text is a JSON object. The object
    /// is parsed when first asked for.
    pub fn from_stored(
        id: String,
        created_at: Millis,
        json: &str,
    ) -> Result<Self, serde_json::Error> {
        let json = RawValue::from_string(json.to_owned())?;
        if !json.get().trim_start().starts_with('{') {
            return Err(serde::de::Error::custom(
                "a stored notification is not a JSON object",
            ));
        }
        Ok(Self {
            id,
            created_at,
            body: OnceLock::new(),
            json,
        })
    }

    /// The backend's object, with `id` and `createdAt`.
    pub fn body(&self) -> &Map<String, Value> {
        self.body.get_or_init(|| Self::parse(&self.json))
    }

    /// The object, given up.
    pub fn into_body(self) -> Map<String, Value> {
        match self.body.into_inner() {
            Some(body) => body,
            None => Self::parse(&self.json),
        }
    }

    /// The object of a text already checked to be a JSON object (by
    /// `from_stored`, or written by serde_json): parsing it cannot fail.
    fn parse(json: &RawValue) -> Map<String, Value> {
        serde_json::from_str(json.get()).expect("the text was checked to be a JSON object")
    }

    /// A copy with one more top-level field (or `key` replaced), its text
    /// made anew.
    pub fn with_field(&self, key: &str, value: Value) -> Self {
        let mut body = self.body().clone();
        body.insert(key.to_string(), value);
        Self::from_parts(self.id.clone(), self.created_at, body)
    }

    /// The JSON text of the object: what is stored and what is sent.
    pub fn to_json(&self) -> &str {
        self.json.get()
    }
}

impl Serialize for Notification {
    /// Writes the text made once. Every serialiser Herald sends a
    /// notification through (the API's answers, the Socket.IO packets, the
    /// cluster's messages) is serde_json's, which writes a raw value as
    /// it is.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

/// The same notification marked as sent in a catch-up, not live.
pub struct Redelivered<'a>(pub &'a Notification);

impl Redelivered<'_> {
    /// The notification's text with `"redelivered": true` as its last
    /// field: the object always has fields (`id` at least), so the text
    /// ends in `}` after one.
    fn text(&self) -> Box<RawValue> {
        let json = self.0.to_json();
        let open = json
            .strip_suffix('}')
            .expect("a JSON object's text ends in }");
        RawValue::from_string(format!("{open},\"redelivered\":true}}"))
            .expect("an object with one more field is valid JSON")
    }
}

impl Serialize for Redelivered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.text().serialize(s)
    }
}

/// Where one recipient stands with one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Acknowledged,
}

/// One recipient's delivery record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: String,
    pub delivered_at: Option<Millis>,
    pub acknowledged_at: Option<Millis>,
    /// The escalation level that made the user a recipient; `None` for an
    /// original recipient.
    pub escalation_level: Option<u32>,
}

impl Recipient {
    pub fn state(&self) -> DeliveryState {
        match (self.acknowledged_at, self.delivered_at) {
            (Some(_), _) => DeliveryState::Acknowledged,
            (None, Some(_)) => DeliveryState::Delivered,
            (None, None) => DeliveryState::Pending,
        }
    }
}

/// Which of a user's notifications to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    All,
    Unacknowledged,
    Pending,
    Delivered,
    Acknowledged,
}

impl StateFilter {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "all" => Self::All,
            "unacknowledged" => Self::Unacknowledged,
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            "acknowledged" => Self::Acknowledged,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_follow_the_contract_alphabet() {
        assert!(valid_id("notification-456"));
        assert!(valid_id("a.b_c:d-E9"));
        assert!(!valid_id(""));
        assert!(!valid_id("a/b"));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(129)));
        assert!(valid_id(&"x".repeat(128)));
        assert!(!valid_id("."));
        assert!(!valid_id(".."));
        assert!(valid_id("..."), "only the two path segments are refused");
        assert!(valid_id(".a"));
    }

    #[test]
    fn fills_id_and_created_at_and_keeps_unknown_fields() {
        let n = Notification::from_body(
            json!({"title": "t", "extra": {"a": [1, 2]}, "redelivered": true}),
            || "gen".into(),
            0,
        )
        .unwrap();
        assert_eq!(n.id, "gen");
        assert_eq!(n.body()["id"], "gen");
        assert_eq!(n.body()["createdAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(n.body()["extra"], json!({"a": [1, 2]}));
        assert!(!n.body().contains_key("redelivered"));
    }

    #[test]
    fn its_text_is_the_object_and_a_catch_up_adds_redelivered() {
        let n = Notification::from_body(
            json!({"title": "t\"q", "extra": {"a": [1, 2]}}),
            || "gen".into(),
            0,
        )
        .unwrap();
        let text: Value = serde_json::from_str(n.to_json()).unwrap();
        assert_eq!(text, Value::Object(n.body().clone()));
        assert_eq!(serde_json::to_value(&n).unwrap(), text);
        let again = Notification::from_stored(n.id.clone(), 0, n.to_json()).unwrap();
        assert_eq!(again, n);
        assert_eq!(again.body(), n.body(), "parsed when asked for");
        assert_eq!(again.severity(), None);
        assert!(Notification::from_stored("x".into(), 0, "[1]").is_err());
        assert!(Notification::from_stored("x".into(), 0, "{\"a\":").is_err());
        assert_eq!(again.to_json(), n.to_json());
        let mut redelivered = text.clone();
        redelivered["redelivered"] = json!(true);
        assert_eq!(serde_json::to_value(Redelivered(&n)).unwrap(), redelivered);
        // Inside an array, as a Socket.IO packet carries it.
        let packet = serde_json::to_string(&("critical_notification", &n)).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&packet).unwrap(),
            json!(["critical_notification", text])
        );
    }

    #[test]
    fn refuses_bad_bodies() {
        assert_eq!(
            Notification::from_body(json!([1]), || "g".into(), 0),
            Err(InvalidNotification::NotAnObject)
        );
        assert_eq!(
            Notification::from_body(json!({"id": 5}), || "g".into(), 0),
            Err(InvalidNotification::BadId)
        );
        assert_eq!(
            Notification::from_body(json!({"id": "a/b"}), || "g".into(), 0),
            Err(InvalidNotification::BadId)
        );
    }

    #[test]
    fn redelivered_adds_the_flag_to_a_copy() {
        let n = Notification::from_body(json!({"id": "x"}), || "g".into(), 0).unwrap();
        let v = serde_json::to_value(Redelivered(&n)).unwrap();
        assert_eq!(v["redelivered"], true);
        assert!(serde_json::to_value(&n)
            .unwrap()
            .get("redelivered")
            .is_none());
    }

    #[test]
    fn state_follows_timestamps() {
        let mut r = Recipient {
            user_id: "u".into(),
            delivered_at: None,
            acknowledged_at: None,
            escalation_level: None,
        };
        assert_eq!(r.state(), DeliveryState::Pending);
        r.delivered_at = Some(1);
        assert_eq!(r.state(), DeliveryState::Delivered);
        r.acknowledged_at = Some(2);
        assert_eq!(r.state(), DeliveryState::Acknowledged);
    }
}
