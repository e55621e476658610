//! The Hub: the one type the socket layer and the HTTP API talk to — the
//! old service's WebSocketService in Rust. It owns no transport; it combines
//! the store, the session clocks, the connection registry, the broker and
//! the escalation engine.

mod calls;
mod events;
mod files;
mod gather;
mod lifecycle;
mod notify;
mod operators;
mod presence;
mod rooms;
mod sessions;
mod trail;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use socketioxide::socket::Sid;
use socketioxide::SocketIo;
use tokio::sync::{watch, Notify};

pub use calls::Callee;
pub use lifecycle::RefreshError;
pub use notify::Delivery;
pub use presence::PresenceView;
pub use rooms::RoomView;
pub use sessions::SessionView;

use crate::auth::Verifier;
use crate::broker::{Broker, LocalBroker, RoomNews};
use crate::calls::CallBook;
use crate::clock::{Millis, SharedClock};
use crate::cluster::Health;
use crate::config::Config;
use crate::connections::handover::Authenticated;
use crate::connections::table::Sockets;
use crate::deadlines::Deadlines;
use crate::escalation::Escalations;
use crate::notification::InvalidNotification;
use crate::presence::{Batcher, Presence};
use crate::registry::Registry;
use crate::rooms::{PresenceWindows, Typing};
use crate::session::{SessionClocks, SessionOwners};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Invalid(#[from] InvalidNotification),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
}

/// What the Hub is built from: `build_hub` picks each engine from the
/// configuration (one node, or a cluster on Redis and PostgreSQL).
pub struct Engines {
    pub store: Arc<dyn Store>,
    pub sessions: Arc<dyn SessionClocks>,
    pub registry: Arc<dyn Registry>,
    pub presence: Arc<dyn Presence>,
    pub broker: Arc<dyn Broker>,
    /// This node's side of every delivery (also inside `broker`).
    pub local: Arc<LocalBroker>,
    /// The sockets connected to this node (also inside `local`).
    pub sockets: Arc<Sockets>,
    /// This node's name in the cluster.
    pub node: Arc<str>,
    /// Whether Redis answers, in a cluster.
    pub redis: Option<Health>,
}

/// Whether this node can serve, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub store: bool,
    /// `None` on a single node; `Some(false)` while Redis is unreachable.
    pub redis: Option<bool>,
}

pub struct Hub {
    config: Arc<Config>,
    clock: SharedClock,
    verifier: Verifier,
    store: Arc<dyn Store>,
    sessions: Arc<dyn SessionClocks>,
    /// Which user each session belongs to.
    owners: SessionOwners,
    registry: Arc<dyn Registry>,
    presence: Arc<dyn Presence>,
    broker: Arc<dyn Broker>,
    /// This node's side of delivery, for what only it does: taking a
    /// socket out of the table and the registry at once, and holding the
    /// Socket.IO server it emits through.
    local: Arc<LocalBroker>,
    /// The sockets connected to this node: the Hub adds each new one, and
    /// answers from it what only this node knows.
    sockets: Arc<Sockets>,
    /// This node's name in the cluster.
    node: Arc<str>,
    redis: Option<Health>,
    /// Sockets authenticated, whose connect handler has not run yet.
    authenticated: Authenticated,
    tokens: Mutex<Deadlines<Sid>>,
    wake: Notify,
    /// The time the scheduler is sleeping until.
    next_wake: AtomicI64,
    /// The last readiness probe of the store: when, and whether it passed.
    /// One probe at a time, and its answer serves every check for a while,
    /// so a flood of `/readyz` requests cannot turn into a flood of writes.
    store_probe: tokio::sync::Mutex<Option<(Millis, bool)>>,
    /// Turns true when the server starts shutting down: long-lived
    /// answers (the dashboard's stream) end, so they do not hold it up.
    closing: watch::Sender<bool>,
    /// The escalation engine: fires the steps of open notifications.
    escalation: Arc<Escalations>,
    /// The presence changes this node's wide audience (`role`, `all`) is
    /// still to hear, window by window.
    batches: Mutex<Batcher>,
    /// The study rooms whose members changed here, window by window.
    room_windows: Mutex<PresenceWindows>,
    /// Typing indicators of the users here, per room.
    typing: Mutex<Typing>,
    /// This node's sockets' part of each call.
    calls: Mutex<CallBook>,
    /// The first catch-up page of each user connecting here, read together
    /// with those of the other connects waiting.
    first_pages: gather::Gather<String, Vec<crate::store::UserNotification>>,
    /// The files waiting for each user connecting here, likewise.
    waiting_files: gather::Gather<String, Vec<crate::files::SharedFile>>,
}

/// How long one probe of the store answers `/readyz`.
const PROBE_FRESH_MS: Millis = 1_000;

