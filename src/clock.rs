//! Time as Herald sees it: an injectable wall clock in Unix milliseconds, and
//! the RFC 3339 (UTC, milliseconds) format every timestamp on the wire uses.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A source of wall-clock time. Production uses [`SystemClock`]; tests use
/// [`ManualClock`] so that timeouts of minutes are exercised in microseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> Millis;
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        let now = OffsetDateTime::now_utc();
        (now.unix_timestamp_nanos() / 1_000_000) as Millis
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Millis) -> Self {
        Self(AtomicI64::new(start))
    }
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats Unix milliseconds as `2026-11-25T10:00:00.000Z`.
pub fn rfc3339(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => {
            let d = t.date();
            let tm = t.time();
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                d.year(),
                u8::from(d.month()),
                d.day(),
                tm.hour(),
                tm.minute(),
                tm.second(),
                millis
            )
        }
        Err(_) => String::from("1970-01-01T00:00:00.000Z"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_600_800_123), "2026-11-25T10:00:00.123Z");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1000);
        assert_eq!(c.now_ms(), 1000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1500);
    }
}
