//! The call events' payloads (contract section 14), checked before the Hub
//! acts: a call id as Herald makes them, media from the contract's two,
//! and a signal's payload at most [`MAX_SIGNAL_BYTES`] of JSON nested at
//! most [`MAX_SIGNAL_DEPTH`] deep. Pure functions of the payload, for the
//! fuzzer.

use serde_json::{Map, Value};

use super::payload::object;
use super::reply::ClientError;
use crate::hub::Callee;

/// The largest signal payload relayed, as JSON text: an SDP offer with
/// audio, video and a data channel is 3 to 10 KiB.
pub const MAX_SIGNAL_BYTES: usize = 64 * 1024;

/// How deep a signal payload may nest: an SDP or a candidate is one or two
/// levels; the limit keeps the relayed message far from the depth another
/// node refuses to read.
pub const MAX_SIGNAL_DEPTH: usize = 8;

const MEDIA: [&str; 2] = ["audio", "video"];
const SIGNALS: [&str; 3] = ["offer", "answer", "candidate"];

fn invalid(m: impl Into<String>) -> ClientError {
    ClientError::InvalidPayload(m.into())
}

/// A call id as Herald makes them (a UUID), or a socket id: short
/// letters, digits, `-` and `_`.
fn short_id<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, ClientError> {
    match obj.get(name) {
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(s)
        }
        None | Some(Value::Null) => Err(invalid(format!("{name} is required"))),
        Some(_) => Err(invalid(format!("{name} is not a valid id"))),
    }
}

/// `call_invite { to: { userId } | { room }, media }`.
pub fn invite(data: &Value) -> Result<(Callee, Vec<String>), ClientError> {
    let obj = object(data)?;
    let to = match obj.get("to") {
        Some(Value::Object(to)) => to,
        _ => return Err(invalid("to must be { userId } or { room }")),
    };
    let callee = match (to.get("userId"), to.get("room")) {
        (Some(Value::String(u)), None) if crate::auth::valid_id(u) => Callee::User(u.clone()),
        (None, Some(Value::String(r))) if crate::rooms::valid_room(r) => Callee::Room(r.clone()),
        _ => {
            return Err(invalid(
                "to must be { userId } with a valid user id or { room } with a valid room name",
            ))
        }
    };
    let media = match obj.get("media") {
        Some(Value::Array(m)) if !m.is_empty() && m.len() <= MEDIA.len() => m,
        _ => return Err(invalid("media must be a list of \"audio\" and \"video\"")),
    };
    let mut out: Vec<String> = Vec::with_capacity(media.len());
    for m in media {
        match m {
            Value::String(m) if MEDIA.contains(&m.as_str()) && !out.contains(m) => {
                out.push(m.clone())
            }
            _ => return Err(invalid("media must be a list of \"audio\" and \"video\"")),
        }
    }
    Ok((callee, out))
}

/// `call_answer { callId, accept }`.
pub fn answer(data: &Value) -> Result<(String, bool), ClientError> {
    let obj = object(data)?;
    let id = short_id(obj, "callId")?.to_string();
    match obj.get("accept") {
        Some(Value::Bool(b)) => Ok((id, *b)),
        _ => Err(invalid("accept must be true or false")),
    }
}

/// `call_end { callId }`.
pub fn end(data: &Value) -> Result<String, ClientError> {
    Ok(short_id(object(data)?, "callId")?.to_string())
}

/// A signal as checked: for the Hub to relay.
#[derive(Debug, PartialEq)]
pub struct Signal {
    pub call_id: String,
    pub to: String,
    pub kind: &'static str,
    pub payload: Value,
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// `webrtc_signal { callId, to, type, payload }`.
pub fn signal(data: &Value) -> Result<Signal, ClientError> {
    let obj = object(data)?;
    let call_id = short_id(obj, "callId")?.to_string();
    let to = short_id(obj, "to")?.to_string();
    let kind = match obj.get("type") {
        Some(Value::String(t)) => SIGNALS.iter().find(|s| **s == t.as_str()).copied(),
        _ => None,
    }
    .ok_or_else(|| invalid("type must be \"offer\", \"answer\" or \"candidate\""))?;
    let payload = match obj.get("payload") {
        None => return Err(invalid("payload is required")),
        Some(p) => p,
    };
    if depth(payload) > MAX_SIGNAL_DEPTH {
        return Err(invalid(format!(
            "payload nests deeper than {MAX_SIGNAL_DEPTH} levels"
        )));
    }
    let size = serde_json::to_vec(payload)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_SIGNAL_BYTES {
        return Err(invalid(format!(
            "payload is {size} bytes of JSON; at most {MAX_SIGNAL_BYTES}"
        )));
    }
    Ok(Signal {
        call_id,
        to,
        kind,
        payload: payload.clone(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_invitation_names_a_user_or_a_room_and_known_media() {
        assert_eq!(
            invite(&json!({ "to": { "userId": "ben" }, "media": ["audio"] })).unwrap(),
            (Callee::User("ben".into()), vec!["audio".to_string()])
        );
        assert_eq!(
            invite(&json!({ "to": { "room": "study:1.2" }, "media": ["audio", "video"] }))
                .unwrap()
                .0,
            Callee::Room("study:1.2".into())
        );
        for bad in [
            json!({ "to": { "userId": "ben", "room": "r" }, "media": ["audio"] }),
            json!({ "to": {}, "media": ["audio"] }),
            json!({ "to": "ben", "media": ["audio"] }),
            json!({ "to": { "userId": "ben" }, "media": [] }),
            json!({ "to": { "userId": "ben" }, "media": ["audio", "audio"] }),
            json!({ "to": { "userId": "ben" }, "media": ["screen"] }),
            json!({ "to": { "room": "no spaces" }, "media": ["audio"] }),
            json!(null),
        ] {
            assert!(
                matches!(invite(&bad), Err(ClientError::InvalidPayload(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn answers_and_ends_name_a_call() {
        assert_eq!(
            answer(&json!({ "callId": "c-1", "accept": true })).unwrap(),
            ("c-1".to_string(), true)
        );
        assert!(answer(&json!({ "callId": "c-1", "accept": "yes" })).is_err());
        assert!(answer(&json!({ "callId": "../x", "accept": true })).is_err());
        assert_eq!(end(&json!({ "callId": "c-1" })).unwrap(), "c-1");
        assert!(end(&json!({ "callId": "x".repeat(65) })).is_err());
    }

    #[test]
    fn a_signal_is_an_offer_answer_or_candidate_of_at_most_64_kib() {
        let ok = json!({ "callId": "c", "to": "s1", "type": "offer",
                         "payload": { "type": "offer", "sdp": "v=0" } });
        assert_eq!(signal(&ok).unwrap().kind, "offer");
        let big = json!({ "callId": "c", "to": "s1", "type": "offer",
                          "payload": { "sdp": "x".repeat(MAX_SIGNAL_BYTES) } });
        assert!(signal(&big).is_err());
        let mut deep = json!(1);
        for _ in 0..=MAX_SIGNAL_DEPTH {
            deep = json!([deep]);
        }
        let deep = json!({ "callId": "c", "to": "s1", "type": "candidate", "payload": deep });
        assert!(signal(&deep).is_err());
        let other = json!({ "callId": "c", "to": "s1", "type": "bye", "payload": {} });
        assert!(signal(&other).is_err());
        assert!(signal(&json!({ "callId": "c", "to": "s1", "type": "offer" })).is_err());
    }
}
