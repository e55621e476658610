//! A socket's live deliveries that met its full send buffer, kept in the
//! order they came and sent by one task per socket. While anything waits,
//! every later delivery queues behind it instead of trying the buffer on its
//! own, so a later critical notification can never overtake an earlier one.
//! Nothing is allocated until a socket's buffer is first found full. What
//! waits is bounded in bytes: past the bound the socket is too slow to
//! serve and the caller drops it.
//!
//! A lane starts *held* while its socket connects: from its authentication
//! until it has been told `connected` and is attached, nothing may try its
//! buffer, so what is delivered to it meanwhile waits here (within the same
//! bound) and goes out right after `connected`, before anything later
//! ([`Lane::open`]).

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
    /// It waits in a held lane, for [`Lane::open`].
    Held,
    Closed,
    /// Waiting would pass the byte bound: nothing was queued.
    Overflow {
        waiting: usize,
    },
}

/// The lane: `None` while nothing waits (and no sending task runs).
/// Boxed, so a socket that never stalls keeps one pointer here, not an
/// empty queue's four words.
#[derive(Debug)]
pub struct Lane<T> {
    waiting: Mutex<Option<Box<Waiting<T>>>>,
}

/// The items waiting, each with its size, and their sum.
#[derive(Debug)]
struct Waiting<T> {
    queue: VecDeque<(T, usize)>,
    bytes: usize,
    /// Held until [`Lane::open`]: nothing tries the buffer, no task sends.
    held: bool,
}

impl<T> Waiting<T> {
    fn boxed(held: bool) -> Box<Self> {
        Box::new(Self {
            queue: VecDeque::new(),
            bytes: 0,
            held,
        })
    }
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(None),
        }
    }
}

impl<T: Clone> Lane<T> {
    /// A held lane: everything offered waits until [`Lane::open`] (a
    /// connecting socket's, until it has been told `connected`). The one
    /// allocation is freed when it opens with nothing held.
    pub fn held() -> Self {
        Self {
            waiting: Mutex::new(Some(Waiting::boxed(true))),
        }
    }

    /// Sends `item` through `try_send` unless earlier items wait, in which
    /// case it waits behind them, as long as what waits stays within
    /// `bound` bytes (`size(&item)` is asked only when it must wait). In a
    /// held lane it always waits ([`Offered::Held`]).
    pub fn offer(
        &self,
        item: T,
        bound: usize,
        size: impl FnOnce(&T) -> usize,
        try_send: impl FnOnce(&T) -> TrySend,
    ) -> Offered {
        let mut waiting = self.waiting.lock();
        // No sending task runs: this one starts it if it must wait.
        let start = waiting.is_none();
        if start {
            match try_send(&item) {
                TrySend::Sent => return Offered::Sent,
                TrySend::Closed => return Offered::Closed,
                TrySend::Full => {}
            }
        }
        let size = size(&item);
        let w = waiting.get_or_insert_with(|| Waiting::boxed(false));
        if w.bytes + size > bound {
            let waiting_bytes = w.bytes;
            if start {
                *waiting = None;
            }
            return Offered::Overflow {
                waiting: waiting_bytes + size,
            };
        }
        w.bytes += size;
        w.queue.push_back((item, size));
        if w.held {
            return Offered::Held;
        }
        Offered::Queued { start }
    }

    /// Ends the hold: the buffer may be tried from now on. Returns how
    /// many items were held; when some were, the caller has the sending
    /// turn and sends them with [`Lane::next`] and [`Lane::sent`] (and
    /// whatever queues behind them meanwhile), as the sending task does.
    /// Nothing for a lane that was not held.
    pub fn open(&self) -> usize {
        let mut waiting = self.waiting.lock();
        let Some(w) = waiting.as_mut().filter(|w| w.held) else {
            return 0;
        };
        w.held = false;
        let held = w.queue.len();
        if held == 0 {
            *waiting = None;
        }
        held
    }

    /// The oldest waiting item, for the sending task; `None` when nothing
    /// is left, which also ends the task's turn (the next full buffer
    /// starts a new one).
    pub fn next(&self) -> Option<T> {
        let mut waiting = self.waiting.lock();
        if waiting.as_ref().is_some_and(|w| w.held) {
            return None;
        }
        let front = waiting
            .as_ref()
            .and_then(|w| w.queue.front().map(|(item, _)| item.clone()));
        if front.is_none() {
            *waiting = None;
        }
        front
    }

    /// The oldest waiting item was sent.
    pub fn sent(&self) {
        if let Some(w) = self.waiting.lock().as_mut() {
            if let Some((_, size)) = w.queue.pop_front() {
                w.bytes -= size;
            }
        }
    }

    /// Gives up on everything waiting (the socket stayed stalled or went
    /// away) and returns it. A held lane stays held.
    pub fn abandon(&self) -> Vec<T> {
        let mut waiting = self.waiting.lock();
        let Some(w) = waiting.as_mut() else {
            return Vec::new();
        };
        let items = std::mem::take(&mut w.queue)
            .into_iter()
            .map(|(item, _)| item)
            .collect();
        w.bytes = 0;
        if !w.held {
            *waiting = None;
        }
        items
    }

