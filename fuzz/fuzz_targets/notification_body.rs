//! A backend's notification body on arbitrary JSON: accepted or refused,
//! never a panic; an accepted one keeps a valid id and reads back as stored.
#![no_main]

use herald::notification::{valid_id, Notification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(n) = Notification::from_body(body, || "generated".to_string(), 0) {
        assert!(valid_id(&n.id), "accepted id {:?}", n.id);
        let stored = n.to_json();
        let back = Notification::from_stored(n.id.clone(), n.created_at, &stored)
            .expect("a stored body reads back");
        assert_eq!(back.to_json(), stored);
    }
});
