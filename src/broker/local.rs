//! This node's side of every delivery: hands a message to the sockets
//! connected here (claims, slow-buffer retries, delivery marks), lists
//! them, and takes them out of the table and the registry when they leave;
//! and tells the sockets here watching a user of that user's presence
//! changes, and the Hub's listener (which batches for the wide audiences).
//! Alone, it is the whole broker of a single node; in a cluster the Redis
//! broker calls it for this node's share and for requests from others.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError, SocketIo};

use super::rooms::{role_room, study_room, user_room, watch_room, ALL_ROOM};
use super::{Broker, Listing, Message, Reach, Target};
use crate::calls::CallNews;
use crate::clock::SharedClock;
use crate::connections::backlog::{Offered, TrySend};
use crate::connections::connection::{Conn, ConnectionInfo, Handle, JoinedRoom};
use crate::connections::outbox::{self, Undelivered};
use crate::connections::steps::Step;
use crate::connections::table::Sockets;
use crate::notification::Notification;
use crate::observe::prometheus;
use crate::presence::PresenceChange;
use crate::protocol;
use crate::registry::Registry;
use crate::store::Store;
use crate::trail::{Entry, Kind};

/// What one socket did with a notification offered to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Took {
    /// Nothing: it had it already, or it is gone or too slow.
    No,
    /// Handed to its transport or queued behind its backlog: recorded now.
    Now,
    /// Held while it connects: counted now, recorded when sent.
    Held,
}

/// Hears every presence change, this node's and the others'.
pub type PresenceListener = Box<dyn Fn(&PresenceChange) + Send + Sync>;

/// What this node hears of a study room from any node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomNews<'a> {
    /// A socket of `user` here was taken out of `room` by
    /// [`Message::LeaveRoom`].
    Left { room: &'a str, user: &'a str },
    /// `room`'s members changed somewhere, and sockets here sit in it
    /// ([`Message::RoomChanged`]).
    Changed { room: &'a str },
}

