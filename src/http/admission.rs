//! Whether a new TCP connection is served: below `limits.max_connections`
//! open connections, fully; within a small reserve above it, for the health
//! checks only (an orchestrator must still see the node alive and whether it
//! is ready while a flood holds every other connection); past that, closed
//! at once, before a byte is read.
//!
//! Open connections are the HTTP connections hyper holds plus the sockets
//! connected to this node: a websocket leaves hyper when it upgrades, but
//! still holds its TCP connection (a polling socket is counted with the
//! connection of its open long-poll, about the two it really uses).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::observe::throttle::Throttle;

/// Connections served above the limit, for `/healthz` and `/readyz` only.
pub const HEALTH_RESERVE: usize = 32;

/// How often a refusal is logged at most (the metric counts every one).
const LOG_EVERY_MS: i64 = 10_000;

/// What to do with a new connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Serve every request.
    Serve(Ticket),
    /// Serve `/healthz` and `/readyz`; refuse anything else with 503.
    HealthOnly(Ticket),
    /// Close it now.
    Refuse,
}

/// One HTTP connection counted as open, until dropped.
#[derive(Debug)]
pub struct Ticket(Arc<AtomicUsize>);

impl PartialEq for Ticket {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Ticket {}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts open connections and decides on each new one.
#[derive(Clone)]
pub struct Admission {
    max: usize,
    http: Arc<AtomicUsize>,
    /// Connections hyper no longer holds: the connected sockets.
    others: Arc<dyn Fn() -> usize + Send + Sync>,
    clock: SharedClock,
    log: Arc<Throttle>,
}

impl Admission {
    pub fn new(
        max: usize,
        others: Arc<dyn Fn() -> usize + Send + Sync>,
        clock: SharedClock,
    ) -> Self {
        Self {
            max,
            http: Arc::new(AtomicUsize::new(0)),
            others,
            clock,
            log: Arc::new(Throttle::new(LOG_EVERY_MS)),
        }
    }

    /// Open connections now, the new one not included.
    pub fn open(&self) -> usize {
        self.http.load(Ordering::SeqCst) + (self.others)()
    }

    /// Decides on a new connection from `peer`.
    pub fn admit(&self, peer: std::net::SocketAddr) -> Admit {
        let open = self.open();
        if open >= self.max + HEALTH_RESERVE {
            crate::observe::prometheus::connection_refused("max_connections");
            self.log_refusal(open, peer);
            return Admit::Refuse;
        }
        self.http.fetch_add(1, Ordering::SeqCst);
        let ticket = Ticket(self.http.clone());
        if open >= self.max {
            crate::observe::prometheus::connection_refused("health_only");
            self.log_refusal(open, peer);
            Admit::HealthOnly(ticket)
        } else {
            Admit::Serve(ticket)
        }
    }

    fn log_refusal(&self, open: usize, peer: std::net::SocketAddr) {
        if let Some(unlogged) = self.log.allow(self.clock.now_ms()) {
            tracing::warn!(
                open,
                unlogged,
                max_connections = self.max,
                %peer,
                "too many open connections: new ones are refused (health checks excepted) \
                 until some close; raise limits.max_connections if this load is expected"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn admission(max: usize, sockets: usize) -> Admission {
        Admission::new(
            max,
            Arc::new(move || sockets),
            Arc::new(ManualClock::new(0)),
        )
    }

    fn peer() -> std::net::SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn serves_up_to_the_limit_then_health_checks_then_nothing() {
        let a = admission(20, 4);
        let served: Vec<_> = (0..16).map(|_| a.admit(peer())).collect();
        assert!(served.iter().all(|t| matches!(t, Admit::Serve(_))));
        assert_eq!(a.open(), 20, "sockets count as open connections");
        let health: Vec<_> = (0..HEALTH_RESERVE).map(|_| a.admit(peer())).collect();
        assert!(health.iter().all(|t| matches!(t, Admit::HealthOnly(_))));
        assert_eq!(a.admit(peer()), Admit::Refuse);
        assert_eq!(a.open(), 20 + HEALTH_RESERVE, "a refusal is not counted");
        drop(health);
        assert!(
            matches!(a.admit(peer()), Admit::HealthOnly(_)),
            "still at the limit"
        );
        drop(served);
        assert!(matches!(a.admit(peer()), Admit::Serve(_)), "room again");
    }
}