    /// How many items wait.
    pub fn len(&self) -> usize {
        self.waiting.lock().as_ref().map_or(0, |w| w.queue.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: usize = 100;

    fn offer(lane: &Lane<i32>, i: i32, try_send: TrySend) -> Offered {
        lane.offer(i, BOUND, |_| 10, |_| try_send)
    }

    fn queued_behind(lane: &Lane<i32>, i: i32) -> Offered {
        lane.offer(
            i,
            BOUND,
            |_| 10,
            |_| panic!("tried the buffer ahead of the queue"),
        )
    }

    #[test]
    fn an_open_buffer_sends_at_once_and_keeps_nothing() {
        let lane = Lane::default();
        assert_eq!(offer(&lane, 1, TrySend::Sent), Offered::Sent);
        assert!(lane.waiting.lock().is_none());
        assert_eq!(offer(&lane, 2, TrySend::Closed), Offered::Closed);
        assert!(lane.is_empty());
    }

    #[test]
    fn after_a_full_buffer_later_items_wait_behind_in_order() {
        let lane = Lane::default();
        assert_eq!(
            offer(&lane, 1, TrySend::Full),
            Offered::Queued { start: true }
        );
        // The buffer may have room again, but 2 and 3 must not overtake 1.
        for i in [2, 3] {
            assert_eq!(queued_behind(&lane, i), Offered::Queued { start: false });
        }
        let mut order = Vec::new();
        while let Some(i) = lane.next() {
            order.push(i);
            lane.sent();
            if i == 3 {
                // Arrives after the task sent the last one but before it
                // looked again: still behind, and no second task.
                assert_eq!(queued_behind(&lane, 4), Offered::Queued { start: false });
            }
        }
        assert_eq!(order, [1, 2, 3, 4]);
        assert!(lane.waiting.lock().is_none(), "the task's turn ended");
        assert_eq!(offer(&lane, 5, TrySend::Sent), Offered::Sent);
    }

    #[test]
    fn abandoning_returns_what_waited_and_reopens_the_lane() {
        let lane = Lane::default();
        offer(&lane, 1, TrySend::Full);
        queued_behind(&lane, 2);
        assert_eq!(lane.len(), 2);
        assert_eq!(lane.abandon(), [1, 2]);
        assert_eq!(
            offer(&lane, 3, TrySend::Full),
            Offered::Queued { start: true }
        );
    }

    #[test]
    fn a_held_lane_never_tries_the_buffer_until_opened() {
        let lane = Lane::held();
        for i in [1, 2] {
            assert_eq!(
                lane.offer(i, BOUND, |_| 10, |_| panic!("tried a held lane")),
                Offered::Held
            );
        }
        assert_eq!(lane.next(), None, "no sending turn while held");
        assert_eq!(lane.abandon(), [1, 2]);
        assert_eq!(
            queued_behind_held(&lane, 3),
            Offered::Held,
            "still held after abandoning"
        );
        assert_eq!(queued_behind_held(&lane, 4), Offered::Held);
        // Opened: the caller has the turn for what was held, and what comes
        // meanwhile queues behind it.
        assert_eq!(lane.open(), 2);
        assert_eq!(queued_behind(&lane, 5), Offered::Queued { start: false });
        let mut order = Vec::new();
        while let Some(i) = lane.next() {
            order.push(i);
            lane.sent();
        }
        assert_eq!(order, [3, 4, 5]);
        assert_eq!(lane.open(), 0, "opening twice does nothing");
        assert_eq!(offer(&lane, 6, TrySend::Sent), Offered::Sent);
    }

    #[test]
    fn a_held_lane_opened_empty_keeps_nothing_and_holds_within_the_bound() {
        let lane = Lane::held();
        assert_eq!(lane.open(), 0);
        assert!(lane.waiting.lock().is_none());
        assert_eq!(offer(&lane, 1, TrySend::Sent), Offered::Sent);
        let lane = Lane::held();
        for i in 0..10 {
            assert_eq!(queued_behind_held(&lane, i), Offered::Held);
        }
        assert_eq!(
            queued_behind_held(&lane, 10),
            Offered::Overflow { waiting: 110 }
        );
        assert_eq!(lane.len(), 10);
    }

    fn queued_behind_held(lane: &Lane<i32>, i: i32) -> Offered {
        lane.offer(i, BOUND, |_| 10, |_| panic!("tried a held lane"))
    }

    #[test]
    fn what_waits_is_bounded_in_bytes() {
        let lane = Lane::default();
        offer(&lane, 0, TrySend::Full);
        for i in 1..10 {
            assert_eq!(queued_behind(&lane, i), Offered::Queued { start: false });
        }
        assert_eq!(queued_behind(&lane, 10), Offered::Overflow { waiting: 110 });
        assert_eq!(lane.len(), 10, "the refused item was not queued");
        // Sending frees its bytes.
        lane.next();
        lane.sent();
        assert_eq!(queued_behind(&lane, 11), Offered::Queued { start: false });
        // One item larger than the bound never waits.
        let empty = Lane::default();
        assert_eq!(
            empty.offer(1, BOUND, |_| 500, |_| TrySend::Full),
            Offered::Overflow { waiting: 500 }
        );
        assert!(empty.waiting.lock().is_none());
    }
}
