//! The scoreboard shared by every simulated client and the scenario driving
//! them: connection counts, fan-out rounds, notification deliveries and acks,
//! study-room frames, latencies, the scenario's orders and the stop
//! signal. The generator runs on one thread, so the atomics and mutexes
//! here are never contended.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::order::Order;

/// Receipts of one fan-out round (one event sent through the API).
#[derive(Default)]
pub struct Round {
    pub received: AtomicUsize,
    pub last_ns: AtomicU64,
}

/// What the clients heard of their study room (the `room` scenario).
#[derive(Default)]
pub struct RoomFrames {
    /// `room_presence` frames, all sockets.
    pub presence: AtomicUsize,
    /// The most `room_presence` frames one socket has had.
    pub presence_most: AtomicUsize,
    /// When the last `room_presence` arrived (ns, the generator's clock).
    pub presence_last_ns: AtomicU64,
    /// How many members a full room has: a socket whose `room_presence`
    /// lists that many counts once in `presence_full`.
    pub want_members: AtomicUsize,
    pub presence_full: AtomicUsize,
    /// `typing` frames with `isTyping: true` and `false`.
    pub typing_true: AtomicUsize,
    pub typing_false: AtomicUsize,
}

pub struct Board {
    pub connected: AtomicUsize,
    pub failed: AtomicUsize,
    pub closed: AtomicUsize,
    pub notifications: AtomicUsize,
    pub acks_ok: AtomicUsize,
    pub acks_refused: AtomicUsize,
    /// Engine.IO pings answered (every transport).
    pub pings: AtomicUsize,
    /// Events the clients emitted on the scenario's orders.
    pub emitted: AtomicUsize,
    pub rounds: Vec<Round>,
    pub room: RoomFrames,
    /// End-to-end latencies (ns) of every delivery that carried a `t`.
    pub latencies: Mutex<Vec<u64>>,
    first_error: Mutex<Option<String>>,
    progress: Notify,
    orders_tx: watch::Sender<Order>,
    stop_tx: watch::Sender<bool>,
}

impl Board {
    pub fn new(rounds: usize) -> Self {
        Board {
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            notifications: AtomicUsize::new(0),
            acks_ok: AtomicUsize::new(0),
            acks_refused: AtomicUsize::new(0),
            pings: AtomicUsize::new(0),
            emitted: AtomicUsize::new(0),
            rounds: (0..rounds).map(|_| Round::default()).collect(),
            room: RoomFrames::default(),
            latencies: Mutex::new(Vec::new()),
            first_error: Mutex::new(None),
            progress: Notify::new(),
            orders_tx: watch::channel(Order::Nothing).0,
            stop_tx: watch::channel(false).0,
        }
    }

    pub fn bump(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Relaxed);
        self.progress.notify_waiters();
    }

    /// A client that could not start.
    pub fn fail(&self, message: String) {
        self.error(message);
        self.bump(&self.failed);
    }

    /// A client's connection ended: closed after connecting, or failed before.
    pub fn finished(&self, connected: bool) {
        self.bump(if connected {
            &self.closed
        } else {
            &self.failed
        });
    }

    pub fn error(&self, message: impl Into<String>) {
        let mut first = self.first_error.lock().unwrap();
        if first.is_none() {
            *first = Some(message.into());
        }
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().unwrap().clone()
    }

    pub fn latency(&self, sent_ns: u64, now_ns: u64) {
        self.latencies
            .lock()
            .unwrap()
            .push(now_ns.saturating_sub(sent_ns));
    }

    /// A fan-out event of round `r` reached one client at `now_ns`.
    pub fn round_receipt(&self, r: usize, sent_ns: u64, now_ns: u64) {
        if let Some(round) = self.rounds.get(r) {
            round.last_ns.fetch_max(now_ns, Relaxed);
            self.latency(sent_ns, now_ns);
            self.bump(&round.received);
        }
    }

    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Relaxed)
    }

    /// Waits until `done()` holds; false when `timeout` passed first.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done() {
                return true;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return done();
            }
        }
    }

    /// What the scenario tells the clients to send, as each reads it.
    pub fn orders(&self) -> watch::Receiver<Order> {
        self.orders_tx.subscribe()
    }

    /// Tells every websocket client to send as `order` says from now on.
    pub fn order(&self, order: Order) {
        let _ = self.orders_tx.send(order);
    }

    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }

    /// Tells every client task to close its connection.
    pub fn stop_all(&self) {
        let _ = self.stop_tx.send(true);
    }
}
