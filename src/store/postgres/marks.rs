//! The PostgreSQL store's delivery marks and queued audit records: callers
//! queue them without waiting, and one background task writes what has
//! gathered, the marks and the records in one statement per flush, so a
//! burst of deliveries costs one round trip, not one per socket. Records
//! are queued unsealed in the order they were queued here, which is the
//! order the sealer gives them in the chain. One that finds the queue full
//! is set aside, in order, and joins a later flush (an audit record is
//! evidence, and a burst must not lose it: `herald_store_marks_spilled_total`
//! counts them); one that the database refuses through every retry is
//! logged with a count and counted in `herald_store_marks_dropped_total`.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::unsealed::{insert_unsealed, EntryColumns};
use crate::clock::Millis;
use crate::store::StoreError;
use crate::trail::Entry;

/// Marks and records queued and not yet taken by the task; past this they
/// are set aside (`Spill`) until the task has emptied the queue.
const QUEUE: usize = 4096;
#[cfg(test)]
pub(super) const QUEUE_FOR_TESTS: usize = QUEUE;

/// How long the first mark of a flush waits for others, so that the marks
/// of one notification's fan-out share a statement.
const LINGER: Duration = Duration::from_millis(20);

/// Most marks written by one statement (and records by one transaction);
/// more wait for the next flush.
const MOST_PER_FLUSH: usize = 1000;

/// Retries of a flush the database refused, before its marks are dropped.
const RETRIES: u32 = 3;

/// The wait before the first retry; it doubles with each one.
const BACKOFF: Duration = Duration::from_millis(100);

/// How long one flush may take before it counts as failed.
const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// How long an acknowledgement waits for the marks queued before it. In an
/// outage it goes on without them (it will most likely fail too), so a
/// failing database answers as fast as the pool does.
const SETTLE_WAIT: Duration = Duration::from_secs(1);

/// One recipient's first hand-over.
struct Mark {
    id: String,
    user: String,
    at: Millis,
}

enum Order {
    Mark(Mark),
    Record(Entry),
    /// Answered once the marks and records queued before it are written (or, the
    /// database failing, once their first attempt has failed).
    Settle(oneshot::Sender<()>),
    /// Write everything queued, then stop.
    Close,
}

#[derive(Default)]
struct Counts {
    /// Marks and records queued and neither written nor dropped yet.
    unsettled: AtomicUsize,
    /// Every mark and record dropped, for tests.
    dropped: AtomicU64,
}

/// Orders that found the queue full, oldest first. While it holds any,
/// new orders join it rather than the queue, so the task, which takes it
/// only once the queue is empty, sees every order in the order it came.
type Spill = Arc<parking_lot::Mutex<VecDeque<Order>>>;

impl Counts {
    fn dropped(&self, count: u64) {
        self.dropped.fetch_add(count, Ordering::Relaxed);
        crate::observe::prometheus::marks_dropped(count);
    }

    /// `count` marks or records are written or dropped.
    fn settled(&self, count: usize) {
        self.unsettled.fetch_sub(count, Ordering::SeqCst);
    }
}

