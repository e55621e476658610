//! A deadline queue: one entry per key, ordered by time, so one task can
//! serve every session and token timer (no sleeping task per socket).

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use crate::clock::Millis;

#[derive(Debug)]
pub struct Deadlines<K: Ord + Hash + Clone> {
    by_time: BTreeSet<(Millis, K)>,
    by_key: HashMap<K, Millis>,
}

impl<K: Ord + Hash + Clone> Default for Deadlines<K> {
    fn default() -> Self {
        Self {
            by_time: BTreeSet::new(),
            by_key: HashMap::new(),
        }
    }
}

impl<K: Ord + Hash + Clone> Deadlines<K> {
    /// Sets `key`'s deadline to `at`, replacing any earlier one.
    pub fn schedule(&mut self, key: K, at: Millis) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    pub fn cancel<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some((key, old)) = self.by_key.remove_entry(key) {
            self.by_time.remove(&(old, key));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Millis> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns every key whose deadline is at or before `now`, earliest first.
    pub fn pop_due(&mut self, now: Millis) -> Vec<K> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.by_time.pop_first() {
                self.by_key.remove(&key);
                due.push(key);
            }
        }
        due
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_and_reschedules_replace() {
        let mut d = Deadlines::default();
        d.schedule("a", 30);
        d.schedule("b", 10);
        d.schedule("c", 20);
        d.schedule("a", 5);
        assert_eq!(d.next(), Some(5));
        assert_eq!(d.pop_due(20), vec!["a", "b", "c"]);
        assert!(d.is_empty());
    }

    #[test]
    fn cancelled_keys_never_fire() {
        let mut d = Deadlines::default();
        d.schedule(1, 10);
        d.schedule(2, 10);
        d.cancel(&1);
        assert_eq!(d.pop_due(100), vec![2]);
        assert_eq!(d.next(), None);
    }

    #[test]
    fn nothing_is_due_early() {
        let mut d = Deadlines::default();
        d.schedule("x", 10);
        assert!(d.pop_due(9).is_empty());
        assert_eq!(d.len(), 1);
    }
}