/// Hears [`RoomNews`] (the Hub).
pub type RoomListener = Box<dyn Fn(RoomNews<'_>) + Send + Sync>;

/// Hears a call's news with this node's sockets of its target (the Hub);
/// answers how many sockets it told.
pub type CallListener = Box<dyn Fn(&CallNews, &[Handle]) -> usize + Send + Sync>;

pub struct LocalBroker {
    node: Arc<str>,
    sockets: Arc<Sockets>,
    registry: Arc<dyn Registry>,
    store: Arc<dyn Store>,
    clock: SharedClock,
    io: OnceLock<SocketIo>,
    /// How long a send may wait for a socket's full buffer to drain.
    patience: Duration,
    /// Bytes one socket's backlog may hold (`socket.max_queued_bytes`).
    max_queued: usize,
    presence_listener: OnceLock<PresenceListener>,
    room_listener: OnceLock<RoomListener>,
    call_listener: OnceLock<CallListener>,
    /// Whether escalation steps can happen here (a policy is configured):
    /// only then do this node's sockets remember the notifications that
    /// closed, so a deployment without the closed loop pays nothing for it.
    closed_loop: bool,
}

impl LocalBroker {
    pub fn new(
        node: Arc<str>,
        sockets: Arc<Sockets>,
        registry: Arc<dyn Registry>,
        store: Arc<dyn Store>,
        clock: SharedClock,
        patience: Duration,
        max_queued: usize,
    ) -> Self {
        Self {
            node,
            sockets,
            registry,
            store,
            clock,
            io: OnceLock::new(),
            patience,
            max_queued,
            presence_listener: OnceLock::new(),
            room_listener: OnceLock::new(),
            call_listener: OnceLock::new(),
            closed_loop: false,
        }
    }

    /// Has the sockets here remember closings (see `closed_loop`).
    pub fn with_closed_loop(mut self, on: bool) -> Self {
        self.closed_loop = on;
        self
    }

    /// Sets what hears each presence change on this node (the Hub's
    /// batches for the wide audiences), once.
    pub fn on_presence(&self, listener: PresenceListener) {
        let _ = self.presence_listener.set(listener);
    }

    /// Sets what hears this node's [`RoomNews`] (the Hub), once.
    pub fn on_room_news(&self, listener: RoomListener) {
        let _ = self.room_listener.set(listener);
    }

    /// Sets what hears the calls' news on this node (the Hub), once.
    pub fn on_call_news(&self, listener: CallListener) {
        let _ = self.call_listener.set(listener);
    }

    /// Gives the broker the Socket.IO server it emits room broadcasts through.
    pub fn attach_io(&self, io: SocketIo) {
        let _ = self.io.set(io);
    }

    pub fn io(&self) -> Option<&SocketIo> {
        self.io.get()
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn sockets(&self) -> &Sockets {
        &self.sockets
    }

    /// Takes a socket out of this node's table and the cluster registry.
    /// Idempotent.
    pub async fn detach(&self, sid: Sid) -> Option<Handle> {
        let h = self.sockets.remove(sid)?;
        self.registry.detach(&h.conn, self.clock.now_ms()).await;
        Some(h)
    }

    /// The handles of `target` here.
    fn handles(&self, target: &Target) -> Vec<Handle> {
        match target {
            Target::Users(users) => users.iter().flat_map(|u| self.sockets.of_user(u)).collect(),
            Target::Session { id, user } => {
                let mut hs = self.sockets.of_session(id);
                if let Some(user) = user {
                    hs.retain(|h| *h.conn.user_id == **user);
                }
                hs
            }
            Target::Role(role) => {
                let mut hs = self.sockets.all();
                hs.retain(|h| *h.conn.role == **role);
                hs
            }
            Target::Recipients { users, roles } => {
                // One pass over this node's sockets with the names looked up,
                // not compared one by one: a broadcast's recipients can be
                // thousands of users.
                let users: HashSet<&str> = users.iter().map(|u| &**u).collect();
                let roles: HashSet<&str> = roles.iter().map(|r| &**r).collect();
                let mut hs = self.sockets.all();
                hs.retain(|h| users.contains(&*h.conn.user_id) || roles.contains(&*h.conn.role));
                hs
            }
            Target::All => self.sockets.all(),
            Target::Room { room, except_user } => {
                let mut hs: Vec<Handle> = self
                    .sockets
                    .room_seats(room)
                    .iter()
                    .filter_map(|s| self.sockets.get(s.sid))
                    .collect();
                if let Some(u) = except_user {
                    hs.retain(|h| *h.conn.user_id != **u);
                }
                hs
            }
            Target::Socket(sid) => sid
                .parse::<Sid>()
                .ok()
                .and_then(|sid| self.sockets.get(sid))
                .into_iter()
                .collect(),
            // The listener knows a call's sockets here.
            Target::Call(_) => Vec::new(),
        }
    }

    /// This node's sockets of `target`; in a study room, each with when it
    /// joined the room; of every socket, each with the rooms it sits in.
    pub fn sockets_here(&self, target: &Target) -> Vec<ConnectionInfo> {
        if let Target::Room { room, except_user } = target {
            return self
                .sockets
                .room_seats(room)
                .into_iter()
                .filter(|s| except_user.as_deref() != Some(&*s.user_id))
                .filter_map(|s| {
                    let mut info = self.sockets.get(s.sid)?.info(&self.node);
                    info.joined_at = Some(s.since);
                    Some(info)
                })
                .collect();
        }
        let all = matches!(target, Target::All);
        self.handles(target)
            .iter()
            .map(|h| {
                let mut info = h.info(&self.node);
                if all {
                    // The dashboard's listing: where each socket sits, so
                    // that it shows every study room without a listing per
                    // room.
                    info.rooms = self
                        .sockets
                        .rooms_of(h.conn.sid)
                        .into_iter()
                        .map(|(room, since)| JoinedRoom {
                            room: room.to_string(),
                            since,
                        })
                        .collect();
                }
                info
            })
            .collect()
    }

    /// Hands `message` to this node's sockets of `target`: one count per
    /// slot of the target.
    pub async fn deliver_here(&self, target: &Target, message: &Message) -> Vec<usize> {
        // A session's end: recorded before its sockets here are looked for,
        // so one whose connect is under way finds it when attached.
        if let (Target::Session { id, .. }, Message::Farewell { .. }) = (target, message) {
            self.sockets.end_session(id, self.clock.now_ms());
        }
        match (target, message) {
            (Target::Users(users), Message::Notification(n)) => {
                let mut counts = Vec::with_capacity(users.len());
                for user in users {
                    counts.push(self.notify_user(n, user).await);
                }
                counts
            }
            (Target::Users(users), Message::Event { name, data }) => {
                if let Some((id, step)) = escalation_step(name, data.as_ref()) {
                    // Socket by socket, not to the user's room: each
                    // socket drops a step it heard or a notification it
                    // is done with.
                    let counts: Vec<usize> = users
                        .iter()
                        .map(|u| {
                            let hs = self.sockets.of_user(u);
                            hs.iter()
                                .filter(|h| tell_step(h, name, data.as_ref(), id, step))
                                .count()
                        })
                        .collect();
                    let told: usize = counts.iter().sum();
                    prometheus::event_delivered(told);
                    return counts;
                }
                if let Some(id) = self.closing(name, data.as_ref()) {
                    for h in users.iter().flat_map(|u| self.sockets.of_user(u)) {
                        h.conn.done_with(id);
                    }
                }
                let mut counts = Vec::with_capacity(users.len());
                for user in users {
                    let n = self.sockets.user_count(user);
                    counts.push(
                        self.emit_room(user_room(user).into(), n, name, data.as_ref())
                            .await,
                    );
                }
                counts
            }
            (Target::Role(role), Message::Event { name, data }) => {
                let n = self.sockets.role_count(role);
                vec![
                    self.emit_room(role_room(role).into(), n, name, data.as_ref())
                        .await,
                ]
            }
            (Target::All, Message::Event { name, data }) => {
                let n = self.sockets.len();
                vec![
                    self.emit_room(ALL_ROOM.into(), n, name, data.as_ref())
                        .await,
                ]
            }
            (Target::Room { room, except_user }, Message::Event { name, data }) => {
                let mut n = self.sockets.room_count(room);
                let except = except_user.as_deref().map(|u| {
                    n -= self.sockets.user_in_room(room, u).len();
                    user_room(u)
                });
                vec![
                    self.emit_to(study_room(room).into(), except, n, name, data.as_ref())
                        .await,
                ]
            }
            (Target::Room { room, .. }, Message::RoomChanged) => {
                let here = self.sockets.room_count(room);
                if here > 0 {
                    if let Some(listener) = self.room_listener.get() {
                        listener(RoomNews::Changed { room });
                    }
                }
                vec![here]
            }
            (_, Message::Presence(change)) => vec![self.presence_here(change).await],
            (target, Message::Call(news)) => {
                let hs = self.handles(target);
                let told = self.call_listener.get().map_or(0, |l| l(news, &hs));
                vec![told]
            }
            (target, message) => {
                let per_user = |hs: &[Handle], users: &[String]| -> Vec<usize> {
                    users
                        .iter()
                        .map(|u| hs.iter().filter(|h| *h.conn.user_id == **u).count())
                        .collect()
                };
                let hs = self.handles(target);
                let mut delivered = Vec::with_capacity(hs.len());
                for h in &hs {
                    if self.one(h, message).await {
                        delivered.push(h.clone());
                    }
                }
                match target {
                    Target::Users(users) => per_user(&delivered, users),
                    _ => vec![delivered.len()],
                }
            }
        }
    }

    /// Hands `message` to one socket; true when it took it.
    async fn one(&self, h: &Handle, message: &Message) -> bool {
        match message {
            Message::Notification(n) => {
                // A socket of a role, not one user's set of sockets: its
                // hand-over is recorded alone (a held one when it is sent).
                match self.notify_socket(h, n).await {
                    Took::Now => {
                        let at = self.clock.now_ms();
                        self.store
                            .record(delivery_record(Kind::Delivered, &n.id, h, at));
                        true
                    }
                    Took::Held => true,
                    Took::No => false,
                }
            }
            Message::Event { name, data } => {
                if let Some((id, step)) = escalation_step(name, data.as_ref()) {
                    return tell_step(h, name, data.as_ref(), id, step);
                }
                if let Some(id) = self.closing(name, data.as_ref()) {
                    h.conn.done_with(id);
                }
                let sent = match data {
                    Some(d) => outbox::emit(&h.socket, name, d, Duration::ZERO).await,
                    None => h
                        .socket
                        .emit(name.as_str(), &[(); 0])
                        .map(|()| prometheus::server_event(name, 1))
                        .map_err(|_| Undelivered::Closed),
                };
                sent.is_ok()
            }
            Message::Farewell { name, data } => {
                self.detach(h.conn.sid).await;
                outbox::last_word(
                    h.socket.clone(),
                    Cow::Owned(name.clone()),
                    data.clone(),
                    self.patience,
                )
            }
            Message::Disconnect => {
                self.detach(h.conn.sid).await;
                tokio::spawn(outbox::disconnect(h.socket.clone(), self.patience));
                true
            }
            Message::LeaveRoom { room } => {
                if !self.sockets.stand(h.conn.sid, room) {
                    return false;
                }
                h.socket.leave(study_room(room));
                if let Some(listener) = self.room_listener.get() {
                    listener(RoomNews::Left {
                        room,
                        user: &h.conn.user_id,
                    });
                }
                true
            }
            // Told to watch rooms, never socket by socket (`deliver_here`).
            Message::Presence(_) => false,
            // Heard by the node, for a study room (`deliver_here`).
            Message::RoomChanged => false,
            // Handed to the call listener (`deliver_here`).
            Message::Call(_) => false,
        }
    }

    /// A presence change, here: one `presence` event to the room of the
    /// sockets watching the user (nothing at all when none here does),
    /// and the change to the listener. Returns the watchers reached.
    async fn presence_here(&self, change: &PresenceChange) -> usize {
        if let Some(listener) = self.presence_listener.get() {
            listener(change);
        }
        let watchers = self.sockets.watchers(&change.user_id);
        if watchers == 0 {
            return 0;
        }
        let data = change.view();
        self.emit_room(
            watch_room(&change.user_id).into(),
            watchers,
            protocol::PRESENCE,
            Some(&data),
        )
        .await
    }

    /// Hands `n` to every socket of `user` here that does not have it yet,
    /// and records the hand-over: the delivery mark and one audit record
    /// naming the sockets that took it. A socket whose connect is under
    /// way has it held, counted now and recorded when it is sent
    /// ([`LocalBroker::release_held`]).
    async fn notify_user(&self, n: &Arc<Notification>, user: &str) -> usize {
        let (here, attaching) = self.sockets.of_user_and_attaching(user);
        let mut sockets = Vec::new();
        let mut held = 0;
        for h in here {
            match self.notify_socket(&h, n).await {
                Took::Now => sockets.push(h.conn.sid.to_string()),
                Took::Held => held += 1,
                Took::No => {}
            }
        }
        for c in attaching {
            match self.notify_attaching(&c, n).await {
                Took::Now => sockets.push(c.sid.to_string()),
                Took::Held => held += 1,
                Took::No => {}
            }
        }
        prometheus::delivered("live", sockets.len());
        if !sockets.is_empty() {
            let now = self.clock.now_ms();
            prometheus::first_delivery(n.created_at, now);
            self.store.delivered(&n.id, user, now, &sockets);
        }
        sockets.len() + held
    }

    /// Holds `n` for a socket authenticated here and not attached yet: it
    /// waits in the socket's held lane, to be sent right after `connected`.
    /// A socket attached since it was looked up gets it as any other; one
    /// whose hold is full gets it in its catch-up.
    async fn notify_attaching(&self, c: &Arc<Conn>, n: &Arc<Notification>) -> Took {
        if !c.claim(&n.id) {
            return Took::No;
        }
        let offered = c.backlog.offer(
            n.clone(),
            self.max_queued,
            |n| n.to_json().len(),
            // Not held any more: its lane is open, the socket attached.
            |_| TrySend::Closed,
        );
        match offered {
            Offered::Held => Took::Held,
            // Behind what a sending task of the attached socket sends.
            Offered::Queued { .. } => Took::Now,
            Offered::Overflow { .. } => {
                c.unclaim(&n.id);
                Took::No
            }
            Offered::Sent | Offered::Closed => {
                c.unclaim(&n.id);
                match self.sockets.get(c.sid) {
                    Some(h) => self.notify_socket(&h, n).await,
                    None => Took::No,
                }
            }
        }
    }

    /// Hands `n` to one socket unless it already has it. A full buffer
    /// puts it in the socket's backlog, behind anything already waiting
    /// there, and one task per socket sends the backlog in order; a socket
    /// still connecting has it held. The caller records what was taken
    /// now (sent or queued); what is held is recorded when it is sent.
    async fn notify_socket(&self, h: &Handle, n: &Arc<Notification>) -> Took {
        if !h.conn.claim(&n.id) {
            return Took::No;
        }
        let offered = h.conn.backlog.offer(
            n.clone(),
            self.max_queued,
            |n| n.to_json().len(),
            |n| match h.socket.emit(protocol::CRITICAL_NOTIFICATION, &(&**n,)) {
                Ok(()) => {
                    prometheus::server_event(protocol::CRITICAL_NOTIFICATION, 1);
                    TrySend::Sent
                }
                Err(SendError::Socket(SocketError::InternalChannelFull)) => TrySend::Full,
                Err(_) => TrySend::Closed,
            },
        );
        match offered {
            Offered::Sent => Took::Now,
            Offered::Held => Took::Held,
            Offered::Closed => {
                h.conn.unclaim(&n.id);
                Took::No
            }
            Offered::Overflow { waiting } => {
                h.conn.unclaim(&n.id);
                self.drop_slow(h, waiting).await;
                Took::No
            }
            Offered::Queued { start } => {
                // Recorded when it joins the socket's ordered backlog: the
                // socket is dropped, not the notification skipped, if it
                // never drains.
                prometheus::delivery_queued();
                if start {
                    tokio::spawn(send_backlog(h.clone(), self.patience, |_| {}));
                }
                Took::Now
            }
        }
    }

    /// Sends what was held for socket `h` while it connected, oldest
    /// first, each recorded delivered (mark and audit record) as it is
    /// handed to the transport, then whatever queued behind it; from then
    /// on live deliveries try its buffer. Called once `connected` is sent
    /// and the socket is attached, before its catch-up (which skips what
    /// was sent: the socket's claims). What cannot be sent is given back
    /// to the next catch-up, unrecorded.
    pub async fn release_held(&self, h: &Handle) {
        let mut held = h.conn.backlog.open();
        if held == 0 {
            return;
        }
        let sid = [h.conn.sid.to_string()];
        send_backlog(h.clone(), self.patience, |n| {
            if held == 0 {
                return;
            }
            held -= 1;
            let now = self.clock.now_ms();
            prometheus::delivered("live", 1);
            prometheus::first_delivery(n.created_at, now);
            self.store.delivered(&n.id, &h.conn.user_id, now, &sid);
        })
        .await;
    }

    /// The notification a `notification_closed` event closes, when the
    /// sockets here are to remember it.
    fn closing<'a>(&self, name: &str, data: Option<&'a Value>) -> Option<&'a str> {
        if !self.closed_loop || name != protocol::NOTIFICATION_CLOSED {
            return None;
        }
        data?.get("notificationId")?.as_str()
    }

    /// Emits to a room of this node, serialised once; `expected` is how
    /// many sockets are in it.
    async fn emit_room(
        &self,
        room: Cow<'static, str>,
        expected: usize,
        event: &str,
        data: Option<&Value>,
    ) -> usize {
        self.emit_to(room, None, expected, event, data).await
    }

    /// [`LocalBroker::emit_room`], leaving out the sockets of room `except`.
    async fn emit_to(
        &self,
        room: Cow<'static, str>,
        except: Option<String>,
        expected: usize,
        event: &str,
        data: Option<&Value>,
    ) -> usize {
        let Some(io) = self.io() else { return 0 };
        if expected == 0 {
            return 0;
        }
        let op = match except {
            Some(except) => io.to(room.clone()).except(except),
            None => io.to(room.clone()),
        };
        let res = match data {
            Some(d) => op.emit(event, &(d,)).await,
            None => op.emit(event, &[(); 0]).await,
        };
        let failed = match res {
            Ok(()) => 0,
            Err(socketioxide::BroadcastError::Socket(errs)) => errs.len(),
            Err(e) => {
                tracing::warn!(error = %e, room = %room, "broadcast failed");
                expected
            }
        };
        let delivered = expected.saturating_sub(failed);
        prometheus::event_delivered(delivered);
        prometheus::server_event(event, delivered);
        delivered
    }
}

