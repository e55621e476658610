//! Notification bodies from the API: any JSON never panics; an accepted
//! one has a valid id, carries Herald's `createdAt`, never a client's
//! `redelivered`, and its stored text reads back as the same notification.
#![no_main]

use herald::notification::{valid_id, Notification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(n) = Notification::from_body(body, || "generated".into(), 1_000) else {
        return;
    };
    assert!(valid_id(&n.id), "accepted an invalid id {:?}", n.id);
    let stored: serde_json::Value =
        serde_json::from_str(&n.to_json()).expect("stored text is JSON");
    assert_eq!(stored["id"], n.id.as_str());
    assert_eq!(stored["createdAt"], "1970-01-01T00:00:01.000Z");
    assert!(stored.get("redelivered").is_none());
});
