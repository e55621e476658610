//! This node's side of every delivery: hands a message to the sockets
//! connected here (claims, slow-buffer retries, delivery marks), lists
//! them, and takes them out of the table and the registry when they leave.
//! Alone, it is the whole broker of a single node; in a cluster the Redis
//! broker calls it for this node's share and for requests from others.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use socketioxide::socket::Sid;
use socketioxide::SocketIo;

use super::{Broker, Listing, Message, Reach, Target};
use crate::clock::SharedClock;
use crate::conn::{ConnectionInfo, Handle};
use crate::hub::{role_room, user_room, ALL_ROOM};
use crate::notification::Notification;
use crate::outbox::{self, Undelivered};
use crate::prometheus;
use crate::registry::Registry;
use crate::sockets::Sockets;
use crate::store::Store;

pub struct LocalBroker {
    node: Arc<str>,
    sockets: Arc<Sockets>,
    registry: Arc<dyn Registry>,
    store: Arc<dyn Store>,
    clock: SharedClock,
    io: OnceLock<SocketIo>,
    /// How long a send may wait for a socket's full buffer to drain.
    patience: Duration,
}

impl LocalBroker {
    pub fn new(
        node: Arc<str>,
        sockets: Arc<Sockets>,
        registry: Arc<dyn Registry>,
        store: Arc<dyn Store>,
        clock: SharedClock,
        patience: Duration,
    ) -> Self {
        Self {
            node,
            sockets,
            registry,
            store,
            clock,
            io: OnceLock::new(),
            patience,
        }
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
            Target::All => self.sockets.all(),
            Target::Others { role, except_user } => {
                let mut hs = self.sockets.all();
                hs.retain(|h| {
                    *h.conn.user_id != **except_user
                        && role.as_ref().is_none_or(|r| *h.conn.role == **r)
                });
                hs
            }
        }
    }

    /// This node's sockets of `target`.
    pub fn sockets_here(&self, target: &Target) -> Vec<ConnectionInfo> {
        self.handles(target)
            .iter()
            .map(|h| h.info(&self.node))
            .collect()
    }

    /// Hands `message` to this node's sockets of `target`: one count per
    /// slot of the target.
    pub async fn deliver_here(&self, target: &Target, message: &Message) -> Vec<usize> {
        match (target, message) {
            (Target::Users(users), Message::Notification(n)) => {
                let mut counts = Vec::with_capacity(users.len());
                for user in users {
                    counts.push(self.notify_user(n, user).await);
                }
                counts
            }
            (Target::Users(users), Message::Event { name, data }) => {
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
            Message::Notification(n) => self.notify_socket(h, n).await,
            Message::Event { name, data } => {
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
        }
    }

    /// Hands `n` to every socket of `user` here that does not have it yet,
    /// and records the first hand-over.
    async fn notify_user(&self, n: &Arc<Notification>, user: &str) -> usize {
        let mut delivered = 0;
        for h in self.sockets.of_user(user) {
            if self.notify_socket(&h, n).await {
                delivered += 1;
            }
        }
        prometheus::delivered("live", delivered);
        if delivered > 0 {
            let now = self.clock.now_ms();
            prometheus::first_delivery(n.created_at, now);
            self.store.mark_delivered(&n.id, user, now);
        }
        delivered
    }

    /// Hands `n` to one socket unless it already has it.
    async fn notify_socket(&self, h: &Handle, n: &Arc<Notification>) -> bool {
        if !h.conn.claim(&n.id) {
            return false;
        }
        match outbox::emit(&h.socket, "critical_notification", &**n, Duration::ZERO).await {
            Ok(()) => true,
            Err(Undelivered::Closed) => {
                h.conn.unclaim(&n.id);
                false
            }
            Err(Undelivered::Stalled) => {
                // The socket is slow, not gone: keep trying in the background.
                let (h, n, patience) = (h.clone(), n.clone(), self.patience);
                tokio::spawn(async move {
                    if outbox::emit(&h.socket, "critical_notification", &*n, patience)
                        .await
                        .is_err()
                    {
                        h.conn.unclaim(&n.id);
                    }
                });
                true
            }
        }
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
        let Some(io) = self.io() else { return 0 };
        if expected == 0 {
            return 0;
        }
        let op = io.to(room.clone());
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