impl LocalBroker {
    /// Drops a socket whose client reads too slowly: out of the table and
    /// the registry at once (no more deliveries are counted for it or
    /// queued), its backlog given back to the store's catch-up, and a
    /// disconnect that goes out as soon as its buffer has room (or the
    /// heartbeat ends the transport).
    async fn drop_slow(&self, h: &Handle, waiting: usize) {
        let abandoned = h.conn.backlog.abandon();
        for n in &abandoned {
            h.conn.unclaim(&n.id);
        }
        prometheus::slow_consumer_dropped();
        tracing::warn!(
            sid = %h.conn.sid,
            user = %h.conn.user_id,
            queued_bytes = waiting,
            max_queued_bytes = self.max_queued,
            notifications = abandoned.len() + 1,
            "dropping a socket that reads too slowly: its queued notifications would pass \
             socket.max_queued_bytes; they stay unacknowledged and come in its next catch-up"
        );
        self.detach(h.conn.sid).await;
        tokio::spawn(outbox::disconnect(h.socket.clone(), self.patience));
    }
}

/// The notification and step an event tells, when it is an escalation
/// step's: a reminder (`critical_notification` with `"reminder"`; a first
/// delivery is a [`Message::Notification`], never an event) or
/// `notification_escalated`. Other events pay two string comparisons.
fn escalation_step<'a>(name: &str, data: Option<&'a Value>) -> Option<(&'a str, Step)> {
    let number = |v: &Value, key: &str| v.get(key)?.as_u64().and_then(|n| u32::try_from(n).ok());
    let data = data?;
    if name == protocol::CRITICAL_NOTIFICATION {
        Some((
            data.get("id")?.as_str()?,
            Step::Reminder(number(data, "reminder")?),
        ))
    } else if name == protocol::NOTIFICATION_ESCALATED {
        Some((
            data.get("notificationId")?.as_str()?,
            Step::Escalated(number(data, "level")?),
        ))
    } else {
        None
    }
}

