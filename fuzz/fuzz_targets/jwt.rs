//! JWT verification on arbitrary input: never a panic, and never an
//! identity from a token the fuzzer could not have signed.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use herald::auth::Verifier;
use herald::clock::ManualClock;
use herald::config::{JwtAlgorithm, JwtConfig, Secret};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let config = JwtConfig {
        secret: Secret::new("fuzzing-secret-0123456789abcdef"),
        algorithm: JwtAlgorithm::Hs256,
        leeway: Duration::ZERO,
        audience: None,
        issuer: None,
        development_secret: false,
    };
    let verifier = Verifier::new(&config, Arc::new(ManualClock::new(0)));
    // A forged token verifying would mean the fuzzer found an HMAC
    // collision or a bypass (alg none, a header choosing the key).
    assert!(verifier.verify(token).is_err(), "accepted: {token:?}");
});
