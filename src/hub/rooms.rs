//! Study rooms (contract section 14): joining by the token's patterns or a
//! backend grant, leaving, revocation on every node, who is in a room
//! (`room_presence` once per window, the join answer, the API), typing
//! indicators, and events from the backend to a room.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{Hub, HubError};
use crate::broker::{study_room, Message, Reach, Target};
use crate::clock::{rfc3339, Millis};
use crate::cluster::Answer;
use crate::connections::connection::Handle;
use crate::connections::seats::SeatRefused;
use crate::protocol::{self, check_event_name};
use crate::rooms::{self, Member, Seat, Told};

/// Who is in a room, as the answers show it (`partial` when a node did
/// not answer).
pub type RoomView = Answer<Vec<Member>>;

fn check_room(room: &str) -> Result<(), HubError> {
    if rooms::valid_room(room) {
        Ok(())
    } else {
        Err(HubError::BadRequest(format!(
            "room must be 1 to {} characters of A-Z a-z 0-9 . _ : -",
            rooms::MAX_ROOM_LEN
        )))
    }
}

impl Hub {
    /// `join_room`: socket `h` enters `room` when its token's `rooms`
    /// patterns open it or the backend granted it to the user; the
    /// members, this socket among them. Joining again changes nothing.
    pub async fn join_room(&self, h: &Handle, room: &str) -> Result<RoomView, HubError> {
        check_room(room)?;
        let by_token = h
            .conn
            .rooms
            .as_deref()
            .is_some_and(|p| rooms::token_opens(p, room));
        if !by_token && !self.store.room_granted(room, &h.conn.user_id).await? {
            return Err(HubError::Forbidden(
                "this user may not join this room".into(),
            ));
        }
        let new = self
            .sockets
            .sit(h.conn.sid, room, self.now())
            .map_err(|e| match e {
                SeatRefused::Gone => HubError::BadRequest("the socket is disconnecting".into()),
                SeatRefused::TooMany => HubError::BadRequest(format!(
                    "a socket may be in at most {} rooms",
                    crate::connections::seats::MAX_ROOMS_PER_SOCKET
                )),
            })?;
        if new {
            h.socket.join(study_room(room));
            // A disconnect that raced the join cleared the socket's rooms
            // before this one was joined: leave it again.
            if !h.socket.connected() {
                h.socket.leave(study_room(room));
                self.sockets.stand(h.conn.sid, room);
                return Err(HubError::BadRequest("the socket is disconnecting".into()));
            }
            self.members_changed(room).await;
        }
        Ok(self.room_members(room).await)
    }

    /// `leave_room`: socket `h` leaves `room` (nothing happens if it was
    /// not in it). Its user's typing there is cleared.
    pub async fn leave_room(&self, h: &Handle, room: &str) -> Result<(), HubError> {
        check_room(room)?;
        if self.sockets.stand(h.conn.sid, room) {
            h.socket.leave(study_room(room));
            self.left_room(room, &h.conn.user_id).await;
        }
        Ok(())
    }

    /// A socket of `user` left `room` (a leave, a revocation, a
    /// disconnect): the room hears `isTyping: false` if it was told the
    /// user was typing, and its members again.
    pub(super) async fn left_room(&self, room: &str, user: &str) {
        let told = self.typing.lock().left(room, user, self.now());
        if let Some(told) = told {
            self.tell_typing(&told).await;
        }
        self.members_changed(room).await;
    }

    /// A socket that left: out of every room it sat in.
    pub(super) async fn leave_rooms(&self, sid: socketioxide::socket::Sid) {
        for (room, user) in self.sockets.unseat_all(sid) {
            self.left_room(&room, &user).await;
        }
    }

    /// `room`'s members changed here: every node with sockets in the room
    /// hears it (this one first, without Redis) and opens its window.
    async fn members_changed(&self, room: &str) {
        let target = Target::Room {
            room: room.to_string(),
            except_user: None,
        };
        self.broker.deliver(&target, &Message::RoomChanged).await;
    }

    /// A change of `room`'s members heard here: its window opens unless one
    /// is open (the scheduler wakes when it closes).
    pub(super) fn open_room_window(&self, room: &str) {
        let opened = self.room_windows.lock().changed(room, self.now());
        if let Some(closes) = opened {
            self.wake_for(closes);
        }
    }

    /// Who is in `room` on every node, one member per user.
    pub async fn room_members(&self, room: &str) -> RoomView {
        let target = Target::Room {
            room: room.to_string(),
            except_user: None,
        };
        let listing = self.broker.sockets(&target).await;
        let seats = listing.sockets.into_iter().map(|s| Seat {
            since: s.joined_at.unwrap_or(s.connected_at),
            user_id: s.user_id,
        });
        Answer {
            value: rooms::members(seats),
            partial: listing.partial,
        }
    }

