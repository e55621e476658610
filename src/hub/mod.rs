//! The Hub: the one type the socket layer and the HTTP API talk to — the
//! old service's WebSocketService in Rust. It owns no transport; it combines
//! the store, the session clocks and the connection registry.

mod events;
mod lifecycle;
mod notify;
mod sessions;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use socketioxide::socket::Sid;
use socketioxide::SocketIo;
use tokio::sync::Notify;

pub use events::{check_event_name, RESERVED_EVENTS};
pub use lifecycle::RefreshError;
pub use notify::Delivery;
pub use sessions::SessionView;

use crate::auth::Verifier;
use crate::authenticated::Authenticated;
use crate::clock::{Millis, SharedClock};
use crate::config::Config;
use crate::connections::{Connections, Registry};
use crate::deadlines::Deadlines;
use crate::notification::InvalidNotification;
use crate::session::SessionClocks;
use crate::store::{Store, StoreError};

/// Rooms every authenticated socket joins.
pub fn user_room(user: &str) -> String {
    format!("user:{user}")
}
pub fn role_room(role: &str) -> String {
    format!("role:{role}")
}
pub const ALL_ROOM: &str = "herald:all";

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

pub struct Hub {
    pub config: Arc<Config>,
    pub clock: SharedClock,
    pub verifier: Verifier,
    pub store: Arc<dyn Store>,
    pub sessions: Arc<dyn SessionClocks>,
    pub connections: Arc<Connections>,
    /// Sockets authenticated, whose connect handler has not run yet.
    pub authenticated: Authenticated,
    pub registry: Arc<dyn Registry>,
    io: OnceLock<SocketIo>,
    tokens: Mutex<Deadlines<Sid>>,
    wake: Notify,
    /// The time the scheduler is sleeping until.
    next_wake: AtomicI64,
}

impl Hub {
    pub fn new(
        config: Arc<Config>,
        clock: SharedClock,
        store: Arc<dyn Store>,
        sessions: Arc<dyn SessionClocks>,
    ) -> Arc<Self> {
        let connections = Arc::new(Connections::default());
        Arc::new(Self {
            verifier: Verifier::new(&config.jwt, clock.clone()),
            config,
            clock,
            store,
            sessions,
            registry: connections.clone(),
            connections,
            authenticated: Authenticated::default(),
            io: OnceLock::new(),
            tokens: Mutex::new(Deadlines::default()),
            wake: Notify::new(),
            next_wake: AtomicI64::new(Millis::MAX),
        })
    }

    /// Gives the hub the Socket.IO server it broadcasts through.
    pub fn attach_io(&self, io: SocketIo) {
        let _ = self.io.set(io);
    }

    fn io(&self) -> Option<&SocketIo> {
        self.io.get()
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
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

    /// Runs every session and token deadline due now; returns the next one.
    pub async fn run_due(&self) -> Option<Millis> {
        let now = self.now();
        for event in self.sessions.due(now).await {
            self.on_session_event(event).await;
        }
        let expired = self.tokens.lock().pop_due(now);
        for sid in expired {
            self.on_token_expired(sid).await;
        }
        let token_next = self.tokens.lock().next();
        match (self.sessions.next_deadline().await, token_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The timer loop: one task for every session and token deadline.
    pub async fn run_scheduler(self: Arc<Self>) {
        loop {
            // While deadlines run, any new one must leave a wake-up behind.
            self.next_wake.store(Millis::MAX, Ordering::SeqCst);
            let next = self.run_due().await.unwrap_or(Millis::MAX);
            self.next_wake.store(next, Ordering::SeqCst);
            let wait = (next.saturating_sub(self.now())).clamp(0, 60_000) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Deletes what is past retention and forgets long-expired sessions.
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
        self.sessions.forget_expired_before(unacked).await;
    }

    /// Disconnects every socket cleanly (graceful shutdown).
    pub async fn shutdown_sockets(&self) {
        if let Some(io) = self.io() {
            io.close().await;
        }
    }
}