/// Tells socket `h` an escalation step's event, unless it heard that step
/// or is done with the notification. Sent at once or not at all (a full
/// buffer drops it, as any event), under the socket's step lock.
fn tell_step(h: &Handle, name: &str, data: Option<&Value>, id: &str, step: Step) -> bool {
    h.conn
        .tell_step(id, step, || match h.socket.emit(name, &(data,)) {
            Ok(()) => {
                prometheus::server_event(name, 1);
                true
            }
            Err(e) => {
                tracing::debug!(sid = %h.conn.sid, event = name, error = %e, "emit failed");
                false
            }
        })
}

/// The audit record of handing `id` to socket `h`: live here, or in the
/// Hub's catch-up of a new connection.
pub fn delivery_record(kind: Kind, id: &str, h: &Handle, at: i64) -> Entry {
    Entry::new(kind, at)
        .notification(id)
        .user(&h.conn.user_id)
        .socket(&h.conn.sid.to_string())
}

/// Sends a socket's backlog, oldest first, each waiting (up to `patience`)
/// for room in the buffer, and tells `sent` of each. A socket that stays
/// stalled, or goes, gives every waiting notification back:
/// unacknowledged, it reaches the user in the catch-up of their next
/// connection.
async fn send_backlog(h: Handle, patience: Duration, mut sent: impl FnMut(&Arc<Notification>)) {
    while let Some(n) = h.conn.backlog.next() {
        if outbox::emit(&h.socket, protocol::CRITICAL_NOTIFICATION, &*n, patience)
            .await
            .is_err()
        {
            let abandoned = h.conn.backlog.abandon();
            tracing::warn!(sid = %h.conn.sid, user = %h.conn.user_id, notifications = abandoned.len(), "a socket's send buffer stayed full; its waiting notifications are left for its next catch-up");
            for n in abandoned {
                h.conn.unclaim(&n.id);
            }
            return;
        }
        h.conn.backlog.sent();
        sent(&n);
    }
}

#[async_trait]
impl Broker for LocalBroker {
    async fn deliver(&self, target: &Target, message: &Message) -> Reach {
        Reach {
            counts: self.deliver_here(target, message).await,
            partial: false,
        }
    }

    async fn sockets(&self, target: &Target) -> Listing {
        Listing {
            sockets: self.sockets_here(target),
            partial: false,
        }
    }
}
