//! The calls this node's sockets are in, and how far each socket is in
//! each: invited (ringing) or joined (the inviter, and whoever accepted).
//! Only joined sockets exchange signals. A node holds its own sockets'
//! part of a call only: the other nodes hold theirs, and the call's news
//! reaches them through the broker.
//!
//! A call nobody accepts does not ring forever. The inviter's node ends
//! it for everyone once `webrtc.ring_timeout` passes without an accept
//! (any invitee's, heard as the call's news on every node). A node that
//! holds only ringing sockets of a call placed elsewhere keeps a later
//! deadline of its own, [`RING_GRACE_MS`] after that: if the inviter's
//! node died and sent nothing, it ends its own part. Pure state on the
//! injectable clock: the Hub feeds it times and acts on what it returns.

use std::collections::HashMap;
use std::sync::Arc;

use super::news::Peer;
use crate::clock::Millis;
use crate::deadlines::Deadlines;

/// How many calls one socket may be in, invited or joined: a bound on
/// what a flood of invitations can make a node hold.
pub const MAX_CALLS_PER_SOCKET: usize = 8;

/// How long after the ring timeout a node with only ringing sockets of a
/// call waits for the inviter's node to end it, before it ends its own
/// part: far longer than the news takes between live nodes.
pub const RING_GRACE_MS: Millis = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Invited,
    Joined,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such call here, or this socket is not in it.
    NoCall,
    /// The socket is in as many calls as it may be.
    Full,
    /// The socket already answered (or placed) this call.
    Answered,
}

/// A call nobody invited has accepted yet.
#[derive(Debug)]
struct Ringing {
    /// The inviter's user: the `by` of the `call_ended` when it rings out.
    by: Arc<str>,
    /// Whether the inviter's socket is here: then this node ends the call
    /// for everyone; otherwise only its own part, and later.
    placed_here: bool,
}

#[derive(Debug, Default)]
struct Call {
    /// This node's sockets in the call: socket id to user and part.
    sockets: HashMap<Arc<str>, (Arc<str>, Part)>,
    /// Set until an invitee accepts.
    ringing: Option<Ringing>,
}

/// A call that rang out: what the Hub does about it.
#[derive(Debug, PartialEq, Eq)]
pub enum RungOut {
    /// Placed here: end it for everyone (`call_ended`, reason `timeout`,
    /// `by` the inviter), through the broker.
    Everywhere { call_id: String, by: Arc<str> },
    /// Placed on a node that never ended it: this node's ringing sockets
    /// of it, already out of the book, are told it ended.
    Here {
        call_id: String,
        by: Arc<str>,
        sockets: Vec<Arc<str>>,
    },
}

#[derive(Debug)]
pub struct CallBook {
    calls: HashMap<String, Call>,
    /// The calls each socket here is in.
    by_socket: HashMap<Arc<str>, Vec<String>>,
    /// When each ringing call here rings out.
    rings: Deadlines<String>,
    /// `webrtc.ring_timeout`, in ms.
    ring_timeout: Millis,
}

impl CallBook {
    /// An empty book whose calls ring for `ring_timeout` ms.
    pub fn new(ring_timeout: Millis) -> Self {
        Self {
            calls: HashMap::new(),
            by_socket: HashMap::new(),
            rings: Deadlines::default(),
            ring_timeout,
        }
    }

    /// A call with no socket here left is forgotten, its deadline too.
    fn drop_if_empty(&mut self, call_id: &str) {
        if self
            .calls
            .get(call_id)
            .is_some_and(|c| c.sockets.is_empty())
        {
            self.calls.remove(call_id);
            self.rings.cancel(call_id);
        }
    }

    fn add(&mut self, call_id: &str, peer: &Peer, part: Part) -> Result<(), Refused> {
        let calls = self.by_socket.entry(peer.socket_id.clone()).or_default();
        if calls.iter().any(|c| c == call_id) {
            return Err(Refused::Answered);
        }
        if calls.len() >= MAX_CALLS_PER_SOCKET {
            if calls.is_empty() {
                self.by_socket.remove(&peer.socket_id);
            }
            return Err(Refused::Full);
        }
        calls.push(call_id.to_string());
        self.calls
            .entry(call_id.to_string())
            .or_default()
            .sockets
            .insert(peer.socket_id.clone(), (peer.user_id.clone(), part));
        Ok(())
    }

