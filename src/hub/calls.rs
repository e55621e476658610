//! Calls (contract section 14): invitations to a user or a study room,
//! answers, WebRTC signals relayed only between a call's joined sockets,
//! and the end of a call by a participant, by a participant's disconnect,
//! or by its ring timeout when nobody accepted. Each node holds its own sockets' part of each call (the
//! Hub's [`CallBook`]); a call's steps reach the other nodes' parts as
//! [`CallNews`] through the broker. Herald never carries media.

use std::sync::Arc;

use serde_json::{json, Value};
use socketioxide::socket::Sid;

use super::{Hub, HubError};
use crate::broker::{Message, Target};
use crate::calls::{self, CallNews, Peer, Refused, RungOut, MAX_CALLS_PER_SOCKET};
use crate::clock::Millis;
use crate::connections::connection::Handle;
use crate::observe::prometheus;
use crate::protocol;

/// Who a call is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callee {
    /// Every socket of one other user.
    User(String),
    /// Every socket in a study room the caller sits in, but the caller's.
    Room(String),
}

/// Why a call ended, as `call_ended` names it.
pub const ENDED_BY_HANGUP: &str = "ended";
pub const ENDED_BY_DISCONNECT: &str = "disconnected";
/// `webrtc.ring_timeout` passed and nobody invited had accepted.
pub const ENDED_BY_TIMEOUT: &str = "timeout";

fn peer(h: &Handle) -> Peer {
    Peer {
        user_id: Arc::from(&*h.conn.user_id),
        socket_id: Arc::from(h.conn.sid.to_string()),
    }
}

/// One event to one socket here; true when it took it.
fn tell(h: &Handle, name: &'static str, data: Value) -> bool {
    let sent = h.socket.emit(name, &(data,)).is_ok();
    if sent {
        prometheus::server_event(name, 1);
    }
    sent
}

impl Hub {
    /// `call_invite`: a new call from socket `h` to `to`, ringing every
    /// socket of the callee on every node. The call's id and this user's
    /// ICE servers; `not_found` when nobody was there to ring.
    pub async fn call_invite(
        &self,
        h: &Handle,
        to: &Callee,
        media: Vec<String>,
    ) -> Result<(String, Value), HubError> {
        let target = match to {
            Callee::User(user) if **user == *h.conn.user_id => {
                return Err(HubError::BadRequest("a call is to another user".into()))
            }
            Callee::User(user) => Target::user(user),
            Callee::Room(room) => {
                if !crate::rooms::valid_room(room) || !self.sockets.sits(h.conn.sid, room) {
                    return Err(HubError::Forbidden(
                        "this socket is not in this room; join it first".into(),
                    ));
                }
                Target::Room {
                    room: room.clone(),
                    except_user: Some(h.conn.user_id.to_string()),
                }
            }
        };
        let call_id = uuid::Uuid::new_v4().to_string();
        let from = peer(h);
        self.calls
            .lock()
            .open(&call_id, &from, self.now())
            .map_err(|_| too_many())?;
        self.wake_for_rings();
        let news = CallNews::Invite {
            call_id: call_id.clone(),
            from,
            media,
        };
        let reach = self.broker.deliver(&target, &Message::Call(news)).await;
        if reach.total() == 0 {
            self.calls.lock().end(&call_id);
            return Err(HubError::NotFound(
                "nobody to call is connected (or they are in too many calls)".into(),
            ));
        }
        Ok((call_id, self.ice_servers(&h.conn.user_id)))
    }

    /// `call_answer`: socket `h`, rung by the call, accepts (and may then
    /// exchange signals) or declines; the call's joined sockets hear it.
    pub async fn call_answer(
        &self,
        h: &Handle,
        call_id: &str,
        accept: bool,
    ) -> Result<(), HubError> {
        let me = peer(h);
        self.calls
            .lock()
            .answer(call_id, &me.socket_id, accept)
            .map_err(|e| match e {
                Refused::Answered => HubError::BadRequest("this socket already answered".into()),
                Refused::NoCall | Refused::Full => {
                    HubError::NotFound("no such call rings this socket".into())
                }
            })?;
        let news = CallNews::Answer {
            call_id: call_id.to_string(),
            from: me,
            accept,
        };
        self.broker
            .deliver(&Target::Call(call_id.to_string()), &Message::Call(news))
            .await;
        Ok(())
    }

    /// `webrtc_signal`: from a joined socket to another joined socket of
    /// the same call, wherever it is; `forbidden` otherwise.
    pub async fn webrtc_signal(
        &self,
        h: &Handle,
        call_id: &str,
        to: &str,
        signal: &str,
        payload: Value,
    ) -> Result<(), HubError> {
        let me = peer(h);
        if !self.calls.lock().joined(call_id, &me.socket_id) {
            return Err(HubError::Forbidden(
                "this socket is not a participant of this call".into(),
            ));
        }
        if *me.socket_id == *to {
            return Err(HubError::BadRequest(
                "a signal is for another socket".into(),
            ));
        }
        let news = CallNews::Signal {
            call_id: call_id.to_string(),
            from: me,
            signal: signal.to_string(),
            payload,
        };
        let reach = self
            .broker
            .deliver(&Target::Socket(to.to_string()), &Message::Call(news))
            .await;
        if reach.total() == 0 {
            return Err(HubError::Forbidden(
                "to is not a connected participant of this call".into(),
            ));
        }
        Ok(())
    }

