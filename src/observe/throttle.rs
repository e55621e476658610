//! At most one log line per period for something that can happen on every
//! request of a flood (a refused origin, a refused connection): the first
//! one is logged at once, the next one a period later with how many were
//! left unlogged in between. Metrics count every one; the log is for the
//! operator to see that it happens, and who it is.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::clock::Millis;

pub struct Throttle {
    every: Millis,
    last: AtomicI64,
    quiet: AtomicU64,
}

impl Throttle {
    pub const fn new(every: Millis) -> Self {
        Self {
            every,
            last: AtomicI64::new(i64::MIN),
            quiet: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this occurrence at `now` is to be logged, `n` being
    /// how many were not logged since the last logged one; `None` when it
    /// is to stay quiet.
    pub fn allow(&self, now: Millis) -> Option<u64> {
        let last = self.last.load(Ordering::SeqCst);
        if now.saturating_sub(last) >= self.every
            && self
                .last
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            return Some(self.quiet.swap(0, Ordering::SeqCst));
        }
        self.quiet.fetch_add(1, Ordering::SeqCst);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_count_left_quiet() {
        let t = Throttle::new(10_000);
        assert_eq!(t.allow(1_000), Some(0));
        assert_eq!(t.allow(1_001), None);
        assert_eq!(t.allow(10_999), None);
        assert_eq!(t.allow(11_000), Some(2));
        assert_eq!(t.allow(11_000), None);
        assert_eq!(t.allow(30_000), Some(1));
    }
}
