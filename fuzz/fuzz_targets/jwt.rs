//! Token verification: any text never panics and is never accepted (only
//! a token signed with the configured secret and algorithm is).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use herald::auth::Verifier;
use herald::clock::SystemClock;
use herald::config::{JwtAlgorithm, JwtConfig, Secret};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let config = JwtConfig {
            secret: Secret::new("fuzzing-secret-of-32-characters!"),
            algorithm: JwtAlgorithm::Hs256,
            leeway: Duration::ZERO,
            audience: None,
            issuer: None,
            development_secret: false,
        };
        Verifier::new(&config, Arc::new(SystemClock))
    })
}

fuzz_target!(|token: &str| {
    assert!(verifier().verify(token).is_err(), "accepted {token:?}");
});
