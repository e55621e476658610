//! This node's socket table: the handles of the sockets connected here, by
//! id and indexed by user, session and role. What other nodes hold is the
//! cluster registry's business ([`crate::registry`]).
//!
//! The table also keeps the per-user socket cap on this node: a socket
//! takes its user's place when authenticated ([`Sockets::reserve`]), checked
//! and taken under one lock, so connects arriving together cannot all pass
//! a count that none of them is in yet. The place becomes the socket's
//! entry when it is added, and is given back if its connect fails
//! ([`Sockets::release`]) or lapses if it never completes.
//!
//! And the presence subscriptions of the sockets here ([`Watching`]), under
//! the same lock, so they end with their socket; and the sessions just
//! ended here ([`Ended`]), for the sockets whose connect raced the end;
//! and the study rooms each socket here sits in ([`Seats`]).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use smallvec::SmallVec;
use socketioxide::socket::Sid;

use crate::clock::Millis;
use crate::connections::connection::Handle;
use crate::connections::ended::Ended;
use crate::connections::handover::STRAY_AFTER_MS;
use crate::connections::seats::{RoomSeat, SeatRefused, Seats};
use crate::connections::watching::{WatchRefused, Watching};

#[derive(Default)]
struct Inner {
    by_sid: HashMap<Sid, Handle>,
    // Keys share the socket's `Conn` ids (no copy per index).
    by_user: HashMap<Arc<str>, Sids>,
    by_session: HashMap<Arc<str>, Sids>,
    by_role: HashMap<Arc<str>, usize>,
    /// Places under the cap taken by sockets whose connect is under way
    /// (not yet in the table), with when each was taken.
    reserved: HashMap<Arc<str>, Places>,
    watching: Watching,
    seats: Seats,
    ended: Ended,
}

/// A user's places held by connects under way: nearly always none or one.
type Places = SmallVec<[(Sid, Millis); 1]>;

fn unreserve(map: &mut HashMap<Arc<str>, Places>, user: &str, sid: Sid) {
    if let Some(places) = map.get_mut(user) {
        places.retain(|(s, _)| *s != sid);
        if places.is_empty() {
            map.remove(user);
        }
    }
}

/// The sockets of one user or session: nearly always one, kept inline (a
/// `Vec` would be an allocation of its own per connection, ~80 bytes).
type Sids = SmallVec<[Sid; 1]>;

fn unindex(map: &mut HashMap<Arc<str>, Sids>, key: &str, sid: Sid) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|s| *s != sid);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

#[derive(Default)]
pub struct Sockets {
    inner: RwLock<Inner>,
}

impl Sockets {
    pub fn add(&self, handle: Handle) {
        let mut inner = self.inner.write();
        let c = handle.conn.clone();
        if inner.by_sid.insert(c.sid, handle).is_some() {
            return;
        }
        // Its place is now its entry.
        unreserve(&mut inner.reserved, &c.user_id, c.sid);
        inner
            .by_user
            .entry(c.user_id.clone())
            .or_default()
            .push(c.sid);
        inner
            .by_session
            .entry(c.session_id.clone())
            .or_default()
            .push(c.sid);
        *inner.by_role.entry(c.role.clone()).or_default() += 1;
    }

    pub fn remove(&self, sid: Sid) -> Option<Handle> {
        let mut inner = self.inner.write();
        let handle = inner.by_sid.remove(&sid)?;
        inner.watching.forget(sid);
        let c = &handle.conn;
        unindex(&mut inner.by_user, &c.user_id, sid);
        unindex(&mut inner.by_session, &c.session_id, sid);
        if let Some(n) = inner.by_role.get_mut(&c.role) {
            *n -= 1;
            if *n == 0 {
                inner.by_role.remove(&c.role);
            }
        }
        Some(handle)
    }

