//! The direct websocket's RFC 6455 frame reader (the patched Engine.IO
//! layer): any bytes, read in any pieces, never panic; a text message is
//! valid UTF-8 (the transport hands it on unchecked); and reading in pieces
//! gives exactly what reading at once gives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [cut, a, b, input @ ..] = data else {
        return;
    };
    // Small limits, so that the limit checks are reached too.
    let max_frame = usize::from(u16::from_le_bytes([*a, *b]));
    let max_message = max_frame.saturating_mul(2);
    let whole = engineioxide::fuzz_read(input, input.len(), max_frame, max_message);
    for (kind, payload) in &whole.0 {
        if *kind == b't' {
            assert!(std::str::from_utf8(payload).is_ok(), "text frame not UTF-8");
        }
    }
    let pieces = engineioxide::fuzz_read(input, usize::from(*cut), max_frame, max_message);
    assert_eq!(whole, pieces, "reading in pieces of {cut} bytes differs");
});