/// How long a probe may wait for its write to commit: a writer that cannot
/// get through (stuck, or behind a lock) is as unready as one that fails.
const PROBE_DEADLINE: Duration = Duration::from_secs(5);

impl Hub {
    pub fn new(config: Arc<Config>, clock: SharedClock, engines: Engines) -> Arc<Self> {
        Arc::new_cyclic(|hub: &Weak<Self>| {
            // The engine wakes the scheduler through a weak handle: the Hub
            // owns the engine, not the other way round.
            let weak = hub.clone();
            let wake = Box::new(move |at| {
                if let Some(hub) = weak.upgrade() {
                    hub.wake_for(at);
                }
            });
            // Every presence change this node hears, its own and the other
            // nodes', goes into its batches (the same weak handle).
            let weak = hub.clone();
            engines.local.on_presence(Box::new(move |change| {
                if let Some(hub) = weak.upgrade() {
                    hub.batch_presence(change);
                }
            }));
            // Study-room news from any node: a socket here taken out by a
            // revocation (its typing cleared, the room told), or a change
            // of members of a room with sockets here (its window opens).
            let weak = hub.clone();
            engines.local.on_room_news(Box::new(move |news| {
                let Some(hub) = weak.upgrade() else { return };
                match news {
                    RoomNews::Left { room, user } => {
                        let (room, user) = (room.to_string(), user.to_string());
                        tokio::spawn(async move { hub.left_room(&room, &user).await });
                    }
                    RoomNews::Changed { room } => hub.open_room_window(room),
                }
            }));
            // A call's news from any node, with this node's sockets of it.
            let weak = hub.clone();
            engines.local.on_call_news(Box::new(move |news, here| {
                weak.upgrade().map_or(0, |hub| hub.hear_call(news, here))
            }));
            let escalation = Arc::new(Escalations::new(
                config.clone(),
                clock.clone(),
                engines.store.clone(),
                engines.broker.clone(),
                engines.node.clone(),
                wake,
            ));
            let window = config.presence.batch_window.as_millis() as Millis;
            let room_window = config.rooms.presence_window.as_millis() as Millis;
            let ring_timeout = config.webrtc.ring_timeout.as_millis() as Millis;
            Self {
                verifier: Verifier::new(&config.jwt, clock.clone()),
                config,
                clock,
                store: engines.store,
                sessions: engines.sessions,
                owners: SessionOwners::default(),
                registry: engines.registry,
                presence: engines.presence,
                broker: engines.broker,
                local: engines.local,
                sockets: engines.sockets,
                node: engines.node,
                redis: engines.redis,
                authenticated: Authenticated::default(),
                tokens: Mutex::new(Deadlines::default()),
                wake: Notify::new(),
                next_wake: AtomicI64::new(Millis::MAX),
                store_probe: tokio::sync::Mutex::new(None),
                closing: watch::Sender::new(false),
                escalation,
                batches: Mutex::new(Batcher::new(window)),
                room_windows: Mutex::new(PresenceWindows::new(room_window)),
                typing: Mutex::new(Typing::default()),
                calls: Mutex::new(CallBook::new(ring_timeout)),
                first_pages: gather::Gather::default(),
                waiting_files: gather::Gather::default(),
            }
        })
    }

    /// Gives the hub the Socket.IO server it broadcasts through.
    pub fn attach_io(&self, io: SocketIo) {
        self.local.attach_io(io);
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This node's name in the cluster.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// Sockets between authentication and their connect handler.
    pub fn authenticated(&self) -> &Authenticated {
        &self.authenticated
    }

    /// Number of sockets connected to this node.
    pub fn local_sockets(&self) -> usize {
        self.sockets.len()
    }

    /// Number of live sessions (cluster-wide in a cluster).
    pub async fn active_sessions(&self) -> usize {
        self.sessions.active_count().await
    }

    /// What `/metrics` reads from this node's state: its sockets by
    /// transport and users, the live sessions, the store's pending count.
    pub async fn metrics_snapshot(&self) -> crate::observe::prometheus::Snapshot {
        let sockets = &self.sockets;
        let all = sockets.all();
        let websocket = all
            .iter()
            .filter(|h| h.socket.transport_type() == socketioxide::TransportType::Websocket)
            .count();
        let pending = match self.store.pending_count().await {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the store did not count the pending notifications");
                None
            }
        };
        crate::observe::prometheus::Snapshot {
            websocket,
            polling: all.len() - websocket,
            users: sockets.user_total(),
            active_sessions: self.active_sessions().await,
            pending,
        }
    }

    /// Whether the store reads and commits a write and, in a cluster,
    /// whether Redis answers.
    pub async fn readiness(&self) -> Readiness {
        let store = self.store_ready().await;
        Readiness {
            store,
            redis: self.redis.as_ref().map(|r| r.is_up()),
        }
    }

