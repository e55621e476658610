//! A witness's file of checkpoint lines, as `herald audit verify
//! --checkpoint` reads it: any text never panics and never verifies (only
//! a line signed with the server's key does); and a checkpoint of any
//! head, signed and written as a line, reads back as exactly itself.
#![no_main]

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use herald::trail::checkpoint::{sign, Checkpoint, Signed};
use herald::trail::witnessed::read_lines;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::from_bytes(&[0x5a; 32]))
}

fn checkpoint(u: &mut Unstructured) -> Result<Checkpoint> {
    Ok(Checkpoint {
        seq: u.arbitrary()?,
        hash: u.arbitrary()?,
        at: u.arbitrary()?,
    })
}

fuzz_target!(|data: &[u8]| {
    let public = [key().verifying_key()];
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(lines) = read_lines(text, &public) {
            assert!(lines.is_empty(), "an unsigned text verified: {text:?}");
        }
    }
    if let Ok(c) = checkpoint(&mut Unstructured::new(data)) {
        let signed = sign(key(), c);
        let line = signed.to_line();
        assert!(!line.contains('\n'), "one line: {line:?}");
        let back = Signed::parse_verified(&line, &public).expect("its own line verifies");
        assert_eq!(back, signed);
    }
});
