//! Engine.IO packet decoding (both protocol versions): any text never
//! panics, and a decoded packet encodes to text that decodes to it again.
#![no_main]

use engineioxide_core::{Packet, ProtocolVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    for version in [ProtocolVersion::V3, ProtocolVersion::V4] {
        if let Ok(packet) = Packet::parse(version, text.to_string()) {
            let again = Packet::parse(version, String::from(packet.clone()))
                .expect("an encoded packet decodes");
            assert_eq!(packet, again);
        }
    }
});
