//! A socket's live deliveries that met its full send buffer, kept in the
//! order they came and sent by one task per socket. While anything waits,
//! every later delivery queues behind it instead of trying the buffer on its
//! own, so a later critical notification can never overtake an earlier one.
//! Nothing is allocated until a socket's buffer is first found full.

use std::collections::VecDeque;

use parking_lot::Mutex;

/// What one try at the socket's buffer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrySend {
    Sent,
    /// The buffer is full: the item must wait.
    Full,
    /// The socket is gone.
    Closed,
}

/// What offering an item to the lane did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Sent,
    /// It waits in the lane; `start` when the caller must start the one
    /// task that sends what waits (nothing waited before).
    Queued {
        start: bool,
    },
    Closed,
}

/// The lane: `None` while nothing waits (and no sending task runs).
/// Boxed, so a socket that never stalls keeps one pointer here, not an
/// empty queue's four words.
#[derive(Debug)]
pub struct Lane<T> {
    #[allow(clippy::box_collection)] // on purpose, as said above
    waiting: Mutex<Option<Box<VecDeque<T>>>>,
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(None),
        }
    }
}

impl<T: Clone> Lane<T> {
    /// Sends `item` through `try_send` unless earlier items wait, in which
    /// case it waits behind them.
    pub fn offer(&self, item: T, try_send: impl FnOnce(&T) -> TrySend) -> Offered {
        let mut waiting = self.waiting.lock();
        if let Some(queue) = waiting.as_mut() {
            queue.push_back(item);
            return Offered::Queued { start: false };
        }
        match try_send(&item) {
            TrySend::Sent => Offered::Sent,
            TrySend::Closed => Offered::Closed,
            TrySend::Full => {
                *waiting = Some(Box::new(VecDeque::from([item])));
                Offered::Queued { start: true }
            }
        }
    }

    /// The oldest waiting item, for the sending task; `None` when nothing
    /// is left, which also ends the task's turn (the next full buffer
    /// starts a new one).
    pub fn next(&self) -> Option<T> {
        let mut waiting = self.waiting.lock();
        let front = waiting.as_ref().and_then(|q| q.front().cloned());
        if front.is_none() {
            *waiting = None;
        }
        front
    }

    /// The oldest waiting item was sent.
    pub fn sent(&self) {
        if let Some(queue) = self.waiting.lock().as_mut() {
            queue.pop_front();
        }
    }

    /// Gives up on everything waiting (the socket stayed stalled or went
    /// away) and returns it.
    pub fn abandon(&self) -> Vec<T> {
        self.waiting
            .lock()
            .take()
            .map(|q| q.into_iter().collect())
            .unwrap_or_default()
    }

    /// How many items wait.
    pub fn len(&self) -> usize {
        self.waiting.lock().as_ref().map_or(0, |q| q.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_buffer_sends_at_once_and_keeps_nothing() {
        let lane = Lane::default();
        assert_eq!(lane.offer(1, |_| TrySend::Sent), Offered::Sent);
        assert!(lane.waiting.lock().is_none());
        assert_eq!(lane.offer(2, |_| TrySend::Closed), Offered::Closed);
        assert!(lane.is_empty());
    }

    #[test]
    fn after_a_full_buffer_later_items_wait_behind_in_order() {
        let lane = Lane::default();
        assert_eq!(
            lane.offer(1, |_| TrySend::Full),
            Offered::Queued { start: true }
        );
        // The buffer may have room again, but 2 and 3 must not overtake 1.
        for i in [2, 3] {
            assert_eq!(
                lane.offer(i, |_| panic!("tried the buffer ahead of the queue")),
                Offered::Queued { start: false }
            );
        }
        let mut order = Vec::new();
        while let Some(i) = lane.next() {
            order.push(i);
            lane.sent();
            if i == 2 {
                // Arrives while the task sends: still behind.
                lane.offer(4, |_| panic!("overtook"));
            }
        }
        assert_eq!(order, [1, 2, 3, 4]);
        assert!(lane.waiting.lock().is_none(), "the task's turn ended");
        assert_eq!(lane.offer(5, |_| TrySend::Sent), Offered::Sent);
    }

    #[test]
    fn abandoning_returns_what_waited_and_reopens_the_lane() {
        let lane = Lane::default();
        lane.offer(1, |_| TrySend::Full);
        lane.offer(2, |_| TrySend::Sent);
        assert_eq!(lane.len(), 2);
        assert_eq!(lane.abandon(), [1, 2]);
        assert_eq!(
            lane.offer(3, |_| TrySend::Full),
            Offered::Queued { start: true }
        );
    }
}