    fn forget(&mut self, call_id: &str, socket: &str) {
        if let Some(calls) = self.by_socket.get_mut(socket) {
            calls.retain(|c| c != call_id);
            if calls.is_empty() {
                self.by_socket.remove(socket);
            }
        }
        if let Some(call) = self.calls.get_mut(call_id) {
            call.sockets.remove(socket);
        }
        self.drop_if_empty(call_id);
    }

    /// The inviter's socket places a new call at `now`: it is joined from
    /// the start, and the call rings until an invitee accepts or the ring
    /// timeout passes.
    pub fn open(&mut self, call_id: &str, inviter: &Peer, now: Millis) -> Result<(), Refused> {
        self.add(call_id, inviter, Part::Joined)?;
        if let Some(call) = self.calls.get_mut(call_id) {
            call.ringing = Some(Ringing {
                by: inviter.user_id.clone(),
                placed_here: true,
            });
            self.rings
                .schedule(call_id.to_string(), now.saturating_add(self.ring_timeout));
        }
        Ok(())
    }

    /// A socket here is rung at `now` by `inviter`; false when it cannot
    /// take another call (or is in this one already). The first socket
    /// rung here of a call placed elsewhere starts this node's own, later
    /// deadline.
    pub fn invite(&mut self, call_id: &str, socket: &Peer, inviter: &Peer, now: Millis) -> bool {
        let new_here = !self.calls.contains_key(call_id);
        if self.add(call_id, socket, Part::Invited).is_err() {
            return false;
        }
        if new_here {
            if let Some(call) = self.calls.get_mut(call_id) {
                call.ringing = Some(Ringing {
                    by: inviter.user_id.clone(),
                    placed_here: false,
                });
                let at = now
                    .saturating_add(self.ring_timeout)
                    .saturating_add(RING_GRACE_MS);
                self.rings.schedule(call_id.to_string(), at);
            }
        }
        true
    }

    /// An invitee accepted (here or on another node): the call rings no
    /// more, and no timeout ends it.
    pub fn accepted(&mut self, call_id: &str) {
        if let Some(call) = self.calls.get_mut(call_id) {
            call.ringing = None;
        }
        self.rings.cancel(call_id);
    }

    /// The calls that rang out by `now`, each still ringing: placed here,
    /// to be ended everywhere; placed elsewhere, ended here now.
    pub fn rung_out(&mut self, now: Millis) -> Vec<RungOut> {
        let mut out = Vec::new();
        for call_id in self.rings.pop_due(now) {
            let Some(ringing) = self.calls.get(&call_id).and_then(|c| c.ringing.as_ref()) else {
                continue;
            };
            let (by, placed_here) = (ringing.by.clone(), ringing.placed_here);
            if placed_here {
                out.push(RungOut::Everywhere { call_id, by });
            } else {
                let sockets = self.end(&call_id);
                out.push(RungOut::Here {
                    call_id,
                    by,
                    sockets,
                });
            }
        }
        out
    }

    /// When the next call here rings out.
    pub fn next_ring_out(&self) -> Option<Millis> {
        self.rings.next()
    }

    /// An invited socket answers: joined if it accepts, out of the call if
    /// it declines.
    pub fn answer(&mut self, call_id: &str, socket: &str, accept: bool) -> Result<(), Refused> {
        match self.part(call_id, socket) {
            None => Err(Refused::NoCall),
            Some(Part::Joined) => Err(Refused::Answered),
            Some(Part::Invited) if accept => {
                if let Some(entry) = self
                    .calls
                    .get_mut(call_id)
                    .and_then(|c| c.sockets.get_mut(socket))
                {
                    entry.1 = Part::Joined;
                }
                self.accepted(call_id);
                Ok(())
            }
            Some(Part::Invited) => {
                self.forget(call_id, socket);
                Ok(())
            }
        }
    }

    pub fn part(&self, call_id: &str, socket: &str) -> Option<Part> {
        Some(self.calls.get(call_id)?.sockets.get(socket)?.1)
    }

    pub fn joined(&self, call_id: &str, socket: &str) -> bool {
        self.part(call_id, socket) == Some(Part::Joined)
    }