    /// Takes one of `user`'s `cap` places for the socket `sid`, whose
    /// connect is under way; false (and nothing taken) when the user's
    /// sockets here and the places held already make `cap`. A place not
    /// turned into a socket within [`STRAY_AFTER_MS`] (a handshake that
    /// never completed) no longer counts.
    pub fn reserve(&self, user: &Arc<str>, sid: Sid, cap: usize, now: Millis) -> bool {
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let here = inner.by_user.get(&**user).map_or(0, |s| s.len());
        let places = inner.reserved.entry(user.clone()).or_default();
        places.retain(|(_, at)| now - *at < STRAY_AFTER_MS);
        if here + places.len() >= cap {
            if places.is_empty() {
                inner.reserved.remove(&**user);
            }
            return false;
        }
        places.push((sid, now));
        true
    }

    /// Gives back the place `sid` took (its connect was refused or closed
    /// before the socket was added). Idempotent.
    pub fn release(&self, user: &str, sid: Sid) {
        unreserve(&mut self.inner.write().reserved, user, sid);
    }

    /// Records that `session` ended (before its sockets here are looked
    /// for), for a socket of it whose connect is still under way.
    pub fn end_session(&self, session: &str, now: Millis) {
        self.inner.write().ended.record(session, now);
    }

    /// Whether `session` was recorded ended here lately (asked by a socket
    /// of it after it was added).
    pub fn session_ended(&self, session: &str, now: Millis) -> bool {
        self.inner.read().ended.contains(session, now)
    }

    pub fn get(&self, sid: Sid) -> Option<Handle> {
        self.inner.read().by_sid.get(&sid).cloned()
    }

