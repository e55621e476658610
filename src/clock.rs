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

/// Formats Unix milliseconds as `2026-11-25T10:00:00.000Z`. Written digit
/// by digit: it runs several times per notification, and `format!` with
/// seven padded fields cost about 30 times as much.
pub fn rfc3339(ms: Millis) -> String {
    const EPOCH: &str = "1970-01-01T00:00:00.000Z";
    let Ok(t) = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return String::from(EPOCH);
    };
    let Ok(year) = u32::try_from(t.year()) else {
        return String::from(EPOCH);
    };
    if year > 9999 {
        return String::from(EPOCH);
    }
    let mut out = *b"0000-00-00T00:00:00.000Z";
    digits(&mut out[0..4], year);
    digits(&mut out[5..7], u8::from(t.month()).into());
    digits(&mut out[8..10], t.day().into());
    digits(&mut out[11..13], t.hour().into());
    digits(&mut out[14..16], t.minute().into());
    digits(&mut out[17..19], t.second().into());
    digits(&mut out[20..23], ms.rem_euclid(1000) as u32);
    String::from(std::str::from_utf8(&out).unwrap_or(EPOCH))
}

/// Writes `value`'s last `out.len()` decimal digits into `out`, zero-padded.
fn digits(out: &mut [u8], mut value: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_600_800_123), "2026-11-25T10:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_007), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn agrees_with_the_time_crate_across_centuries() {
        let format = time::format_description::parse_borrowed::<2>(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z",
        )
        .unwrap();
        // A prime step visits every field value many times over.
        let mut ms: Millis = -2_208_988_800_000; // 1900-01-01
        while ms < 4_102_444_800_000 {
            // 2100-01-01
            let expected = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
                .unwrap()
                .format(&format)
                .unwrap();
            assert_eq!(rfc3339(ms), expected, "at {ms}");
            ms += 7_919_993_377;
        }
    }

    #[test]
    fn out_of_range_times_read_as_the_epoch() {
        assert_eq!(rfc3339(Millis::MAX), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(-62_167_219_200_001), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(-62_167_219_200_000), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1000);
        assert_eq!(c.now_ms(), 1000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1500);
    }
}
