//! Client event payloads: each is parsed and checked against the socket's
//! own user and session before anything acts on it. Pure functions of the
//! payload, so the fuzzer (`fuzz/`) drives them directly.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::reply::ClientError;
use crate::notification::valid_id;
use crate::presence::MAX_USERS_PER_QUERY;

pub(super) fn object(data: &Value) -> Result<&Map<String, Value>, ClientError> {
    data.as_object()
        .ok_or_else(|| ClientError::InvalidPayload("payload must be an object".into()))
}

/// An id field: a string, or an integer (ids are strings everywhere).
fn id_field(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ClientError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(ClientError::InvalidPayload(format!(
            "{name} must be a non-empty string"
        ))),
    }
}

fn required(obj: &Map<String, Value>, name: &str) -> Result<String, ClientError> {
    id_field(obj, name)?.ok_or_else(|| ClientError::InvalidPayload(format!("{name} is required")))
}

/// `acknowledge_notification { notificationId, userId? }`: the id to
/// acknowledge for `own_user`. A `userId` other than the socket's is refused.
pub fn acknowledge(data: &Value, own_user: &str) -> Result<String, ClientError> {
    let obj = object(data)?;
    let id = required(obj, "notificationId")?;
    if !valid_id(&id) {
        return Err(ClientError::InvalidPayload(
            "notificationId is not a valid id".into(),
        ));
    }
    if let Some(user) = id_field(obj, "userId")? {
        if user != own_user {
            return Err(ClientError::Forbidden(
                "userId is not this socket's user".into(),
            ));
        }
    }
    Ok(id)
}

/// `extend_session { sessionId }`: only the socket's own session.
pub fn extend_session(data: &Value, own_session: &str) -> Result<String, ClientError> {
    let session = required(object(data)?, "sessionId")?;
    if session != own_session {
        return Err(ClientError::Forbidden(
            "sessionId is not this socket's session".into(),
        ));
    }
    Ok(session)
}

/// `refresh_token { token }`: the new token, still to be verified.
pub fn refresh_token(data: &Value) -> Result<String, ClientError> {
    match object(data)?.get("token") {
        Some(Value::String(t)) if !t.is_empty() => Ok(t.clone()),
        _ => Err(ClientError::InvalidPayload(
            "token must be a non-empty string".into(),
        )),
    }
}

/// `presence_subscribe` and `presence_unsubscribe` `{ userIds }`: 1 to
/// [`MAX_USERS_PER_QUERY`] user ids, each a string as tokens carry it;
/// repeats are counted once.
pub fn presence_users(data: &Value) -> Result<Vec<String>, ClientError> {
    let invalid = |m: String| ClientError::InvalidPayload(m);
    let ids = match object(data)?.get("userIds") {
        None | Some(Value::Null) => return Err(invalid("userIds is required".into())),
        Some(Value::Array(ids)) => ids,
        Some(_) => return Err(invalid("userIds must be an array of user ids".into())),
    };
    if ids.is_empty() || ids.len() > MAX_USERS_PER_QUERY {
        return Err(invalid(format!(
            "userIds must name 1 to {MAX_USERS_PER_QUERY} users"
        )));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    let mut users = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let Value::String(id) = id else {
            return Err(invalid(format!("userIds[{i}] must be a string")));
        };
        if !crate::auth::valid_id(id) {
            return Err(invalid(format!("userIds[{i}] is not a valid user id")));
        }
        if seen.insert(id.as_str()) {
            users.push(id.clone());
        }
    }
    Ok(users)
}

/// `join_room` and `leave_room` `{ room }`: a room name by the contract's
/// rule.
pub fn room(data: &Value) -> Result<String, ClientError> {
    room_field(object(data)?)
}

fn room_field(obj: &Map<String, Value>) -> Result<String, ClientError> {
    match obj.get("room") {
        Some(Value::String(room)) if crate::rooms::valid_room(room) => Ok(room.clone()),
        None | Some(Value::Null) => Err(ClientError::InvalidPayload("room is required".into())),
        Some(_) => Err(ClientError::InvalidPayload(format!(
            "room must be a string of 1 to {} characters of A-Z a-z 0-9 . _ : -",
            crate::rooms::MAX_ROOM_LEN
        ))),
    }
}

