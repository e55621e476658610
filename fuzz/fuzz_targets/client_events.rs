//! Client event payloads: any JSON never panics, an accepted
//! acknowledgement names a valid id, and nothing is accepted for another
//! user or session.
#![no_main]

use herald::notification::valid_id;
use herald::socketio::payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
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
});