    /// `call_end`: a joined socket ends the call for every socket in it.
    pub async fn call_end(&self, h: &Handle, call_id: &str) -> Result<(), HubError> {
        let sid = h.conn.sid.to_string();
        if !self.calls.lock().joined(call_id, &sid) {
            return Err(HubError::NotFound(
                "this socket is not a participant of such a call".into(),
            ));
        }
        self.end_call(call_id, &h.conn.user_id, ENDED_BY_HANGUP)
            .await;
        Ok(())
    }

    async fn end_call(&self, call_id: &str, by: &str, reason: &str) {
        let news = CallNews::End {
            call_id: call_id.to_string(),
            by: by.to_string(),
            reason: reason.to_string(),
        };
        self.broker
            .deliver(&Target::Call(call_id.to_string()), &Message::Call(news))
            .await;
    }

    /// Ends the calls here that rang out by `now`: for everyone when placed
    /// here, this node's ringing part when placed on a node that never
    /// ended them. When the next one rings out.
    pub(super) async fn ring_out_calls(&self, now: Millis) -> Option<Millis> {
        let rung_out = self.calls.lock().rung_out(now);
        for out in rung_out {
            match out {
                RungOut::Everywhere { call_id, by } => {
                    self.end_call(&call_id, &by, ENDED_BY_TIMEOUT).await;
                }
                RungOut::Here {
                    call_id,
                    by,
                    sockets,
                } => {
                    let data = json!({ "callId": call_id, "by": &*by, "reason": ENDED_BY_TIMEOUT });
                    self.tell_sockets(&sockets, protocol::CALL_ENDED, &data);
                }
            }
        }
        self.calls.lock().next_ring_out()
    }

    /// The scheduler must be awake when the next call rings out.
    fn wake_for_rings(&self) {
        let next = self.calls.lock().next_ring_out();
        if let Some(next) = next {
            self.wake_for(next);
        }
    }

    /// A socket here left: the calls it had joined end for everyone.
    pub(super) async fn leave_calls(&self, sid: Sid) {
        let ended = self.calls.lock().leave(&sid.to_string());
        for (call_id, user) in ended {
            self.end_call(&call_id, &user, ENDED_BY_DISCONNECT).await;
        }
    }

    /// `iceServers` for `user` now (TURN credentials expire from now).
    fn ice_servers(&self, user: &str) -> Value {
        calls::ice_servers(&self.config.webrtc, user, self.now())
    }

    /// A call's news heard on this node, from this node or another, with
    /// this node's sockets of its target: the sockets told.
    pub(super) fn hear_call(&self, news: &CallNews, here: &[Handle]) -> usize {
        match news {
            CallNews::Invite {
                call_id,
                from,
                media,
            } => {
                let now = self.now();
                let rung = here
                    .iter()
                    .filter(|h| h.conn.sid.to_string() != *from.socket_id)
                    .filter(|h| self.calls.lock().invite(call_id, &peer(h), from, now))
                    .filter(|h| {
                        tell(
                            h,
                            protocol::CALL_INCOMING,
                            json!({
                                "callId": call_id,
                                "from": from.view(),
                                "media": media,
                                "iceServers": self.ice_servers(&h.conn.user_id),
                            }),
                        )
                    })
                    .count();
                self.wake_for_rings();
                rung
            }
            CallNews::Answer {
                call_id,
                from,
                accept,
            } => {
                if *accept {
                    self.calls.lock().accepted(call_id);
                }
                let joined = self.calls.lock().joined_here(call_id, &from.socket_id);
                let data = json!({ "callId": call_id, "from": from.view(), "accept": accept });
                self.tell_sockets(&joined, protocol::CALL_ANSWER, &data)
            }
            CallNews::Signal {
                call_id,
                from,
                signal,
                payload,
            } => here
                .iter()
                .filter(|h| self.calls.lock().joined(call_id, &h.conn.sid.to_string()))
                .filter(|h| {
                    tell(
                        h,
                        protocol::WEBRTC_SIGNAL,
                        json!({
                            "callId": call_id,
                            "from": from.view(),
                            "type": signal,
                            "payload": payload,
                        }),
                    )
                })
                .count(),
            CallNews::End {
                call_id,
                by,
                reason,
            } => {
                let sockets = self.calls.lock().end(call_id);
                let data = json!({ "callId": call_id, "by": by, "reason": reason });
                self.tell_sockets(&sockets, protocol::CALL_ENDED, &data)
            }
        }
    }

    fn tell_sockets(&self, sockets: &[Arc<str>], name: &'static str, data: &Value) -> usize {
        sockets
            .iter()
            .filter_map(|s| s.parse::<Sid>().ok())
            .filter_map(|sid| self.sockets.get(sid))
            .filter(|h| tell(h, name, data.clone()))
            .count()
    }
}

fn too_many() -> HubError {
    HubError::BadRequest(format!(
        "a socket may be in at most {MAX_CALLS_PER_SOCKET} calls"
    ))
}
