//! The calls this node's sockets are in, and how far each socket is in
//! each: invited (ringing) or joined (the inviter, and whoever accepted).
//! Only joined sockets exchange signals. A node holds its own sockets'
//! part of a call only: the other nodes hold theirs, and the call's news
//! reaches them through the broker.

use std::collections::HashMap;
use std::sync::Arc;

use super::news::Peer;

/// How many calls one socket may be in, invited or joined: a bound on
/// what a flood of invitations can make a node hold.
pub const MAX_CALLS_PER_SOCKET: usize = 8;

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

#[derive(Debug, Default)]
struct Call {
    /// This node's sockets in the call: socket id to user and part.
    sockets: HashMap<Arc<str>, (Arc<str>, Part)>,
}

#[derive(Debug, Default)]
pub struct CallBook {
    calls: HashMap<String, Call>,
    /// The calls each socket here is in.
    by_socket: HashMap<Arc<str>, Vec<String>>,
}

impl CallBook {
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
            if call.sockets.is_empty() {
                self.calls.remove(call_id);
            }
        }
    }

    /// The inviter's socket places a new call: it is joined from the start.
    pub fn open(&mut self, call_id: &str, inviter: &Peer) -> Result<(), Refused> {
        self.add(call_id, inviter, Part::Joined)
    }

    /// A socket here is rung; false when it cannot take another call (or
    /// is in this one already).
    pub fn invite(&mut self, call_id: &str, socket: &Peer) -> bool {
        self.add(call_id, socket, Part::Invited).is_ok()
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
            if call.sockets.is_empty() {
                self.calls.remove(&call_id);
            }
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

    fn peer(user: &str, socket: &str) -> Peer {
        Peer {
            user_id: user.into(),
            socket_id: socket.into(),
        }
    }

    #[test]
    fn an_invitee_who_accepts_is_joined_and_may_signal() {
        let mut b = CallBook::default();
        b.open("c1", &peer("ana", "s1")).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2")));
        assert!(!b.joined("c1", "s2"));
        assert_eq!(b.answer("c1", "s2", true), Ok(()));
        assert!(b.joined("c1", "s2"));
        assert_eq!(b.answer("c1", "s2", true), Err(Refused::Answered));
        assert_eq!(b.joined_here("c1", "s2"), vec![Arc::<str>::from("s1")]);
    }

    #[test]
    fn a_decline_takes_the_socket_out_and_strangers_are_not_in() {
        let mut b = CallBook::default();
        b.open("c1", &peer("ana", "s1")).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2")));
        assert_eq!(b.answer("c1", "s2", false), Ok(()));
        assert_eq!(b.part("c1", "s2"), None);
        assert_eq!(b.answer("c1", "s3", true), Err(Refused::NoCall));
        assert_eq!(b.answer("nope", "s1", true), Err(Refused::NoCall));
        assert!(!b.joined("c1", "s3"));
    }

    #[test]
    fn a_joined_socket_leaving_ends_its_calls_a_ringing_one_ends_none() {
        let mut b = CallBook::default();
        b.open("c1", &peer("ana", "s1")).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2")));
        assert!(b.leave("s2").is_empty());
        assert_eq!(
            b.leave("s1"),
            vec![("c1".to_string(), Arc::<str>::from("ana"))]
        );
        assert!(b.is_empty());
    }

    #[test]
    fn ending_returns_every_socket_here_and_forgets_them() {
        let mut b = CallBook::default();
        b.open("c1", &peer("ana", "s1")).unwrap();
        assert!(b.invite("c1", &peer("ben", "s2")));
        let mut ended = b.end("c1");
        ended.sort();
        assert_eq!(ended, vec![Arc::<str>::from("s1"), Arc::<str>::from("s2")]);
        assert!(b.end("c1").is_empty());
        assert!(b.leave("s1").is_empty());
        assert!(b.by_socket.is_empty());
    }

    #[test]
    fn a_socket_holds_a_bounded_number_of_calls() {
        let mut b = CallBook::default();
        for i in 0..MAX_CALLS_PER_SOCKET {
            assert!(b.invite(&format!("c{i}"), &peer("ben", "s2")));
        }
        assert!(!b.invite("one-more", &peer("ben", "s2")));
        assert_eq!(b.open("mine", &peer("ben", "s2")), Err(Refused::Full));
        assert_eq!(b.len(), MAX_CALLS_PER_SOCKET);
    }
}
