//! The `room_presence` windows of this node: a change of a room's members
//! opens the room's window (unless one is open), and when it closes the
//! room's sockets here hear the members once. A burst of joins then costs
//! each socket one frame per window, O(members) frames in all rather than
//! one frame per socket per join (O(members²)).

use std::collections::HashSet;
use std::sync::Arc;

use crate::clock::Millis;
use crate::deadlines::Deadlines;

#[derive(Debug)]
pub struct PresenceWindows {
    window: Millis,
    open: HashSet<Arc<str>>,
    closes: Deadlines<Arc<str>>,
}

impl PresenceWindows {
    pub fn new(window: Millis) -> Self {
        Self {
            window,
            open: HashSet::new(),
            closes: Deadlines::default(),
        }
    }

    /// `room`'s members changed at `now`: opens its window unless one is
    /// open, and then returns when it closes (the scheduler must wake by
    /// then). Two frames to one room are at least a window apart.
    pub fn changed(&mut self, room: &str, now: Millis) -> Option<Millis> {
        if self.open.contains(room) {
            return None;
        }
        let room: Arc<str> = Arc::from(room);
        let closes = now + self.window;
        self.open.insert(room.clone());
        self.closes.schedule(room, closes);
        Some(closes)
    }

    /// The rooms whose window closed by `now`, each once.
    pub fn due(&mut self, now: Millis) -> Vec<Arc<str>> {
        let due = self.closes.pop_due(now);
        for room in &due {
            self.open.remove(room);
        }
        due
    }

    /// When the next window closes.
    pub fn next_due(&self) -> Option<Millis> {
        self.closes.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_opens_a_window_and_later_changes_ride_in_it() {
        let mut w = PresenceWindows::new(500);
        assert_eq!(w.changed("study:1", 100), Some(600));
        assert_eq!(w.changed("study:1", 200), None);
        assert_eq!(w.changed("study:2", 300), Some(800));
        assert!(w.due(599).is_empty());
        assert_eq!(w.due(600), [Arc::from("study:1")]);
        assert_eq!(w.next_due(), Some(800));
        assert_eq!(w.changed("study:1", 650), Some(1_150), "the next window");
        assert_eq!(w.due(10_000).len(), 2);
        assert_eq!(w.next_due(), None);
    }

    #[test]
    fn a_burst_of_joins_is_one_frame_per_window() {
        // 200 viewers joining within one second, 500 ms windows: each
        // window ends in one frame per socket in the room, so at most
        // 3 windows, not 200.
        let mut w = PresenceWindows::new(500);
        let mut frames = 0;
        for i in 0..200 {
            let now = i * 5;
            w.changed("study:1", now);
            frames += w.due(now).len();
        }
        frames += w.due(2_000).len();
        assert!(frames <= 3, "{frames} windows for 200 joins");
    }
}