    /// The joined sockets here, but `except`.
    pub fn joined_here(&self, call_id: &str, except: &str) -> Vec<Arc<str>> {
        self.calls
            .get(call_id)
            .map(|c| {
                c.sockets
                    .iter()
                    .filter(|(s, (_, part))| *part == Part::Joined && &***s != except)
                    .map(|(s, _)| s.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The call ends: every socket here that was in it, invited or joined.
    pub fn end(&mut self, call_id: &str) -> Vec<Arc<str>> {
        self.rings.cancel(call_id);
        let Some(call) = self.calls.remove(call_id) else {
            return Vec::new();
        };
        let sockets: Vec<Arc<str>> = call.sockets.into_keys().collect();
        for s in &sockets {
            if let Some(calls) = self.by_socket.get_mut(s) {
                calls.retain(|c| c != call_id);
                if calls.is_empty() {
                    self.by_socket.remove(s);
                }
            }
        }
        sockets
    }

    /// A socket left (disconnected): out of every call; the calls it had
    /// joined, each with its user, end for everyone (a ringing socket that
    /// goes away ends nothing).
    pub fn leave(&mut self, socket: &str) -> Vec<(String, Arc<str>)> {
        let calls = self.by_socket.remove(socket).unwrap_or_default();
        let mut ended = Vec::new();
        for call_id in calls {
            let Some(call) = self.calls.get_mut(&call_id) else {
                continue;
            };
            if let Some((user, part)) = call.sockets.remove(socket) {
                if part == Part::Joined {
                    ended.push((call_id.clone(), user));
                }
            }
            self.drop_if_empty(&call_id);
        }
        ended
    }

    /// Calls held here (for tests and metrics).
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RING: Millis = 30_000;

    fn peer(user: &str, socket: &str) -> Peer {
        Peer {
            user_id: user.into(),
            socket_id: socket.into(),
        }
    }

    /// The inviter of every call here.
    fn ana() -> Peer {
        peer("ana", "s1")
    }

    #[test]
    fn an_invitee_who_accepts_is_joined_and_may_signal() {
        let mut b = CallBook::new(RING);
        b.open("c1", &ana(), 0).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2"), &ana(), 0));
        assert!(!b.joined("c1", "s2"));
        assert_eq!(b.answer("c1", "s2", true), Ok(()));
        assert!(b.joined("c1", "s2"));
        assert_eq!(b.answer("c1", "s2", true), Err(Refused::Answered));
        assert_eq!(b.joined_here("c1", "s2"), vec![Arc::<str>::from("s1")]);
    }

    #[test]
    fn a_decline_takes_the_socket_out_and_strangers_are_not_in() {
        let mut b = CallBook::new(RING);
        b.open("c1", &ana(), 0).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2"), &ana(), 0));
        assert_eq!(b.answer("c1", "s2", false), Ok(()));
        assert_eq!(b.part("c1", "s2"), None);
        assert_eq!(b.answer("c1", "s3", true), Err(Refused::NoCall));
        assert_eq!(b.answer("nope", "s1", true), Err(Refused::NoCall));
        assert!(!b.joined("c1", "s3"));
    }

    #[test]
    fn a_joined_socket_leaving_ends_its_calls_a_ringing_one_ends_none() {
        let mut b = CallBook::new(RING);
        b.open("c1", &ana(), 0).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2"), &ana(), 0));
        assert!(b.leave("s2").is_empty());
        assert_eq!(
            b.leave("s1"),
            vec![("c1".to_string(), Arc::<str>::from("ana"))]
        );
        assert!(b.is_empty());
    }

    #[test]
    fn ending_returns_every_socket_here_and_forgets_them() {
        let mut b = CallBook::new(RING);
        b.open("c1", &ana(), 0).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2"), &ana(), 0));
        let mut ended = b.end("c1");
        ended.sort();
        assert_eq!(ended, vec![Arc::<str>::from("s1"), Arc::<str>::from("s2")]);
        assert!(b.end("c1").is_empty());
        assert!(b.leave("s1").is_empty());
        assert!(b.by_socket.is_empty());
    }

    #[test]
    fn a_socket_holds_a_bounded_number_of_calls() {
        let mut b = CallBook::new(RING);
        for i in 0..MAX_CALLS_PER_SOCKET {
            assert!(b.invite(&format!("c{i}"), &peer("ben", "s2"), &ana(), 0));
        }
        assert!(!b.invite("one-more", &peer("ben", "s2"), &ana(), 0));
        assert_eq!(b.open("mine", &peer("ben", "s2"), 0), Err(Refused::Full));
        assert_eq!(b.len(), MAX_CALLS_PER_SOCKET);
    }

    #[test]
    fn an_unanswered_call_placed_here_rings_out_everywhere_at_the_timeout() {
        let mut b = CallBook::new(RING);
        b.open("c1", &ana(), 1_000).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2"), &ana(), 1_000));
        // A decline is no accept: the call still rings.
        assert!(b.invite("c1", &peer("cat", "s3"), &ana(), 1_000));
        assert_eq!(b.answer("c1", "s3", false), Ok(()));
        assert_eq!(b.next_ring_out(), Some(1_000 + RING));
        assert!(b.rung_out(1_000 + RING - 1).is_empty());
        assert_eq!(
            b.rung_out(1_000 + RING),
            vec![RungOut::Everywhere {
                call_id: "c1".into(),
                by: "ana".into()
            }]
        );
        // Ending it is the broker's news, heard like any end.
        assert!(b.rung_out(1_000 + 10 * RING).is_empty());
        assert_eq!(b.end("c1").len(), 2);
        assert_eq!(b.next_ring_out(), None);
    }

    #[test]
    fn an_accept_here_or_heard_from_another_node_stops_the_ringing() {
        let mut b = CallBook::new(RING);
        b.open("c1", &ana(), 0).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2"), &ana(), 0));
        assert_eq!(b.answer("c1", "s2", true), Ok(()));
        assert_eq!(b.next_ring_out(), None);
        assert!(b.rung_out(10 * RING).is_empty());
        assert!(b.joined("c1", "s2"));

        b.open("c2", &ana(), 0).unwrap();
        b.accepted("c2");
        assert!(b.rung_out(10 * RING).is_empty());
        assert!(b.joined("c2", "s1"));
    }

    #[test]
    fn ringing_sockets_of_a_call_placed_elsewhere_end_here_after_a_grace() {
        let mut b = CallBook::new(RING);
        assert!(b.invite("c1", &peer("ben", "s2"), &ana(), 0));
        assert!(b.invite("c1", &peer("ben", "s3"), &ana(), 700));
        // The inviter's node ends it at RING; this node waits longer.
        assert!(b.rung_out(RING).is_empty());
        let out = b.rung_out(RING + RING_GRACE_MS);
        let [RungOut::Here {
            call_id,
            by,
            sockets,
        }] = &out[..]
        else {
            panic!("{out:?}");
        };
        assert_eq!((call_id.as_str(), &**by), ("c1", "ana"));
        let mut sockets = sockets.clone();
        sockets.sort();
        assert_eq!(sockets, vec![Arc::<str>::from("s2"), Arc::from("s3")]);
        assert!(b.is_empty() && b.by_socket.is_empty());

        // The inviter's node's end came first: nothing is left to ring out.
        assert!(b.invite("c2", &peer("ben", "s2"), &ana(), 0));
        assert_eq!(b.end("c2").len(), 1);
        assert_eq!(b.next_ring_out(), None);
        // Every ringing socket here declined: the call is forgotten here.
        assert!(b.invite("c3", &peer("ben", "s2"), &ana(), 0));
        assert_eq!(b.answer("c3", "s2", false), Ok(()));
        assert_eq!(b.next_ring_out(), None);
        assert!(b.rung_out(10 * RING).is_empty());
    }

    #[test]
    fn an_inviter_who_leaves_while_ringing_ends_the_call_not_a_timeout() {
        let mut b = CallBook::new(RING);
        b.open("c1", &ana(), 0).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2"), &ana(), 0));
        assert_eq!(
            b.leave("s1"),
            vec![("c1".to_string(), Arc::<str>::from("ana"))]
        );
        assert_eq!(b.end("c1"), vec![Arc::<str>::from("s2")]);
        assert!(b.rung_out(10 * RING).is_empty());
    }
}