    /// `GET /api/v1/rooms/{room}`.
    pub async fn room(&self, room: &str) -> Result<RoomView, HubError> {
        check_room(room)?;
        Ok(self.room_members(room).await)
    }

    /// Sends this node's sockets of each room whose window closed by `now`
    /// the room's members (one `room_presence` per room, serialised once;
    /// every node with sockets in the room heard the change and sends its
    /// own); returns when the next window closes.
    pub(super) async fn send_room_presence(&self, now: Millis) -> Option<Millis> {
        let due = self.room_windows.lock().due(now);
        for room in due {
            let view = self.room_members(&room).await;
            let message = Message::Event {
                name: protocol::ROOM_PRESENCE.into(),
                data: Some(json!({ "room": &*room, "members": rooms::members_view(&view.value) })),
            };
            let target = Target::Room {
                room: room.to_string(),
                except_user: None,
            };
            self.local.deliver_here(&target, &message).await;
        }
        self.room_windows.lock().next_due()
    }

    /// `typing { room, isTyping }` from socket `h`, a member of `room`.
    pub async fn typing(&self, h: &Handle, room: &str, is_typing: bool) -> Result<(), HubError> {
        check_room(room)?;
        if !self.sockets.sits(h.conn.sid, room) {
            return Err(HubError::Forbidden(
                "this socket is not in this room; join it first".into(),
            ));
        }
        let room: Arc<str> = Arc::from(room);
        let told = self
            .typing
            .lock()
            .input(&room, &h.conn.user_id, is_typing, self.now());
        // A change held by the throttle, or a `true` that goes stale: the
        // scheduler must be awake by then.
        let next = self.typing.lock().next_due();
        if let Some(next) = next {
            self.wake_for(next);
        }
        if let Some(told) = told {
            self.tell_typing(&told).await;
        }
        Ok(())
    }

    /// Tells the typing changes held by the throttle and the stale `true`s
    /// due by `now`; returns when the next falls due.
    pub(super) async fn send_typing_due(&self, now: Millis) -> Option<Millis> {
        let due = self.typing.lock().due(now);
        for told in &due {
            self.tell_typing(told).await;
        }
        self.typing.lock().next_due()
    }

    /// One `typing` to the room's sockets on every node, not the user's own.
    async fn tell_typing(&self, told: &Told) {
        let message = Message::Event {
            name: protocol::TYPING.into(),
            data: Some(json!({
                "room": &*told.room,
                "userId": &*told.user_id,
                "isTyping": told.is_typing,
                "at": rfc3339(told.at),
            })),
        };
        let target = Target::Room {
            room: told.room.to_string(),
            except_user: Some(told.user_id.to_string()),
        };
        self.broker.deliver(&target, &message).await;
    }

    /// `POST /api/v1/rooms/{room}/events`: an event to every socket in the
    /// room, on every node; reserved names are refused.
    pub async fn send_event_to_room(
        &self,
        room: &str,
        event: &str,
        data: Option<&Value>,
    ) -> Result<Reach, HubError> {
        check_room(room)?;
        check_event_name(event).map_err(HubError::BadRequest)?;
        let target = Target::Room {
            room: room.to_string(),
            except_user: None,
        };
        let message = Message::Event {
            name: event.to_string(),
            data: data.cloned(),
        };
        Ok(self.broker.deliver(&target, &message).await)
    }

    /// `PUT /api/v1/rooms/{room}/members/{userId}`: `user` may join `room`
    /// from now on, whatever their token; true when the grant is new.
    pub async fn grant_room(&self, room: &str, user: &str) -> Result<bool, HubError> {
        check_room(room)?;
        Ok(self.store.grant_room(room, user, self.now()).await?)
    }

    /// `DELETE /api/v1/rooms/{room}/members/{userId}`: the grant is taken
    /// back and the user's sockets leave the room on every node (a token
    /// whose patterns open the room lets them join again). Whether a grant
    /// was held, and the sockets taken out.
    pub async fn revoke_room(&self, room: &str, user: &str) -> Result<(bool, Reach), HubError> {
        check_room(room)?;
        let held = self.store.revoke_room(room, user).await?;
        let reach = self
            .broker
            .deliver(
                &Target::user(user),
                &Message::LeaveRoom {
                    room: room.to_string(),
                },
            )
            .await;
        Ok((held, reach))
    }
}
