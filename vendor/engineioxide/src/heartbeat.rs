//! The Engine.IO v4 heartbeat as a state machine over explicit instants, so
//! a websocket's own task can run it (no heartbeat task per socket) and it
//! is tested without sleeping.
//!
//! It keeps the schedule of `Socket::heartbeat_job_v4`: a ping when the
//! session opens, then one every `interval` on a fixed grid (a late pong
//! makes the next ping due at once, as tokio's `Interval` does by default),
//! and a timeout when no pong arrives within `timeout` of a ping.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    /// When the next ping is due.
    next_ping: Instant,
    /// When the pong of the last ping is overdue, while one is awaited.
    pong_due: Option<Instant>,
}

/// What to do when [`Heartbeat::deadline`] has passed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Send a ping now.
    Ping,
    /// The client did not answer the last ping in time.
    TimedOut,
}

impl Heartbeat {
    pub(crate) fn new(interval: Duration, timeout: Duration, now: Instant) -> Self {
        Self {
            interval,
            timeout,
            next_ping: now,
            pong_due: None,
        }
    }

    /// When [`Heartbeat::due`] must next be called.
    pub(crate) fn deadline(&self) -> Instant {
        self.pong_due.unwrap_or(self.next_ping)
    }

    /// The deadline has passed at `now`.
    pub(crate) fn due(&mut self, now: Instant) -> Due {
        if self.pong_due.is_some() {
            return Due::TimedOut;
        }
        self.next_ping += self.interval;
        self.pong_due = Some(now + self.timeout);
        Due::Ping
    }

    /// The client answered. A pong nobody waits for (some clients send one
    /// first, or twice) changes nothing.
    pub(crate) fn pong(&mut self) {
        self.pong_due = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(25);
    const TIMEOUT: Duration = Duration::from_secs(20);

    #[test]
    fn pings_at_once_then_every_interval_while_pongs_arrive() {
        let t0 = Instant::now();
        let mut beat = Heartbeat::new(INTERVAL, TIMEOUT, t0);
        assert_eq!(beat.deadline(), t0);
        assert_eq!(beat.due(t0), Due::Ping);
        assert_eq!(beat.deadline(), t0 + TIMEOUT, "waits for the pong");
        beat.pong();
        assert_eq!(beat.deadline(), t0 + INTERVAL);
        assert_eq!(beat.due(t0 + INTERVAL), Due::Ping);
        beat.pong();
        assert_eq!(beat.deadline(), t0 + 2 * INTERVAL);
    }

    #[test]
    fn times_out_without_a_pong() {
        let t0 = Instant::now();
        let mut beat = Heartbeat::new(INTERVAL, TIMEOUT, t0);
        beat.due(t0);
        assert_eq!(beat.due(t0 + TIMEOUT), Due::TimedOut);
    }

    #[test]
    fn an_early_or_repeated_pong_does_not_answer_the_next_ping() {
        let t0 = Instant::now();
        let mut beat = Heartbeat::new(INTERVAL, TIMEOUT, t0);
        beat.pong();
        beat.due(t0);
        beat.pong();
        beat.pong();
        beat.due(t0 + INTERVAL);
        assert_eq!(beat.due(t0 + INTERVAL + TIMEOUT), Due::TimedOut);
    }

    #[test]
    fn a_late_pong_keeps_the_grid() {
        let long_timeout = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut beat = Heartbeat::new(INTERVAL, long_timeout, t0);
        beat.due(t0);
        beat.pong(); // answered at t0 + 40 s, after the next ping was due
        assert_eq!(
            beat.deadline(),
            t0 + INTERVAL,
            "the next ping is due at once"
        );
        beat.due(t0 + Duration::from_secs(40));
        beat.pong();
        assert_eq!(beat.deadline(), t0 + 2 * INTERVAL);
    }
}
