//! Socket.IO packet decoding (the common parser the server uses): any text,
//! and any binary attachment after it, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_parser_common::CommonParser;

fuzz_target!(|input: (&str, &[u8])| {
    let (text, attachment) = input;
    let state = ParserState::default();
    let config = ParseConfig::default();
    let _ = CommonParser.decode_str(&config, &state, text.to_string().into());
    let _ = CommonParser.decode_bin(&config, &state, attachment.to_vec().into());
});
