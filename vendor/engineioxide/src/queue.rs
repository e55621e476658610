//! A bounded single-consumer packet queue that holds no heap memory while it
//! is empty.
//!
//! It replaces `tokio::sync::mpsc` for the socket's internal buffer: tokio
//! allocates the channel's first block of 32 slots when the channel is made
//! (about 5.4 KiB for `PacketBuf` slots, plus a 512-byte cache-padded
//! channel header), so every idle socket held ~6 KiB it never used. Here the
//! packets live in a `VecDeque` that is allocated on the first send and
//! released whenever the consumer finds the queue empty and goes to sleep.
//!
//! The API mirrors the part of `mpsc` the crate uses (`try_send`,
//! `try_reserve` + `Permit::send`, `recv`, `poll_recv`, `try_recv`, `close`,
//! `is_closed`, `closed`), with tokio's error types. It also holds the
//! socket's volatile slot (the latest volatile packet, received after the
//! buffered ones), which was a tokio `watch` channel of its own (~0.5 KiB
//! per socket).
//!
//! A websocket can be attached as the queue's [`Direct`] connection: while
//! nothing is queued, a send is written to the connection at once, by the
//! sending thread, and the consumer is not woken at all.

use std::{
    collections::VecDeque,
    future::poll_fn,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

use tokio::sync::{
    Notify,
    mpsc::error::{TryRecvError, TrySendError},
};

/// Creates a queue that holds at most `capacity` items (sent or reserved).
pub(crate) fn queue<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "queue capacity must be positive");
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            reserved: 0,
            capacity,
            closed: false,
            volatile: None,
            rx_waker: None,
            direct: None,
        }),
        closed: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// A connection a queue writes to directly while nothing is queued ahead.
///
/// Both methods run under the queue's lock, so a send cannot slip past
/// items that are queued or being flushed.
pub(crate) trait Direct<T>: Send + Sync {
    /// Writes `item` now, unless earlier bytes still wait unsent (the item
    /// is then given back, to be queued). `Ok(true)` when part of it now
    /// waits unsent: the consumer must flush it once the connection can
    /// take more.
    fn offer(&self, item: T) -> Result<bool, T>;

