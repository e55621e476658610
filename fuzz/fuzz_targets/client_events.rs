//! Client event payloads: any JSON never panics, an accepted
//! acknowledgement names a valid id, nothing is accepted for another
//! user or session, an accepted room (`join_room`, `leave_room`,
//! `typing`, a call to a room) is a valid room name and exactly the one
//! asked for, and an accepted call event is within its limits.
#![no_main]

use herald::auth;
use herald::hub::Callee;
use herald::notification::valid_id;
use herald::rooms::{pattern_matches, valid_room};
use herald::socketio::{call_payload, payload};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// A call id or socket id as the call events accept them.
fn short_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(id) = payload::acknowledge(&value, "u1") {
        assert!(valid_id(&id), "accepted an invalid id {id:?}");
        if let Some(user) = value.get("userId").filter(|u| !u.is_null()) {
            assert!(user == "u1", "accepted another user's acknowledgement");
        }
    }
    if let Ok(session) = payload::extend_session(&value, "s1") {
        assert_eq!(session, "s1");
    }
    if let Ok(token) = payload::refresh_token(&value) {
        assert!(!token.is_empty());
    }
    // join_room and leave_room.
    if let Ok(room) = payload::room(&value) {
        assert!(valid_room(&room), "accepted the room {room:?}");
        assert_eq!(value["room"], room.as_str());
        // Every valid name is opened by "*" and by itself; a pattern
        // opens it only as an exact name or as a prefix before a final `*`.
        assert!(pattern_matches("*", &room) && pattern_matches(&room, &room));
        if let Some(pattern) = value.get("pattern").and_then(Value::as_str) {
            if pattern_matches(pattern, &room) {
                let prefix = pattern.strip_suffix('*');
                assert!(
                    pattern == room || prefix.is_some_and(|p| room.starts_with(p)),
                    "{pattern:?} opened {room:?}"
                );
                // A `*` before the last character is literal: no valid
                // name has one.
                assert!(!prefix.unwrap_or(pattern).contains('*'));
            }
        }
    }
    if let Ok((room, is_typing)) = payload::typing(&value) {
        assert!(valid_room(&room), "accepted the room {room:?}");
        assert_eq!(value["room"], room.as_str());
        assert_eq!(value["isTyping"], is_typing);
    }
    if let Ok((callee, media)) = call_payload::invite(&value) {
        assert!(!media.is_empty() && media.len() <= 2);
        assert!(media.iter().all(|m| m == "audio" || m == "video"));
        match callee {
            Callee::User(user) => assert!(auth::valid_id(&user), "called {user:?}"),
            Callee::Room(room) => assert!(valid_room(&room), "called the room {room:?}"),
        }
    }
    if let Ok((call, accept)) = call_payload::answer(&value) {
        assert!(short_id(&call), "answered the call {call:?}");
        assert_eq!(value["accept"], accept);
    }
    if let Ok(call) = call_payload::end(&value) {
        assert!(short_id(&call), "ended the call {call:?}");
    }
    if let Ok(signal) = call_payload::signal(&value) {
        let size = serde_json::to_vec(&signal.payload).unwrap().len();
        assert!(
            size <= call_payload::MAX_SIGNAL_BYTES,
            "accepted {size} bytes"
        );
        assert!(["offer", "answer", "candidate"].contains(&signal.kind));
        assert!(short_id(&signal.call_id) && short_id(&signal.to));
    }
});