/// `typing { room, isTyping }`.
pub fn typing(data: &Value) -> Result<(String, bool), ClientError> {
    let obj = object(data)?;
    let room = room_field(obj)?;
    match obj.get("isTyping") {
        Some(Value::Bool(b)) => Ok((room, *b)),
        _ => Err(ClientError::InvalidPayload(
            "isTyping must be true or false".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(r: Result<String, ClientError>) -> String {
        match r {
            Err(ClientError::InvalidPayload(m)) => format!("invalid: {m}"),
            Err(ClientError::Forbidden(m)) => format!("forbidden: {m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn acknowledge_takes_string_or_integer_ids_of_the_own_user_only() {
        assert_eq!(
            acknowledge(&json!({"notificationId": "n-1"}), "u1").unwrap(),
            "n-1"
        );
        assert_eq!(
            acknowledge(&json!({"notificationId": 42, "userId": "u1"}), "u1").unwrap(),
            "42"
        );
        assert_eq!(
            acknowledge(&json!({"notificationId": 7, "userId": 1}), "1").unwrap(),
            "7"
        );
        assert_eq!(
            refused(acknowledge(
                &json!({"notificationId": "n", "userId": "u2"}),
                "u1"
            )),
            "forbidden: userId is not this socket's user"
        );
        assert_eq!(
            refused(acknowledge(&json!({}), "u1")),
            "invalid: notificationId is required"
        );
        assert_eq!(
            refused(acknowledge(&json!({"notificationId": "a b"}), "u1")),
            "invalid: notificationId is not a valid id"
        );
        for bad in [
            json!({"notificationId": ""}),
            json!({"notificationId": 1.5}),
            json!({"notificationId": [1]}),
        ] {
            assert_eq!(
                refused(acknowledge(&bad, "u1")),
                "invalid: notificationId must be a non-empty string"
            );
        }
        assert_eq!(
            refused(acknowledge(&json!("n-1"), "u1")),
            "invalid: payload must be an object"
        );
    }

    #[test]
    fn extend_session_only_for_the_own_session() {
        assert_eq!(
            extend_session(&json!({"sessionId": "s1"}), "s1").unwrap(),
            "s1"
        );
        assert_eq!(
            refused(extend_session(&json!({"sessionId": "s2"}), "s1")),
            "forbidden: sessionId is not this socket's session"
        );
        assert_eq!(
            refused(extend_session(&Value::Null, "s1")),
            "invalid: payload must be an object"
        );
    }

    #[test]
    fn refresh_token_needs_a_non_empty_string() {
        assert_eq!(refresh_token(&json!({"token": "t"})).unwrap(), "t");
        for bad in [json!({}), json!({"token": ""}), json!({"token": 1})] {
            assert_eq!(
                refused(refresh_token(&bad)),
                "invalid: token must be a non-empty string"
            );
        }
    }

    #[test]
    fn presence_users_takes_1_to_1000_valid_ids_once_each() {
        assert_eq!(
            presence_users(&json!({"userIds": ["u1", "u2", "u1"]})).unwrap(),
            ["u1", "u2"]
        );
        let most: Vec<String> = (0..1_000).map(|i| format!("u{i}")).collect();
        assert_eq!(
            presence_users(&json!({ "userIds": most })).unwrap().len(),
            1_000
        );
        let too_many: Vec<String> = (0..1_001).map(|i| format!("u{i}")).collect();
        let long = "x".repeat(crate::auth::MAX_ID_LEN + 1);
        for (bad, says) in [
            (json!("u1"), "payload must be an object"),
            (json!(["u1"]), "payload must be an object"),
            (Value::Null, "payload must be an object"),
            (json!({}), "userIds is required"),
            (json!({"userIds": null}), "userIds is required"),
            (
                json!({"userIds": "u1,u2"}),
                "userIds must be an array of user ids",
            ),
            (
                json!({"userIds": {"0": "u1"}}),
                "userIds must be an array of user ids",
            ),
            (json!({"userIds": []}), "userIds must name 1 to 1000 users"),
            (
                json!({ "userIds": too_many }),
                "userIds must name 1 to 1000 users",
            ),
            (
                json!({"userIds": ["u1", 42]}),
                "userIds[1] must be a string",
            ),
            (json!({"userIds": [null]}), "userIds[0] must be a string"),
            (json!({"userIds": [["u1"]]}), "userIds[0] must be a string"),
            (
                json!({"userIds": [""]}),
                "userIds[0] is not a valid user id",
            ),
            (
                json!({"userIds": ["a\nb"]}),
                "userIds[0] is not a valid user id",
            ),
            (
                json!({ "userIds": [long] }),
                "userIds[0] is not a valid user id",
            ),
        ] {
            assert_eq!(
                refused(presence_users(&bad).map(|v| v.join(","))),
                format!("invalid: {says}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn rooms_and_typing_are_checked() {
        assert_eq!(room(&json!({"room": "study:1.2"})).unwrap(), "study:1.2");
        assert!(room(&json!(null)).is_err() && room(&json!("study:1")).is_err());
        for bad in [
            json!({}),
            json!({"room": 7}),
            json!({"room": ""}),
            json!({"room": "a/b"}),
            json!({"room": "x".repeat(129)}),
        ] {
            assert!(refused(room(&bad)).starts_with("invalid: room"), "{bad}");
        }
        assert_eq!(
            typing(&json!({"room": "r", "isTyping": true})).unwrap(),
            ("r".to_string(), true)
        );
        for bad in [
            json!({"room": "r"}),
            json!({"room": "r", "isTyping": "yes"}),
            json!({"room": "r", "isTyping": 1}),
        ] {
            assert!(
                refused(typing(&bad).map(|_| String::new())).contains("isTyping"),
                "{bad}"
            );
        }
    }
}
