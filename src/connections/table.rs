//! This node's socket table: the handles of the sockets connected here, by
//! id and indexed by user, session and role. What other nodes hold is the
//! cluster registry's business ([`crate::registry`]).
//!
//! The table also keeps the per-user socket cap on this node: a socket
//! takes its user's place when authenticated ([`Sockets::reserve`]), checked
//! and taken under one lock, so connects arriving together cannot all pass
//! a count that none of them is in yet. The place becomes the socket's
//! entry when it is added, and is given back if its connect fails
//! ([`Sockets::release`]) or lapses if it never completes. A place holds
//! the connecting socket's state, so that a notification for its user
//! in the meantime is held for it ([`Sockets::of_user_and_attaching`]).
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
use crate::connections::connection::{Conn, Handle};
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
    /// (not yet in the table): their state, with when they authenticated.
    reserved: HashMap<Arc<str>, Places>,
    watching: Watching,
    seats: Seats,
    ended: Ended,
}

/// A user's places held by connects under way: nearly always none or one.
type Places = SmallVec<[Arc<Conn>; 1]>;

fn unreserve(map: &mut HashMap<Arc<str>, Places>, user: &str, sid: Sid) {
    if let Some(places) = map.get_mut(user) {
        places.retain(|c| c.sid != sid);
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

    /// Takes one of its user's `cap` places for `conn`, a socket whose
    /// connect is under way; false (and nothing taken) when the user's
    /// sockets here and the places held already make `cap`. A place not
    /// turned into a socket within [`STRAY_AFTER_MS`] of its
    /// authentication (a handshake that never completed) no longer counts.
    pub fn reserve(&self, conn: &Arc<Conn>, cap: usize, now: Millis) -> bool {
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let user = &conn.user_id;
        let here = inner.by_user.get(&**user).map_or(0, |s| s.len());
        let places = inner.reserved.entry(user.clone()).or_default();
        places.retain(|c| now - c.connected_at < STRAY_AFTER_MS);
        if here + places.len() >= cap {
            if places.is_empty() {
                inner.reserved.remove(&**user);
            }
            return false;
        }
        places.push(conn.clone());
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

    /// `user`'s sockets here, and those whose connect is under way
    /// (authenticated, not yet added), read together: a socket is in one
    /// list or the other, never in neither while it connects.
    pub fn of_user_and_attaching(&self, user_id: &str) -> (Vec<Handle>, Places) {
        let inner = self.inner.read();
        let here = inner
            .by_user
            .get(user_id)
            .map(|sids| {
                sids.iter()
                    .filter_map(|s| inner.by_sid.get(s).cloned())
                    .collect()
            })
            .unwrap_or_default();
        let attaching = inner.reserved.get(user_id).cloned().unwrap_or_default();
        (here, attaching)
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
        let (a, b, c) = (conn("u", 0), conn("u", 0), conn("u", 0));
        assert!(t.reserve(&a, 2, 0));
        assert!(t.reserve(&b, 2, 0));
        assert!(!t.reserve(&c, 2, 0), "the third place is refused");
        assert!(
            t.reserve(&conn("v", 0), 2, 0),
            "another user is not affected"
        );
        t.release("u", a.sid);
        t.release("u", a.sid);
        assert!(t.reserve(&c, 2, 0), "a released place is free again");
        assert!(!t.reserve(&conn("u", 0), 2, 0));
    }

    #[test]
    fn a_place_whose_connect_never_completes_lapses() {
        let t = Sockets::default();
        assert!(t.reserve(&conn("u", 1_000), 1, 1_000));
        let late = 1_000 + STRAY_AFTER_MS;
        assert!(!t.reserve(&conn("u", late - 1), 1, late - 1));
        assert!(t.reserve(&conn("u", late), 1, late));
    }

    #[test]
    fn a_connecting_socket_is_found_with_its_user_until_released() {
        let t = Sockets::default();
        let c = conn("u", 0);
        assert!(t.reserve(&c, 2, 0));
        let (here, attaching) = t.of_user_and_attaching("u");
        assert!(here.is_empty());
        assert_eq!(attaching.len(), 1);
        assert!(Arc::ptr_eq(&attaching[0], &c));
        assert!(t.of_user_and_attaching("v").1.is_empty());
        t.release("u", c.sid);
        assert!(t.of_user_and_attaching("u").1.is_empty());
    }

    /// A socket of `user` authenticated at `at`.
    fn conn(user: &str, at: Millis) -> Arc<Conn> {
        let identity = crate::auth::Identity {
            user_id: Arc::from(user),
            session_id: Arc::from("s"),
            role: Arc::from("r"),
            expires_at: at + 3_600_000,
            rooms: None,
        };
        Arc::new(Conn::new(Sid::new(), &identity, None, at, 10))
    }
}