    /// The store's probe result, probing again when the last one is stale.
    async fn store_ready(&self) -> bool {
        let mut last = self.store_probe.lock().await;
        let now = self.now();
        if let Some((at, ready)) = *last {
            if now >= at && now - at < PROBE_FRESH_MS {
                return ready;
            }
        }
        let ready = match tokio::time::timeout(PROBE_DEADLINE, self.store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness check: the store cannot commit a write");
                false
            }
            Err(_) => {
                tracing::warn!(
                    "readiness check: the store did not commit a write within {PROBE_DEADLINE:?}"
                );
                false
            }
        };
        crate::observe::prometheus::store_ready(ready);
        *last = Some((self.now(), ready));
        ready
    }

    /// The clock every deadline of this hub is read from.
    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// True on a single node, and in a cluster while Redis answers.
    pub fn redis_up(&self) -> bool {
        self.redis.as_ref().is_none_or(|r| r.is_up())
    }

    /// The handles of every socket connected to this node.
    pub fn local_handles(&self) -> Vec<crate::connections::connection::Handle> {
        self.sockets.all()
    }

    /// The broker this node delivers through: for tests that play
    /// another node's part (its engine telling the sockets a step).
    #[doc(hidden)]
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// Sessions expired within the retention of unacknowledged
    /// notifications, from the durable store (their tokens stay refused).
    pub async fn recently_expired_sessions(&self) -> Vec<String> {
        let since = self.now() - self.config.retention.unacknowledged.as_millis() as Millis;
        match self.store.expired_sessions(since).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not read expired sessions from the store");
                Vec::new()
            }
        }
    }

    /// How long a send may wait for a socket's full buffer to drain.
    fn patience(&self) -> Duration {
        self.config.socket.ping_timeout
    }

    /// Wakes the scheduler if `at` is earlier than what it sleeps until.
    fn wake_for(&self, at: Millis) {
        if at < self.next_wake.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// Runs every session, token and presence deadline (offline changes,
    /// batch windows), room window, typing and call ring timeout due now;
    /// returns the next one this node knows of.
    pub async fn run_due(&self) -> Option<Millis> {
        let now = self.now();
        for event in self.sessions.due(now).await {
            self.on_session_event(&event).await;
            self.sessions.done(&event).await;
        }
        let expired = self.tokens.lock().pop_due(now);
        for sid in expired {
            self.on_token_expired(sid).await;
        }
        for change in self.presence.due_offline(now).await {
            self.announce_presence(&change).await;
            self.presence.announced(&change).await;
        }
        let batches_next = self.send_presence_batches(now).await;
        let rooms_next = self.send_room_presence(now).await;
        let typing_next = self.send_typing_due(now).await;
        let rings_next = self.ring_out_calls(now).await;
        let token_next = self.tokens.lock().next();
        [
            self.sessions.next_deadline().await,
            token_next,
            self.presence.next_offline().await,
            batches_next,
            rooms_next,
            typing_next,
            rings_next,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires every escalation step due now that this node can claim;
    /// returns when to look again.
    pub async fn escalate_due(&self) -> Option<Millis> {
        self.escalation.run_due().await
    }

    /// The timer loop: one task for every session and token deadline.
    pub async fn run_scheduler(self: Arc<Self>) {
        loop {
            // While deadlines run, any new one must leave a wake-up behind.
            self.next_wake.store(Millis::MAX, Ordering::SeqCst);
            let next = [self.run_due().await, self.escalate_due().await]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(Millis::MAX);
            self.next_wake.store(next, Ordering::SeqCst);
            // In a cluster another node may add an earlier deadline (or die
            // holding one): look at the shared clocks and the escalation
            // steps at least every second.
            let cap = if self.redis.is_some() { 1_000 } else { 60_000 };
            let wait = (next.saturating_sub(self.now())).clamp(0, cap) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Deletes what is past retention, forgets long-expired sessions, and
    /// sweeps the files folder of what a crash left.
    pub async fn purge(&self) {
        let now = self.now();
        let r = self.config.retention;
        let acked = now - r.acknowledged.as_millis() as Millis;
        let unacked = now - r.unacknowledged.as_millis() as Millis;
        match self.store.purge(acked, unacked).await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "purged notifications past retention"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
        self.owners.forget();
        self.sessions.forget_expired_before(unacked).await;
        self.purge_files().await;
        self.sweep_files(now - files::STAGING_STALE_MS).await;
    }

    /// Disconnects every socket cleanly (graceful shutdown).
    pub async fn shutdown_sockets(&self) {
        self.closing.send_replace(true);
        if let Some(io) = self.local.io() {
            io.close().await;
        }
    }

    /// Becomes true when the server begins to shut down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Flushes and closes the store (after the sockets are closed).
    pub async fn close_store(&self) {
        self.store.close().await;
    }
}
