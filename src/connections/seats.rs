//! Study-room seats on this node: which rooms each socket here joined
//! (`join_room`), when, and each room's sockets here. The socket table
//! keeps it under its own lock, like the presence subscriptions, so a
//! seat can only be taken by a socket that is in the table.

use std::collections::HashMap;
use std::sync::Arc;

use smallvec::SmallVec;
use socketioxide::socket::Sid;

use crate::clock::Millis;

/// Most rooms one socket may sit in at once: a viewer with a few studies
/// and boards open, bounded so a client cannot grow the server's tables
/// without end.
pub const MAX_ROOMS_PER_SOCKET: usize = 64;

/// Why a seat was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatRefused {
    /// The socket is not (or no longer) connected here.
    Gone,
    /// The socket sits in [`MAX_ROOMS_PER_SOCKET`] rooms already.
    TooMany,
}

/// One socket's seat in a room.
#[derive(Debug, Clone)]
pub struct RoomSeat {
    pub sid: Sid,
    pub user_id: Arc<str>,
    pub since: Millis,
}

#[derive(Debug, Default)]
pub struct Seats {
    /// The rooms of each socket (keys shared with `by_room`).
    by_socket: HashMap<Sid, SmallVec<[Arc<str>; 1]>>,
    by_room: HashMap<Arc<str>, Vec<RoomSeat>>,
}

impl Seats {
    /// Seats socket `sid` of `user` in `room` at `now`; true when it was
    /// not there before (a second join keeps the first time).
    pub fn sit(
        &mut self,
        sid: Sid,
        user: &Arc<str>,
        room: &str,
        now: Millis,
    ) -> Result<bool, SeatRefused> {
        let rooms = self.by_socket.entry(sid).or_default();
        if rooms.iter().any(|r| &**r == room) {
            return Ok(false);
        }
        if rooms.len() >= MAX_ROOMS_PER_SOCKET {
            return Err(SeatRefused::TooMany);
        }
        let key = match self.by_room.get_key_value(room) {
            Some((k, _)) => k.clone(),
            None => Arc::from(room),
        };
        rooms.push(key.clone());
        self.by_room.entry(key).or_default().push(RoomSeat {
            sid,
            user_id: user.clone(),
            since: now,
        });
        Ok(true)
    }

    /// Takes socket `sid` out of `room`; true when it was there.
    pub fn stand(&mut self, sid: Sid, room: &str) -> bool {
        let Some(rooms) = self.by_socket.get_mut(&sid) else {
            return false;
        };
        let before = rooms.len();
        rooms.retain(|r| &**r != room);
        let was = rooms.len() != before;
        if rooms.is_empty() {
            self.by_socket.remove(&sid);
        }
        if was {
            self.unseat(sid, room);
        }
        was
    }

    /// Takes socket `sid` out of every room: each room it was in, with
    /// its user.
    pub fn forget(&mut self, sid: Sid) -> Vec<(Arc<str>, Arc<str>)> {
        let rooms = self.by_socket.remove(&sid).unwrap_or_default();
        rooms
            .into_iter()
            .filter_map(|room| Some((room.clone(), self.unseat(sid, &room)?)))
            .collect()
    }

    /// Takes socket `sid`'s seat out of `room`: its user, if it sat there.
    fn unseat(&mut self, sid: Sid, room: &str) -> Option<Arc<str>> {
        let seats = self.by_room.get_mut(room)?;
        let at = seats.iter().position(|s| s.sid == sid)?;
        let seat = seats.swap_remove(at);
        if seats.is_empty() {
            self.by_room.remove(room);
        }
        Some(seat.user_id)
    }

    /// Whether socket `sid` sits in `room`.
    pub fn sits(&self, sid: Sid, room: &str) -> bool {
        self.by_socket
            .get(&sid)
            .is_some_and(|rooms| rooms.iter().any(|r| &**r == room))
    }

    /// The rooms socket `sid` sits in, each with when it joined.
    pub fn of_socket(&self, sid: Sid) -> Vec<(Arc<str>, Millis)> {
        let Some(rooms) = self.by_socket.get(&sid) else {
            return Vec::new();
        };
        rooms
            .iter()
            .filter_map(|room| {
                let seat = self.of_room(room).iter().find(|s| s.sid == sid)?;
                Some((room.clone(), seat.since))
            })
            .collect()
    }

    /// The seats of `room` here.
    pub fn of_room(&self, room: &str) -> &[RoomSeat] {
        self.by_room.get(room).map_or(&[], Vec::as_slice)
    }

    /// The sockets of `user` in `room` here.
    pub fn user_in_room(&self, room: &str, user: &str) -> usize {
        self.of_room(room)
            .iter()
            .filter(|s| &*s.user_id == user)
            .count()
    }

    /// Rooms with a socket here.
    pub fn rooms(&self) -> usize {
        self.by_room.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_follow_joins_leaves_and_the_socket() {
        let mut s = Seats::default();
        let (a, b) = (Sid::new(), Sid::new());
        let u: Arc<str> = Arc::from("u1");
        assert_eq!(s.sit(a, &u, "study:1", 10), Ok(true));
        assert_eq!(s.sit(a, &u, "study:1", 20), Ok(false), "joined already");
        assert_eq!(s.sit(b, &u, "study:1", 30), Ok(true));
        assert_eq!(s.sit(a, &u, "board:1", 40), Ok(true));
        assert_eq!(s.of_room("study:1").len(), 2);
        assert_eq!(s.of_room("study:1")[0].since, 10);
        assert_eq!(s.user_in_room("study:1", "u1"), 2);
        assert!(s.sits(a, "board:1"));
        let of_a: Vec<(String, Millis)> = s
            .of_socket(a)
            .into_iter()
            .map(|(r, t)| (r.to_string(), t))
            .collect();
        assert_eq!(of_a, [("study:1".into(), 10), ("board:1".into(), 40)]);
        assert!(s.of_socket(Sid::new()).is_empty());
        assert!(s.stand(a, "study:1"));
        assert!(!s.stand(a, "study:1"));
        assert_eq!(s.user_in_room("study:1", "u1"), 1);
        assert_eq!(s.forget(a), [(Arc::from("board:1"), u.clone())]);
        assert_eq!(s.rooms(), 1);
        s.forget(b);
        assert!(s.by_room.is_empty() && s.by_socket.is_empty());
    }

    #[test]
    fn a_socket_sits_in_a_bounded_number_of_rooms() {
        let mut s = Seats::default();
        let a = Sid::new();
        let u: Arc<str> = Arc::from("u1");
        for i in 0..MAX_ROOMS_PER_SOCKET {
            s.sit(a, &u, &format!("r{i}"), 0).unwrap();
        }
        assert_eq!(s.sit(a, &u, "one-more", 0), Err(SeatRefused::TooMany));
        assert_eq!(s.of_room("one-more").len(), 0);
    }
}