pub struct Marks {
    orders: mpsc::Sender<Order>,
    spill: Spill,
    counts: Arc<Counts>,
    task: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Marks {
    /// Starts the task that writes marks and records through `pool`, and
    /// tells `sealing` after it commits records.
    pub fn start(pool: PgPool, sealing: Arc<Notify>) -> Self {
        let (orders, rx) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        let spill = Spill::default();
        let task = tokio::spawn(run(pool, sealing, rx, spill.clone(), counts.clone()));
        Self {
            orders,
            spill,
            counts,
            task: parking_lot::Mutex::new(Some(task)),
        }
    }

    pub fn queue(&self, id: &str, user: &str, at: Millis) {
        let mark = Mark {
            id: id.to_string(),
            user: user.to_string(),
            at,
        };
        self.send(Order::Mark(mark));
    }

    /// Queues an audit record, appended after those queued before it.
    pub fn record(&self, entry: Entry) {
        self.send(Order::Record(entry));
    }

    fn send(&self, order: Order) {
        // Counted before it is queued, so that `settle` never misses it.
        self.counts.unsettled.fetch_add(1, Ordering::SeqCst);
        let mut spill = self.spill.lock();
        if !spill.is_empty() {
            spill.push_back(order);
            crate::observe::prometheus::marks_spilled();
            return;
        }
        match self.orders.try_send(order) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(order)) => {
                spill.push_back(order);
                crate::observe::prometheus::marks_spilled();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counts.settled(1);
                self.counts.dropped(1);
                tracing::warn!(
                    count = 1,
                    "delivery mark or audit record dropped: it came after the store was closed"
                );
            }
        }
    }

    /// Waits (briefly) until the marks and records queued so far are
    /// written, so that an acknowledgement commits after those queued
    /// before it (and its records follow them in the chain).
    pub async fn settle(&self) {
        if self.counts.unsettled.load(Ordering::SeqCst) == 0 {
            return;
        }
        let (tx, rx) = oneshot::channel();
        let settled = async {
            // Behind what was set aside, when anything is.
            let queued = {
                let mut spill = self.spill.lock();
                if spill.is_empty() {
                    Some(Order::Settle(tx))
                } else {
                    spill.push_back(Order::Settle(tx));
                    None
                }
            };
            let sent = match queued {
                Some(order) => self.orders.send(order).await.is_ok(),
                None => true,
            };
            if sent {
                let _ = rx.await;
            }
        };
        if tokio::time::timeout(SETTLE_WAIT, settled).await.is_err() {
            tracing::debug!("went on without waiting for the delivery marks and records before it");
        }
    }

    /// Writes every queued mark and record, then stops the task.
    pub async fn close(&self) {
        let _ = self.orders.send(Order::Close).await;
        let task = self.task.lock().take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the delivery marks' and records' task failed");
            }
        }
    }

    /// How many marks and records were dropped so far.
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }
}

/// What the task holds between taking orders and writing.
#[derive(Default)]
struct Held {
    marks: Vec<Mark>,
    records: Vec<Entry>,
    waiting: Vec<oneshot::Sender<()>>,
    closing: bool,
}