    fn collect(&self, pick: impl Fn(&Inner) -> Option<&Sids>) -> Vec<Handle> {
        let inner = self.inner.read();
        pick(&inner)
            .map(|sids| {
                sids.iter()
                    .filter_map(|s| inner.by_sid.get(s).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn of_user(&self, user_id: &str) -> Vec<Handle> {
        self.collect(|i| i.by_user.get(user_id))
    }

    pub fn of_session(&self, session_id: &str) -> Vec<Handle> {
        self.collect(|i| i.by_session.get(session_id))
    }

    pub fn role_count(&self, role: &str) -> usize {
        self.inner.read().by_role.get(role).copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.inner.read().by_sid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Distinct users with a socket here, sorted.
    pub fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .inner
            .read()
            .by_user
            .keys()
            .map(|u| u.to_string())
            .collect();
        users.sort();
        users
    }

    /// Number of distinct users with a socket here.
    pub fn user_total(&self) -> usize {
        self.inner.read().by_user.len()
    }

    /// Number of `user`'s sockets here.
    pub fn user_count(&self, user_id: &str) -> usize {
        self.inner
            .read()
            .by_user
            .get(user_id)
            .map_or(0, |s| s.len())
    }

    /// Adds `users` to the presence subscriptions of socket `sid`, at most
    /// `max` in all; returns the users newly watched. Refused, with nothing
    /// changed, when the socket is not here (it left meanwhile) or the
    /// limit would be passed.
    pub fn watch(
        &self,
        sid: Sid,
        users: &[String],
        max: usize,
    ) -> Result<Vec<Arc<str>>, WatchRefused> {
        let mut inner = self.inner.write();
        if !inner.by_sid.contains_key(&sid) {
            return Err(WatchRefused::Gone);
        }
        inner.watching.watch(sid, users, max)
    }

    /// Takes `users` out of socket `sid`'s subscriptions; returns those it
    /// watched.
    pub fn unwatch(&self, sid: Sid, users: &[String]) -> Vec<Arc<str>> {
        self.inner.write().watching.unwatch(sid, users)
    }

    /// How many sockets here watch `user`'s presence.
    pub fn watchers(&self, user: &str) -> usize {
        self.inner.read().watching.watchers(user)
    }

    /// Seats socket `sid` in `room` at `now`; true when it was not there
    /// before. Refused when the socket is not here (it left meanwhile) or
    /// sits in too many rooms.
    pub fn sit(&self, sid: Sid, room: &str, now: Millis) -> Result<bool, SeatRefused> {
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let Some(h) = inner.by_sid.get(&sid) else {
            return Err(SeatRefused::Gone);
        };
        let user = h.conn.user_id.clone();
        inner.seats.sit(sid, &user, room, now)
    }

    /// Takes socket `sid` out of `room`; true when it sat there.
    pub fn stand(&self, sid: Sid, room: &str) -> bool {
        self.inner.write().seats.stand(sid, room)
    }

    /// Takes socket `sid` out of every room (it left): each room it sat
    /// in, with its user.
    pub fn unseat_all(&self, sid: Sid) -> Vec<(Arc<str>, Arc<str>)> {
        self.inner.write().seats.forget(sid)
    }

    /// Whether socket `sid` sits in `room`.
    pub fn sits(&self, sid: Sid, room: &str) -> bool {
        self.inner.read().seats.sits(sid, room)
    }

    /// The rooms socket `sid` sits in, each with when it joined.
    pub fn rooms_of(&self, sid: Sid) -> Vec<(Arc<str>, Millis)> {
        self.inner.read().seats.of_socket(sid)
    }

    /// The seats of `room` held by sockets still here (one taken out of
    /// the table is out of every answer at once, before its disconnect
    /// handler gives its seats back).
    pub fn room_seats(&self, room: &str) -> Vec<RoomSeat> {
        self.with_room_seats(room, |seats| seats.cloned().collect())
    }

    /// How many sockets here sit in `room`.
    pub fn room_count(&self, room: &str) -> usize {
        self.with_room_seats(room, |seats| seats.count())
    }

    /// `f` of the seats of `room` held by sockets still here, under the
    /// table's lock.
    fn with_room_seats<T>(
        &self,
        room: &str,
        f: impl FnOnce(&mut dyn Iterator<Item = &RoomSeat>) -> T,
    ) -> T {
        let inner = self.inner.read();
        let mut here = inner
            .seats
            .of_room(room)
            .iter()
            .filter(|s| inner.by_sid.contains_key(&s.sid));
        f(&mut here)
    }

    /// The handles here of `user`'s sockets in `room`.
    pub fn user_in_room(&self, room: &str, user: &str) -> Vec<Handle> {
        let inner = self.inner.read();
        inner
            .seats
            .of_room(room)
            .iter()
            .filter(|s| &*s.user_id == user)
            .filter_map(|s| inner.by_sid.get(&s.sid).cloned())
            .collect()
    }

    /// Every handle here.
    pub fn all(&self) -> Vec<Handle> {
        self.inner.read().by_sid.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_taken_up_to_the_cap_and_given_back() {
        let t = Sockets::default();
        let (u, other): (Arc<str>, Arc<str>) = (Arc::from("u"), Arc::from("v"));
        let (a, b, c) = (Sid::new(), Sid::new(), Sid::new());
        assert!(t.reserve(&u, a, 2, 0));
        assert!(t.reserve(&u, b, 2, 0));
        assert!(!t.reserve(&u, c, 2, 0), "the third place is refused");
        assert!(t.reserve(&other, c, 2, 0), "another user is not affected");
        t.release(&u, a);
        t.release(&u, a);
        assert!(t.reserve(&u, c, 2, 0), "a released place is free again");
        assert!(!t.reserve(&u, Sid::new(), 2, 0));
    }

    #[test]
    fn a_place_whose_connect_never_completes_lapses() {
        let t = Sockets::default();
        let u: Arc<str> = Arc::from("u");
        assert!(t.reserve(&u, Sid::new(), 1, 1_000));
        assert!(!t.reserve(&u, Sid::new(), 1, 1_000 + STRAY_AFTER_MS - 1));
        assert!(t.reserve(&u, Sid::new(), 1, 1_000 + STRAY_AFTER_MS));
    }
}
