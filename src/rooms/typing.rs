//! Typing indicators, per user and room: what the room was last told, and
//! what is still to be told. A user's `typing` is relayed at most once a
//! second (a change inside that second goes out when it ends, so the room
//! never keeps a stale state); a `true` not refreshed for 5 s, a leave and
//! a disconnect are told as `false` on the user's behalf. Pure state on
//! the injectable clock: the Hub feeds it times and sends what it returns.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Millis;
use crate::deadlines::Deadlines;

/// Least time between two relayed `typing` of one user in one room.
pub const THROTTLE_MS: Millis = 1_000;
/// How long a `true` stands without a refresh.
pub const STALE_MS: Millis = 5_000;

type Key = (Arc<str>, Arc<str>);

/// A `typing` the room is to hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub room: Arc<str>,
    pub user_id: Arc<str>,
    pub is_typing: bool,
    pub at: Millis,
}

#[derive(Debug)]
struct State {
    /// What the room was last told, and when.
    told: bool,
    told_at: Millis,
    /// A change that came inside the throttle: told when it ends.
    pending: Option<bool>,
    /// Until when the user's last `true` stands.
    fresh_until: Millis,
}

impl State {
    /// The next moment this state needs a look: a pending change, a
    /// `true` going stale, or (idle) the end of the throttle, when it is
    /// forgotten.
    fn next(&self) -> Millis {
        let throttle_end = self.told_at.saturating_add(THROTTLE_MS);
        match (self.pending, self.told) {
            (Some(_), true) => throttle_end.min(self.fresh_until),
            (Some(_), false) | (None, false) => throttle_end,
            (None, true) => self.fresh_until,
        }
    }
}

#[derive(Debug, Default)]
pub struct Typing {
    states: HashMap<Key, State>,
    due: Deadlines<Key>,
}

impl Typing {
    /// A member's `typing { room, isTyping }` at `now`: what the room hears
    /// at once, if anything (a `false` when the room was not told `true`
    /// is not news; a change inside the throttle waits for [`Typing::due`]).
    pub fn input(
        &mut self,
        room: &Arc<str>,
        user: &Arc<str>,
        is_typing: bool,
        now: Millis,
    ) -> Option<Told> {
        let key = (room.clone(), user.clone());
        let st = self.states.entry(key.clone()).or_insert(State {
            told: false,
            told_at: Millis::MIN,
            pending: None,
            fresh_until: now,
        });
        if is_typing {
            st.fresh_until = now + STALE_MS;
        }
        let mut told = None;
        if now >= st.told_at.saturating_add(THROTTLE_MS) {
            st.pending = None;
            if is_typing || st.told {
                st.told = is_typing;
                st.told_at = now;
                told = Some(is_typing);
            }
        } else {
            st.pending = (is_typing != st.told).then_some(is_typing);
        }
        let next = st.next();
        self.due.schedule(key, next);
        told.map(|is_typing| Told {
            room: room.clone(),
            user_id: user.clone(),
            is_typing,
            at: now,
        })
    }

    /// `user` left `room` (a leave or a disconnect): `false` on their
    /// behalf if the room was told, or was about to be told, `true`.
    pub fn left(&mut self, room: &str, user: &str, now: Millis) -> Option<Told> {
        let key: Key = (Arc::from(room), Arc::from(user));
        let st = self.states.remove(&key)?;
        self.due.cancel(&key);
        (st.told || st.pending == Some(true)).then_some(Told {
            room: key.0,
            user_id: key.1,
            is_typing: false,
            at: now,
        })
    }

    /// What falls due by `now`: changes held by the throttle, and `true`s
    /// gone stale (told as `false`). Idle states are forgotten.
    pub fn due(&mut self, now: Millis) -> Vec<Told> {
        let mut out = Vec::new();
        for key in self.due.pop_due(now) {
            let Some(st) = self.states.get_mut(&key) else {
                continue;
            };
            let mut tell = None;
            if now >= st.told_at.saturating_add(THROTTLE_MS) {
                match st.pending.take() {
                    // A `true` held so long that it went stale is not told.
                    Some(true) if now < st.fresh_until => tell = Some(true),
                    Some(false) => tell = Some(false),
                    _ => {}
                }
            }
            if (tell == Some(true) || (tell.is_none() && st.told)) && now >= st.fresh_until {
                tell = Some(false);
            }
            if let Some(v) = tell {
                if v != st.told || v {
                    st.told = v;
                    st.told_at = now;
                    out.push(Told {
                        room: key.0.clone(),
                        user_id: key.1.clone(),
                        is_typing: v,
                        at: now,
                    });
                }
            }
            if !st.told && st.pending.is_none() && now >= st.told_at.saturating_add(THROTTLE_MS) {
                self.states.remove(&key);
                continue;
            }
            let next = st.next();
            self.due.schedule(key, next);
        }
        out
    }

