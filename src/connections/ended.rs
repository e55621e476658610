//! The sessions this node was just told had ended (expired, logged out),
//! remembered for as long as a connect can take. A socket whose connect
//! began before the end was recorded is in the cluster's indexes, so the
//! end is sent to its node, but it may not be in the socket table yet to
//! receive it: its attachment, which adds it to the table, then finds the
//! session here. Recording the end before looking for the session's
//! sockets, and adding the socket before looking here, leaves no gap.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Millis;
use crate::connections::handover::STRAY_AFTER_MS;

/// Past this many entries the old ones are dropped at the next record.
const SWEEP_FROM: usize = 256;

#[derive(Default)]
pub struct Ended {
    at: HashMap<Arc<str>, Millis>,
}

impl Ended {
    pub fn record(&mut self, session: &str, now: Millis) {
        if self.at.len() >= SWEEP_FROM {
            self.at.retain(|_, at| now - *at < STRAY_AFTER_MS);
        }
        self.at.insert(Arc::from(session), now);
    }

    /// Whether `session` ended here within the time a connect can take.
    pub fn contains(&self, session: &str, now: Millis) -> bool {
        self.at
            .get(session)
            .is_some_and(|at| now - *at < STRAY_AFTER_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_is_remembered_as_long_as_a_connect_can_take() {
        let mut ended = Ended::default();
        ended.record("s1", 1_000);
        assert!(ended.contains("s1", 1_000));
        assert!(ended.contains("s1", 1_000 + STRAY_AFTER_MS - 1));
        assert!(!ended.contains("s1", 1_000 + STRAY_AFTER_MS));
        assert!(!ended.contains("s2", 1_000));
    }

    #[test]
    fn old_ends_are_dropped_once_many_are_kept() {
        let mut ended = Ended::default();
        for i in 0..SWEEP_FROM {
            ended.record(&format!("s{i}"), 0);
        }
        ended.record("late", STRAY_AFTER_MS);
        assert_eq!(ended.at.len(), 1);
        assert!(ended.contains("late", STRAY_AFTER_MS));
    }
}
