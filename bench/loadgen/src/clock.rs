//! One time base for the whole generator: nanoseconds since the process's
//! epoch. Send timestamps embedded in payloads (`t`) and receipt times both
//! come from here, so end-to-end latency is measured inside one process.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the generator's epoch (fixed at the first call).
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}
