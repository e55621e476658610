//! A token bucket for per-socket event budgets, driven by explicit times so
//! it is tested without sleeping.

use crate::clock::Millis;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Millis,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens at time `now`.
    pub fn new(burst: u32, now: Millis) -> Self {
        Self {
            tokens: burst as f64,
            last: now,
        }
    }

    /// Takes one token if there is one, refilling `per_second` tokens per
    /// second up to `burst`.
    pub fn try_take(&mut self, now: Millis, per_second: u32, burst: u32) -> bool {
        let elapsed = (now - self.last).max(0) as f64 / 1000.0;
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * per_second as f64).min(burst as f64);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_the_steady_rate() {
        let mut b = TokenBucket::new(50, 0);
        assert_eq!((0..60).filter(|_| b.try_take(0, 20, 50)).count(), 50);
        assert!(!b.try_take(0, 20, 50));
        // 20 per second: one token every 50 ms.
        assert!(!b.try_take(49, 20, 50));
        assert!(b.try_take(50, 20, 50));
        assert!(!b.try_take(50, 20, 50));
    }

    #[test]
    fn refill_is_capped_at_burst() {
        let mut b = TokenBucket::new(5, 0);
        for _ in 0..5 {
            assert!(b.try_take(0, 1, 5));
        }
        assert_eq!((0..10).filter(|_| b.try_take(60_000, 1, 5)).count(), 5);
    }

    #[test]
    fn a_clock_going_backwards_grants_nothing_extra() {
        let mut b = TokenBucket::new(1, 1000);
        assert!(b.try_take(1000, 1, 1));
        assert!(!b.try_take(500, 1, 1));
        assert!(!b.try_take(1000, 1, 1));
    }
}
