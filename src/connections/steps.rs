//! What one socket has heard of the escalation steps: the reminders and
//! `notification_escalated` events it was told, and the notifications it is
//! done with (its user acknowledged them, or this node heard them close).
//!
//! The socket's own node is the one place that sees both the step and the
//! acknowledgement of that socket, in order: the engine that fires a step
//! may tell the sockets after the acknowledgement was answered (it commits
//! the step, then tells; the acknowledgement can close the notification in
//! between), and a node that takes a step over whose first node told the
//! sockets but could not record it done tells them again. Both copies are
//! dropped here, at the socket, so a reminder is never shown after the
//! socket's acknowledgement and never twice, while the step itself stays
//! at-least-once (a node that dies before telling leaves the telling to the
//! node that takes the step over).
//!
//! Bounded: the last [`REMEMBERED`] entries, each a 64-bit hash of the
//! notification id and the step (16 bytes), so at most 512 bytes a socket
//! and nothing (an empty `Option<Box>`) for a socket that never heard a
//! step or a closing; where no escalation policy is configured, closings
//! are not remembered at all. Forgetting the oldest only matters for a socket that heard 32
//! newer steps or closings since, and then at worst lets a repeat through.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

/// Entries one socket keeps.
pub const REMEMBERED: usize = 32;

/// One step as a socket hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A `renotify` step: `critical_notification` with `"reminder": n`.
    Reminder(u32),
    /// `notification_escalated` of `level`.
    Escalated(u32),
}

impl Step {
    /// The step's slot in an entry: reminders and escalation levels apart,
    /// and [`DONE`] apart from both.
    fn code(self) -> u32 {
        match self {
            Step::Reminder(n) => n & 0x7fff_ffff,
            Step::Escalated(level) => 0x8000_0000 | (level & 0x7fff_ffff),
        }
    }
}

/// The entry that says the socket is done with a notification.
const DONE: u32 = u32::MAX;

/// The entries of one socket, oldest first.
#[derive(Debug, Default)]
pub struct Heard {
    entries: VecDeque<(u64, u32)>,
}

/// The notification id as an entry keeps it: a fixed-key hash, so that an
/// entry's size does not depend on the id's length.
fn key(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

impl Heard {
    fn has(&self, id: u64, code: u32) -> bool {
        self.entries.iter().any(|&e| e == (id, code))
    }

    fn remember(&mut self, id: u64, code: u32) {
        if self.has(id, code) {
            return;
        }
        if self.entries.len() == REMEMBERED {
            self.entries.pop_front();
        }
        self.entries.push_back((id, code));
    }

    /// Whether `step` of `id` may still be told: not told yet, and the
    /// socket is not done with `id`.
    pub fn may_tell(&self, id: &str, step: Step) -> bool {
        let id = key(id);
        !self.has(id, DONE) && !self.has(id, step.code())
    }

    /// Remembers that `step` of `id` was told.
    pub fn told(&mut self, id: &str, step: Step) {
        self.remember(key(id), step.code());
    }

    /// Remembers that the socket is done with `id`: no step of it is told
    /// any more.
    pub fn done(&mut self, id: &str) {
        self.remember(key(id), DONE);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_told_once() {
        let mut h = Heard::default();
        assert!(h.may_tell("n", Step::Reminder(1)));
        h.told("n", Step::Reminder(1));
        assert!(!h.may_tell("n", Step::Reminder(1)));
        assert!(h.may_tell("n", Step::Reminder(2)));
        assert!(
            h.may_tell("n", Step::Escalated(1)),
            "a level is not a reminder"
        );
        assert!(h.may_tell("m", Step::Reminder(1)), "another notification");
    }

    #[test]
    fn nothing_is_told_of_a_notification_the_socket_is_done_with() {
        let mut h = Heard::default();
        h.told("n", Step::Reminder(1));
        h.done("n");
        assert!(!h.may_tell("n", Step::Reminder(2)));
        assert!(!h.may_tell("n", Step::Escalated(3)));
        assert!(h.may_tell("m", Step::Reminder(2)));
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_oldest() {
        let mut h = Heard::default();
        h.done("old");
        for i in 0..REMEMBERED as u32 {
            h.told("n", Step::Reminder(i + 1));
            h.told("n", Step::Reminder(i + 1));
        }
        assert_eq!(h.len(), REMEMBERED);
        assert!(h.may_tell("old", Step::Reminder(1)), "forgotten");
        assert!(!h.may_tell("n", Step::Reminder(REMEMBERED as u32)));
    }
}
