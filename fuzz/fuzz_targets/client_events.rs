//! Client event payloads: any JSON never panics, an accepted
//! acknowledgement names a valid id, nothing is accepted for another
//! user or session, and an accepted call signal is within its limits.
#![no_main]

use herald::notification::valid_id;
use herald::socketio::{call_payload, payload};
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
    if let Ok((_, media)) = call_payload::invite(&value) {
        assert!(!media.is_empty() && media.len() <= 2);
    }
    let _ = call_payload::answer(&value);
    let _ = call_payload::end(&value);
    if let Ok(signal) = call_payload::signal(&value) {
        let size = serde_json::to_vec(&signal.payload).unwrap().len();
        assert!(size <= call_payload::MAX_SIGNAL_BYTES, "accepted {size} bytes");
        assert!(["offer", "answer", "candidate"].contains(&signal.kind));
    }
});
