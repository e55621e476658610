//! Keeps one socket's `webrtc_signal`s, `typing`s, `join_room`s and
//! `leave_room`s in the order the client sent them. Socket.IO hands each
//! event to its own task, so two events of one socket may overtake each
//! other; a browser that gets an ICE candidate before the offer it belongs
//! to fails to add it, a `typing false` that overtakes the `true` before it
//! leaves the room told the user is typing, and a typing that overtakes
//! the join before it is refused. Each such event takes a ticket as it is
//! received and acts when the ones before it are done.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

#[derive(Debug)]
pub struct Lane {
    next: AtomicU64,
    serving: watch::Sender<u64>,
}

impl Default for Lane {
    fn default() -> Self {
        Self {
            next: AtomicU64::new(0),
            serving: watch::Sender::new(0),
        }
    }
}

/// A signal's place in its socket's lane: the next one goes when this is
/// dropped.
#[derive(Debug)]
pub struct Turn(Arc<Lane>);

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.serving.send_modify(|s| *s += 1);
    }
}

impl Lane {
    /// Taken where the event is received, in the client's order.
    pub fn ticket(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits for `ticket`'s turn. Whatever the signal's task does next,
    /// it does with the turn held, so turns end in ticket order.
    pub async fn turn(self: &Arc<Self>, ticket: u64) -> Turn {
        let mut rx = self.serving.subscribe();
        // The sender lives in this lane, which the caller holds: the wait
        // cannot end without its turn.
        let _ = rx.wait_for(|s| *s == ticket).await;
        Turn(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn later_tickets_wait_for_earlier_ones() {
        let lane = Arc::new(Lane::default());
        let (a, b) = (lane.ticket(), lane.ticket());
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (l, o) = (lane.clone(), order.clone());
        let second = tokio::spawn(async move {
            let _t = l.turn(b).await;
            o.lock().push(b);
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(order.lock().is_empty(), "the second waits for the first");
        {
            let _t = lane.turn(a).await;
            order.lock().push(a);
        }
        second.await.unwrap();
        assert_eq!(*order.lock(), vec![0, 1]);
    }
}