impl Held {
    fn take(&mut self, order: Order, rx: &mut mpsc::Receiver<Order>) {
        match order {
            Order::Mark(m) => self.marks.push(m),
            Order::Record(e) => self.records.push(e),
            Order::Settle(w) => self.waiting.push(w),
            Order::Close => {
                self.closing = true;
                // No more orders; those already queued are still written.
                rx.close();
                while let Ok(order) = rx.try_recv() {
                    self.take(order, rx);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.nothing_to_write() && self.waiting.is_empty()
    }

    fn nothing_to_write(&self) -> bool {
        self.marks.is_empty() && self.records.is_empty()
    }

    /// True when what is held is written now, without lingering.
    fn due(&self) -> bool {
        self.closing
            || !self.waiting.is_empty()
            || self.marks.len() >= MOST_PER_FLUSH
            || self.records.len() >= MOST_PER_FLUSH
    }

    fn answer(&mut self) {
        for w in self.waiting.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Takes what was set aside once the queue is empty (it came after every
/// order in the queue), a flush's worth at a time.
fn take_spill(spill: &Spill, held: &mut Held, rx: &mut mpsc::Receiver<Order>) {
    if !rx.is_empty() {
        return;
    }
    let taken: Vec<Order> = {
        let mut spill = spill.lock();
        let n = spill.len().min(MOST_PER_FLUSH);
        spill.drain(..n).collect()
    };
    for order in taken {
        held.take(order, rx);
    }
}

async fn run(
    pool: PgPool,
    sealing: Arc<Notify>,
    mut rx: mpsc::Receiver<Order>,
    spill: Spill,
    counts: Arc<Counts>,
) {
    let mut held = Held::default();
    loop {
        take_spill(&spill, &mut held, &mut rx);
        if held.is_empty() {
            if held.closing {
                return;
            }
            match rx.recv().await {
                Some(order) => held.take(order, &mut rx),
                // The store is gone without closing: nothing more will come.
                None => return,
            }
        }
        let until = Instant::now() + LINGER;
        while !held.due() {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(order)) => held.take(order, &mut rx),
                Ok(None) => held.closing = true,
                Err(_) => break,
            }
        }
        flush(&pool, &sealing, &mut held, &mut rx, &counts).await;
    }
}

/// Writes what is held, retrying with backoff; answers whoever waits.
async fn flush(
    pool: &PgPool,
    sealing: &Notify,
    held: &mut Held,
    rx: &mut mpsc::Receiver<Order>,
    counts: &Counts,
) {
    let mut failures = 0;
    loop {
        if held.nothing_to_write() {
            held.answer();
            return;
        }
        let written = tokio::time::timeout(FLUSH_DEADLINE, write_held(pool, sealing, held, counts))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "no answer within {FLUSH_DEADLINE:?}"
                )))
            });
        let error = match written {
            Ok(()) => {
                held.answer();
                return;
            }
            Err(e) => e,
        };
        // Whoever waits goes on: the marks are not worth an
        // acknowledgement's delay while the database is failing.
        held.answer();
        failures += 1;
        let (marks, records) = (held.marks.len(), held.records.len());
        if failures > RETRIES {
            tracing::warn!(marks, records, error = %error, "delivery marks and audit records dropped: the store could not write them");
            counts.dropped((marks + records) as u64);
            counts.settled(marks + records);
            held.marks.clear();
            held.records.clear();
            return;
        }
        tracing::debug!(marks, records, error = %error, "could not write delivery marks or audit records; retrying");
        let until = Instant::now() + BACKOFF * 2u32.pow(failures - 1);
        // Back off, still taking orders: new marks and records join the retry.
        while !held.closing {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                order = rx.recv() => match order {
                    Some(order) => {
                        held.take(order, rx);
                        held.answer();
                    }
                    None => held.closing = true,
                },
            }
        }
        if held.closing {
            tokio::time::sleep_until(until).await;
        }
    }
}

/// Writes the held marks and records in one statement (so both or
/// neither); what is written is no longer held.
async fn write_held(
    pool: &PgPool,
    sealing: &Notify,
    held: &mut Held,
    counts: &Counts,
) -> Result<(), StoreError> {
    let records = EntryColumns::of(&held.records);
    write(pool, &held.marks, &records).await?;
    if !records.is_empty() {
        sealing.notify_one();
    }
    counts.settled(held.marks.len() + held.records.len());
    held.marks.clear();
    held.records.clear();
    Ok(())
}

/// One statement for every held mark and record; a recipient's first mark
/// stands, both among these and against one already stored.
async fn write(pool: &PgPool, marks: &[Mark], records: &EntryColumns) -> Result<(), StoreError> {
    let mut seen = HashSet::with_capacity(marks.len());
    let (mut ids, mut users, mut times) = (Vec::new(), Vec::new(), Vec::new());
    for m in marks {
        if seen.insert((m.id.as_str(), m.user.as_str())) {
            ids.push(m.id.as_str());
            users.push(m.user.as_str());
            times.push(m.at);
        }
    }
    let statement = format!(
        "WITH marked AS (UPDATE recipients r SET delivered_at = m.at \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS m(notification_id, user_id, at) \
         WHERE r.notification_id = m.notification_id AND r.user_id = m.user_id \
         AND r.delivered_at IS NULL) {}",
        insert_unsealed(4)
    );
    let marks = sqlx::query(&statement).bind(&ids).bind(&users).bind(&times);
    records.bind(marks).execute(pool).await?;
    Ok(())
}
