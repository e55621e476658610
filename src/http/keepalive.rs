//! When an HTTP connection that is doing nothing is closed. A connection
//! whose first request has not arrived within `http.header_timeout` (a
//! client that trickles its headers, or sends none) is closed; so is a
//! keep-alive connection with no request in flight for `http.idle_timeout`.
//! A request being answered, such as an open long-poll, is not idle.
//!
//! hyper's own header timer is not used: it also runs while a keep-alive
//! connection waits for its next request, so it would close idle
//! connections after the header timeout rather than the idle one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What one connection is doing, shared by its service and its task.
pub struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    /// When the last request in flight ended, from `started`.
    idle_since: Mutex<Duration>,
    /// Told of every request's start and end: the deadline moved.
    changed: Notify,
}

/// One request in flight on a connection, until dropped.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        *a.idle_since.lock() = a.started.elapsed();
        a.in_flight.fetch_sub(1, Ordering::SeqCst);
        a.changed.notify_one();
    }
}

impl Activity {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since: Mutex::new(Duration::ZERO),
            changed: Notify::new(),
        }
    }

    /// Resolves when a request starts or ends after the last call.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// Marks a request (its headers are in) as in flight.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
        Busy(self.clone())
    }

    /// When the connection is due to close if nothing happens meanwhile;
    /// `None` while a request is in flight.
    pub fn deadline(&self, header_timeout: Duration, idle_timeout: Duration) -> Option<Instant> {
        let due = due(
            self.in_flight.load(Ordering::SeqCst),
            self.requests.load(Ordering::SeqCst),
            *self.idle_since.lock(),
            header_timeout,
            idle_timeout,
        )?;
        Some(self.started + due)
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// When a connection is due to close, counted from its start: after the
/// header timeout while no request ever arrived, one idle timeout after its
/// last request ended, and never while a request is in flight.
fn due(
    in_flight: usize,
    requests: u64,
    idle_since: Duration,
    header_timeout: Duration,
    idle_timeout: Duration,
) -> Option<Duration> {
    if in_flight > 0 {
        None
    } else if requests == 0 {
        Some(header_timeout)
    } else {
        Some(idle_since + idle_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);
    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_connection_without_a_request_gets_the_header_timeout() {
        assert_eq!(due(0, 0, s(0), HEADERS, IDLE), Some(s(10)));
    }

    #[test]
    fn a_request_in_flight_is_never_idle() {
        // An open long-poll, however long it has been open.
        assert_eq!(due(1, 1, s(0), HEADERS, IDLE), None);
        assert_eq!(due(2, 7, s(500), HEADERS, IDLE), None);
    }

    #[test]
    fn a_keep_alive_connection_closes_one_idle_timeout_after_its_last_request() {
        assert_eq!(due(0, 1, s(5), HEADERS, IDLE), Some(s(65)));
        assert_eq!(due(0, 9, s(300), HEADERS, IDLE), Some(s(360)));
    }

    #[test]
    fn the_activity_follows_its_requests() {
        let a = Arc::new(Activity::new());
        assert_eq!(a.deadline(HEADERS, IDLE), Some(a.started + HEADERS));
        let busy = a.begin();
        assert_eq!(a.deadline(HEADERS, IDLE), None);
        drop(busy);
        let idle_since = *a.idle_since.lock();
        assert_eq!(
            a.deadline(HEADERS, IDLE),
            Some(a.started + idle_since + IDLE)
        );
    }
}
