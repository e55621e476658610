//! The wide audiences' batches (`presence.audience` `role` or `all`): a
//! node gathers the changes one audience is to hear for a window, then
//! tells its sockets in that audience once, with each changed user's latest
//! status. A mass reconnect then costs each socket one frame per window,
//! not one per connect, and a user who flaps inside a window (a page
//! reload that outlived the grace, a flaky network) is not news.

use std::collections::HashMap;
use std::sync::Arc;

use super::{PresenceChange, PresenceStatus};
use crate::clock::Millis;
use crate::deadlines::Deadlines;

/// Who one batch is for, on this node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BatchAudience {
    /// The sockets of one role.
    Role(Arc<str>),
    /// Every socket.
    All,
}

/// What one audience hears at the end of its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub audience: BatchAudience,
    /// Each changed user's latest change, oldest first.
    pub changes: Vec<PresenceChange>,
}

#[derive(Debug)]
struct Pending {
    /// What the audience was last told of this user. Changes alternate
    /// (online, offline, online, ...), so it is the opposite of the first
    /// change of the window; nothing is kept per user between windows.
    told: PresenceStatus,
    latest: PresenceChange,
}

/// The open windows of this node's audiences.
#[derive(Debug)]
pub struct Batcher {
    window: Millis,
    open: HashMap<BatchAudience, HashMap<String, Pending>>,
    closes: Deadlines<BatchAudience>,
}

impl Batcher {
    pub fn new(window: Millis) -> Self {
        Self {
            window,
            open: HashMap::new(),
            closes: Deadlines::default(),
        }
    }

    /// Adds `change` to `audience`'s window, opening one if none is: then
    /// returns when it closes (the caller's scheduler must wake by then).
    /// A window opens with its first change and lasts the whole window, so
    /// two batches to one audience are at least a window apart.
    pub fn add(
        &mut self,
        audience: BatchAudience,
        change: &PresenceChange,
        now: Millis,
    ) -> Option<Millis> {
        let opened = match self.open.get_mut(&audience) {
            Some(_) => None,
            None => {
                let closes = now + self.window;
                self.closes.schedule(audience.clone(), closes);
                Some(closes)
            }
        };
        self.open
            .entry(audience)
            .or_default()
            .entry(change.user_id.clone())
            .and_modify(|p| p.latest = change.clone())
            .or_insert_with(|| Pending {
                told: change.status.opposite(),
                latest: change.clone(),
            });
        opened
    }

    /// The batches of every window closed by `now`: each changed user once,
    /// in their latest status, and none whose latest status is what the
    /// audience was last told (a flap). A window of nothing but flaps
    /// yields no batch.
    pub fn due(&mut self, now: Millis) -> Vec<Batch> {
        let mut batches = Vec::new();
        for audience in self.closes.pop_due(now) {
            let Some(pending) = self.open.remove(&audience) else {
                continue;
            };
            let mut changes: Vec<PresenceChange> = pending
                .into_values()
                .filter(|p| p.latest.status != p.told)
                .map(|p| p.latest)
                .collect();
            if changes.is_empty() {
                continue;
            }
            changes.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.user_id.cmp(&b.user_id)));
            batches.push(Batch { audience, changes });
        }
        batches
    }

    /// When the next window closes.
    pub fn next_due(&self) -> Option<Millis> {
        self.closes.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PresenceStatus::{Offline, Online};

    fn change(user: &str, status: PresenceStatus, at: Millis) -> PresenceChange {
        PresenceChange {
            user_id: user.into(),
            role: "radiologist".into(),
            status,
            at,
        }
    }

    fn role() -> BatchAudience {
        BatchAudience::Role(Arc::from("radiologist"))
    }

    fn users(batch: &Batch) -> Vec<(&str, PresenceStatus)> {
        batch
            .changes
            .iter()
            .map(|c| (c.user_id.as_str(), c.status))
            .collect()
    }

    #[test]
    fn a_window_opens_with_its_first_change_and_closes_one_window_later() {
        let mut b = Batcher::new(1_000);
        assert_eq!(b.next_due(), None);
        assert_eq!(b.add(role(), &change("u1", Online, 100), 100), Some(1_100));
        assert_eq!(b.add(role(), &change("u2", Online, 600), 600), None);
        assert_eq!(b.next_due(), Some(1_100));
        assert!(b.due(1_099).is_empty(), "not before the window closes");
        let batches = b.due(1_100);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].audience, role());
        assert_eq!(users(&batches[0]), [("u1", Online), ("u2", Online)]);
        assert_eq!(b.next_due(), None);
        assert!(b.due(5_000).is_empty(), "each batch once");
        // The next change opens the next window: one batch per window.
        assert_eq!(
            b.add(role(), &change("u3", Online, 1_200), 1_200),
            Some(2_200)
        );
    }

    #[test]
    fn each_user_appears_once_in_their_latest_status() {
        let mut b = Batcher::new(1_000);
        b.add(role(), &change("u1", Offline, 10), 10);
        b.add(role(), &change("u1", Online, 20), 20);
        b.add(role(), &change("u1", Offline, 30), 30);
        let batches = b.due(1_010);
        assert_eq!(batches[0].changes, [change("u1", Offline, 30)]);
    }

    #[test]
    fn a_flap_inside_the_window_cancels_out() {
        let mut b = Batcher::new(1_000);
        b.add(role(), &change("u1", Offline, 10), 10);
        b.add(role(), &change("u2", Online, 15), 15);
        b.add(role(), &change("u1", Online, 20), 20);
        let batches = b.due(1_010);
        assert_eq!(users(&batches[0]), [("u2", Online)], "u1 is as last told");
        // A window of nothing but flaps sends nothing at all.
        b.add(role(), &change("u2", Offline, 2_000), 2_000);
        b.add(role(), &change("u2", Online, 2_100), 2_100);
        assert!(b.due(3_000).is_empty());
        assert_eq!(b.next_due(), None);
    }

    #[test]
    fn audiences_have_windows_of_their_own() {
        let mut b = Batcher::new(1_000);
        let other = BatchAudience::Role(Arc::from("technologist"));
        assert_eq!(b.add(role(), &change("u1", Online, 0), 0), Some(1_000));
        assert_eq!(
            b.add(other.clone(), &change("u2", Online, 500), 500),
            Some(1_500)
        );
        assert_eq!(
            b.add(BatchAudience::All, &change("u1", Online, 0), 700),
            Some(1_700)
        );
        let first = b.due(1_000);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].audience, role());
        assert_eq!(b.next_due(), Some(1_500));
        let rest = b.due(2_000);
        assert_eq!(
            rest.iter().map(|x| x.audience.clone()).collect::<Vec<_>>(),
            [other, BatchAudience::All]
        );
    }

    #[test]
    fn a_storm_of_connects_is_one_batch_per_window() {
        let mut b = Batcher::new(1_000);
        let mut opened = 0;
        for i in 0..10_000 {
            let at = i / 5; // 5,000 connects a second
            if b.add(role(), &change(&format!("u{i}"), Online, at), at)
                .is_some()
            {
                opened += 1;
            }
            let _ = b.due(at);
        }
        assert_eq!(opened, 2, "two seconds of connects, two windows");
        let last = b.due(3_000);
        assert_eq!(last.len(), 1);
    }
}