    /// `Ready(true)` when bytes wait unsent and the connection can take
    /// more, `Ready(false)` when none wait; `Pending` while the connection
    /// cannot take more (`cx` is woken when it can).
    fn poll_unsent(&self, cx: &mut Context<'_>) -> Poll<bool>;

    /// Writes what waits unsent, then items taken with `next`.
    fn flush(&self, next: &mut dyn FnMut() -> Option<T>) -> std::io::Result<()>;
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Wakes `Sender::closed` waiters.
    closed: Notify,
}

struct State<T> {
    items: VecDeque<T>,
    /// Places held by permits not yet used.
    reserved: usize,
    capacity: usize,
    /// No more items are accepted (the receiver closed or was dropped).
    closed: bool,
    /// The latest volatile item: outside the bound, replaced by the next.
    /// Boxed: a socket's slot is nearly always empty, and a `PacketBuf`
    /// inline would cost every socket ~170 bytes.
    volatile: Option<Box<T>>,
    rx_waker: Option<Waker>,
    /// The connection written to directly while nothing is queued.
    direct: Option<Arc<dyn Direct<T>>>,
}

impl<T> State<T> {
    /// The next item: buffered ones first, then the volatile slot.
    fn pop(&mut self) -> Option<T> {
        self.items
            .pop_front()
            .or_else(|| self.volatile.take().map(|item| *item))
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.volatile.is_none()
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves the state consistent (every
        // critical section is a few field updates), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `item` to the direct connection when nothing is queued ahead
    /// of it, or else queues it; wakes the receiver when it has work.
    fn push(&self, mut state: MutexGuard<'_, State<T>>, item: T) {
        let item = match state.direct.as_deref() {
            Some(direct) if state.is_empty() => match direct.offer(item) {
                Ok(false) => return,
                Ok(true) => {
                    // Part of it waits unsent: the receiver flushes it.
                    let waker = state.rx_waker.take();
                    drop(state);
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    return;
                }
                Err(item) => item,
            },
            _ => item,
        };
        state.items.push_back(item);
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn close(&self) {
        let mut state = self.lock();
        if !state.closed {
            state.closed = true;
            drop(state);
            self.closed.notify_waiters();
        }
    }
}

/// The producing side of a [`queue`].
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item` now, or gives it back when the queue is full or closed.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let state = self.shared.lock();
        if state.closed {
            return Err(TrySendError::Closed(item));
        }
        if state.items.len() + state.reserved >= state.capacity {
            return Err(TrySendError::Full(item));
        }
        self.shared.push(state, item);
        Ok(())
    }

    /// Holds a place for one item, to be filled with [`Permit::send`].
    pub(crate) fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(TrySendError::Closed(()));
        }
        if state.items.len() + state.reserved >= state.capacity {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(Permit {
            shared: &self.shared,
        })
    }

    /// Puts `item` in the volatile slot, replacing one not yet received;
    /// false when the queue is closed.
    pub(crate) fn set_volatile(&self, item: T) -> bool {
        let mut state = self.shared.lock();
        if state.closed {
            return false;
        }
        state.volatile = Some(Box::new(item));
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Whether the queue accepts no more items.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Resolves once the queue is closed.
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.shared.closed.notified();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Sender")
            .field("len", &state.items.len())
            .field("reserved", &state.reserved)
            .field("closed", &state.closed)
            .finish()
    }
}

/// A place held in a [`queue`]; dropping it unused gives the place back.
pub(crate) struct Permit<'a, T> {
    shared: &'a Shared<T>,
}

impl<T> Permit<'_, T> {
    /// Queues `item` in the held place. The item is queued even if the
    /// queue was closed after the place was reserved, as with tokio's
    /// permits; the receiver may still drain it.
    pub(crate) fn send(self, item: T) {
        let shared = self.shared;
        std::mem::forget(self);
        let mut state = shared.lock();
        state.reserved -= 1;
        shared.push(state, item);
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        self.shared.lock().reserved -= 1;
    }
}

/// The consuming side of a [`queue`] (one consumer at a time).
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next item; `None` once the queue is closed and drained.
    #[cfg(any(test, feature = "__test_harness"))]
    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next item. When the queue is empty its buffer is
    /// released before the consumer sleeps, so an idle socket holds none.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.shared.lock();
        if let Some(item) = state.pop() {
            return Poll::Ready(Some(item));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        Self::park(&mut state, cx);
        Poll::Pending
    }

    /// Resolves when an item can be received (`true`) or the queue is
    /// closed and drained (`false`), without taking the item. With a
    /// direct connection, also when bytes wait unsent and it can take more
    /// (`true`: [`Receiver::flush_direct`] writes them).
    pub(crate) async fn ready(&mut self) -> bool {
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            if let Some(direct) = state.direct.as_deref() {
                match direct.poll_unsent(cx) {
                    Poll::Ready(false) => {}
                    // Unsent bytes go before any queued item.
                    unsent => return unsent,
                }
            }
            if !state.is_empty() {
                return Poll::Ready(true);
            }
            if state.closed {
                return Poll::Ready(false);
            }
            Self::park(&mut state, cx);
            Poll::Pending
        })
        .await
    }

    /// Releases the empty queue's buffer and registers the consumer's waker.
    fn park(state: &mut State<T>, cx: &mut Context<'_>) {
        if state.items.capacity() > 0 {
            state.items = VecDeque::new();
        }
        match &state.rx_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.rx_waker = Some(cx.waker().clone()),
        }
    }

    /// Attaches a direct connection (`Some`) or detaches it (`None`).
    pub(crate) fn set_direct(&mut self, direct: Option<Arc<dyn Direct<T>>>) {
        self.shared.lock().direct = direct;
    }

    /// A guard that detaches the direct connection when dropped, so the
    /// connection is released however its task ends.
    pub(crate) fn detach_on_drop(&self) -> DetachOnDrop<T> {
        DetachOnDrop {
            shared: self.shared.clone(),
        }
    }

    /// Lets the direct connection write what waits unsent and then the
    /// queued items, under the lock (no send slips past them). Without a
    /// direct connection, does nothing.
    pub(crate) fn flush_direct(&mut self) -> std::io::Result<()> {
        let mut state = self.shared.lock();
        let Some(direct) = state.direct.clone() else {
            return Ok(());
        };
        direct.flush(&mut || state.pop())
    }

    /// The next item if one is queued now.
    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.lock();
        match state.pop() {
            Some(item) => Ok(item),
            None if state.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Refuses every further item; those already queued can still be received.
    pub(crate) fn close(&mut self) {
        self.shared.close();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// Detaches a queue's direct connection when dropped.
pub(crate) struct DetachOnDrop<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Drop for DetachOnDrop<T> {
    fn drop(&mut self) {
        self.shared.lock().direct = None;
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Receiver")
            .field("len", &state.items.len())
            .field("closed", &state.closed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_no_buffer_until_a_send_and_after_draining() {
        let (tx, mut rx) = queue::<u32>(4);
        assert_eq!(tx.shared.lock().items.capacity(), 0);
        tx.try_send(1).unwrap();
        assert!(tx.shared.lock().items.capacity() > 0);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
        assert_eq!(tx.shared.lock().items.capacity(), 0);
    }

    #[test]
    fn full_counts_reserved_places_and_dropped_permits_give_them_back() {
        let (tx, mut rx) = queue::<u32>(2);
        tx.try_send(1).unwrap();
        let permit = tx.try_reserve().unwrap();
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
        assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
        drop(permit);
        tx.try_reserve().unwrap().send(3);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn close_refuses_sends_but_drains_what_was_queued() {
        let (tx, mut rx) = queue::<u32>(4);
        tx.try_send(1).unwrap();
        let permit = tx.try_reserve().unwrap();
        rx.close();
        assert!(tx.is_closed());
        assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
        permit.send(3);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn the_volatile_slot_keeps_the_latest_and_comes_after_buffered_items() {
        let (tx, mut rx) = queue::<u32>(1);
        tx.try_send(1).unwrap();
        assert!(tx.set_volatile(2));
        assert!(tx.set_volatile(3), "the slot is outside the bound");
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        rx.close();
        assert!(!tx.set_volatile(4));
    }

    #[tokio::test]
    async fn ready_waits_for_an_item_without_taking_it() {
        let (tx, mut rx) = queue::<u32>(4);
        let tx = Arc::new(tx);
        let sender = tx.clone();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            sender.try_send(5).unwrap();
        });
        assert!(rx.ready().await);
        assert_eq!(rx.try_recv(), Ok(5));
        rx.close();
        assert!(!rx.ready().await);
    }

    #[tokio::test]
    async fn recv_wakes_on_send_and_closed_resolves_on_drop() {
        let (tx, mut rx) = queue::<u32>(4);
        let tx = Arc::new(tx);
        let sender = tx.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            sender.try_send(7).unwrap();
        });
        assert_eq!(rx.recv().await, Some(7));
        task.await.unwrap();
        let waiter = tokio::spawn({
            let tx = tx.clone();
            async move { tx.closed().await }
        });
        drop(rx);
        waiter.await.unwrap();
        assert!(tx.is_closed());
    }
}