    /// When something next falls due.
    pub fn next_due(&self) -> Option<Millis> {
        self.due.next()
    }

    /// Users and rooms with a state kept (for tests and bounds).
    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (Arc<str>, Arc<str>) {
        (Arc::from("study:1"), Arc::from("u1"))
    }

    fn flags(v: &[Told]) -> Vec<(bool, Millis)> {
        v.iter().map(|t| (t.is_typing, t.at)).collect()
    }

    #[test]
    fn at_most_one_a_second_and_the_last_change_is_told_when_it_ends() {
        let (room, user) = ids();
        let mut t = Typing::default();
        let first = t.input(&room, &user, true, 0).unwrap();
        assert!(first.is_typing);
        // Refreshes inside the second are not relayed.
        assert_eq!(t.input(&room, &user, true, 300), None);
        // A stop inside the second waits for its end, not for the 5 s.
        assert_eq!(t.input(&room, &user, false, 400), None);
        assert_eq!(t.next_due(), Some(1_000));
        assert!(t.due(999).is_empty());
        assert_eq!(flags(&t.due(1_000)), [(false, 1_000)]);
        // Idle: forgotten once its throttle ends.
        assert!(t.due(2_000).is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn a_refresh_each_second_is_relayed_each_second() {
        let (room, user) = ids();
        let mut t = Typing::default();
        let mut relayed = 0;
        for ms in (0..10_000).step_by(250) {
            relayed += usize::from(t.input(&room, &user, true, ms).is_some());
            relayed += t.due(ms).len();
        }
        assert_eq!(relayed, 10, "ten seconds of typing, ten relays");
    }

    #[test]
    fn a_true_not_refreshed_for_five_seconds_is_told_false() {
        let (room, user) = ids();
        let mut t = Typing::default();
        t.input(&room, &user, true, 0);
        assert_eq!(t.next_due(), Some(STALE_MS));
        assert!(t.due(4_999).is_empty());
        let told = t.due(5_000);
        assert_eq!(flags(&told), [(false, 5_000)]);
        assert_eq!(&*told[0].user_id, "u1");
        assert!(t.due(6_000).is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn a_refresh_moves_the_staleness() {
        let (room, user) = ids();
        let mut t = Typing::default();
        t.input(&room, &user, true, 0);
        t.input(&room, &user, true, 4_000);
        assert!(t.due(5_000).is_empty(), "refreshed at 4 s");
        assert_eq!(flags(&t.due(9_000)), [(false, 9_000)]);
    }

    #[test]
    fn a_false_when_not_typing_is_not_news() {
        let (room, user) = ids();
        let mut t = Typing::default();
        assert_eq!(t.input(&room, &user, false, 0), None);
        assert!(t.due(10_000).is_empty());
    }

    #[test]
    fn leaving_tells_false_only_after_a_true() {
        let (room, user) = ids();
        let mut t = Typing::default();
        assert_eq!(t.left("study:1", "u1", 0), None);
        t.input(&room, &user, true, 0);
        let told = t.left("study:1", "u1", 100).unwrap();
        assert!(!told.is_typing);
        assert_eq!(told.at, 100);
        assert!(t.is_empty() && t.next_due().is_none());
        // A start held by the throttle is cleared too.
        t.input(&room, &user, true, 200);
        t.input(&room, &user, false, 300);
        t.input(&room, &user, true, 400);
        assert!(t.left("study:1", "u1", 500).is_some());
    }

    #[test]
    fn users_and_rooms_are_apart() {
        let (room, user) = ids();
        let other: Arc<str> = Arc::from("u2");
        let board: Arc<str> = Arc::from("board:1");
        let mut t = Typing::default();
        assert!(t.input(&room, &user, true, 0).is_some());
        assert!(t.input(&room, &other, true, 10).is_some());
        assert!(t.input(&board, &user, true, 20).is_some());
        assert_eq!(t.len(), 3);
    }
}
