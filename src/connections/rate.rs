//! Token buckets for rate budgets (a socket's events, an API key's or a
//! user's requests), driven by explicit times so they are tested without
//! sleeping.

use std::collections::HashMap;
use std::hash::Hash;

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

    /// Whether the bucket has refilled to `burst` by `now`: it then
    /// behaves as a new one, and can be forgotten.
    fn full_at(&self, now: Millis, per_second: u32, burst: u32) -> bool {
        let elapsed = (now - self.last).max(0) as f64 / 1000.0;
        self.tokens + elapsed * per_second as f64 >= burst as f64
    }
}

/// One bucket per key (a user, ...), made full on the key's first use.
/// Buckets that refilled are forgotten now and then, so keys that went
/// quiet cost no memory.
#[derive(Debug)]
pub struct Buckets<K> {
    buckets: HashMap<K, TokenBucket>,
    per_second: u32,
    burst: u32,
    /// When the refilled buckets were last forgotten.
    swept: Millis,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(per_second: u32, burst: u32, now: Millis) -> Self {
        Self {
            buckets: HashMap::new(),
            per_second,
            burst,
            swept: now,
        }
    }

    /// Takes one token of `key`'s bucket at `now`; false when it is empty.
    pub fn try_take(&mut self, key: &K, now: Millis) -> bool {
        let (per_second, burst) = (self.per_second, self.burst);
        // A full bucket refills from empty in burst / per_second seconds:
        // looking that often keeps the map to the keys active since.
        let refill_ms = (burst as i64 * 1000 / per_second as i64).max(1000);
        if now - self.swept >= refill_ms {
            self.buckets
                .retain(|_, b| !b.full_at(now, per_second, burst));
            self.swept = now;
        }
        self.buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(burst, now))
            .try_take(now, per_second, burst)
    }

    /// Keys with a bucket held (for tests).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
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

    #[test]
    fn each_key_has_its_own_budget_and_quiet_keys_are_forgotten() {
        let mut b = Buckets::new(1, 2, 0);
        assert!(b.try_take(&"ann", 0));
        assert!(b.try_take(&"ann", 0));
        assert!(!b.try_take(&"ann", 0), "ann spent her burst");
        assert!(b.try_take(&"bob", 0), "bob is unaffected");
        assert!(!b.try_take(&"ann", 999));
        assert!(b.try_take(&"ann", 1000), "one a second comes back");
        assert_eq!(b.len(), 2);
        // Two seconds refill a burst of two: both buckets are full again
        // and forgotten; the next take makes a full one.
        assert!(b.try_take(&"cat", 3000));
        assert_eq!(b.len(), 1);
        assert!(b.try_take(&"ann", 3000) && b.try_take(&"ann", 3000));
        assert!(!b.try_take(&"ann", 3000));
    }
}
