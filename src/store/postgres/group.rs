//! Group commit for the PostgreSQL store, as the SQLite writer does it:
//! calls of one kind (new notifications, first acknowledgements) wait in a
//! bounded queue, and a few workers each take every call waiting and run
//! them together, in one statement, one transaction and one commit. Each
//! caller still gets its own answer, after that commit. A batch that fails
//! (a deadlock between nodes, a value one call brought) runs its calls one
//! by one, so one bad call never fails the others.
//!
//! The queue is also the store's admission control: a call that finds it
//! full, or that waited in it longer than [`MOST_QUEUE_WAIT`], is answered
//! `Unavailable` (the API's 503 with Retry-After) instead of waiting behind
//! work the database cannot finish within the caller's deadline; a call
//! whose caller gave up is dropped before it runs. Each kind has its own queue and workers, so acknowledgements never
//! wait behind a burst of new notifications.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::clock::{Millis, SharedClock};

use crate::store::StoreError;

/// Most calls one batch runs together.
const MOST_PER_BATCH: usize = 256;
#[cfg(test)]
pub(super) const MOST_PER_BATCH_FOR_TESTS: usize = MOST_PER_BATCH;

/// The longest a call waits in the queue before a worker takes it; past
/// this the store is saturated, and the call is refused rather than run
/// close to (or past) its caller's deadline.
pub(super) const MOST_QUEUE_WAIT: Millis = 1_000;

/// What a kind of call does alone and together.
#[async_trait]
pub(super) trait Together: Send + Sync + 'static {
    type Call: Send + Sync + 'static;
    type Answer: Send + 'static;

    /// Runs `calls` in one transaction: every call's answer, in order, or
    /// None for a call the batch left to [`Together::alone`] (it is run
    /// after the batch's commit). An error means nothing was committed; an
    /// answer that is an error, that the call's part was committed but
    /// what it answers could not be read.
    async fn together(
        &self,
        calls: &[Self::Call],
    ) -> Result<Vec<Option<Result<Self::Answer, StoreError>>>, StoreError>;

    /// Runs one call by itself.
    async fn alone(&self, call: &Self::Call) -> Result<Self::Answer, StoreError>;
}

/// A call waiting, and its caller.
struct Waiting<T: Together> {
    call: T::Call,
    /// When it was queued, by the group's clock.
    since: Millis,
    reply: oneshot::Sender<Result<T::Answer, StoreError>>,
}

type Queue<T> = Arc<Mutex<mpsc::Receiver<Waiting<T>>>>;

/// One kind's queue; its workers stop when it is dropped.
pub(super) struct Group<T: Together> {
    /// What the calls are, for the answer to one that finds the queue full.
    kind: &'static str,
    capacity: usize,
    queue: mpsc::Sender<Waiting<T>>,
    clock: SharedClock,
}

impl<T: Together> Group<T> {
    /// Starts `workers` workers running `runner`'s calls, with room for
    /// `capacity` calls waiting; `clock` times their waits.
    pub(super) fn start(
        kind: &'static str,
        runner: T,
        workers: usize,
        capacity: usize,
        clock: SharedClock,
    ) -> Self {
        let (queue, rx) = mpsc::channel(capacity);
        let rx: Queue<T> = Arc::new(Mutex::new(rx));
        let runner = Arc::new(runner);
        for _ in 0..workers {
            tokio::spawn(work(runner.clone(), rx.clone(), clock.clone()));
        }
        Self {
            kind,
            capacity,
            queue,
            clock,
        }
    }

    /// Runs `call` with whatever else is waiting, answering after its commit.
    pub(super) async fn call(&self, call: T::Call) -> Result<T::Answer, StoreError> {
        let (reply, answer) = oneshot::channel();
        let since = self.clock.now_ms();
        match self.queue.try_send(Waiting { call, since, reply }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                crate::observe::prometheus::store_saturated();
                return Err(StoreError::Unavailable(format!(
                    "the store is saturated: {} {} already waiting",
                    self.capacity, self.kind
                )));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(StoreError::Unavailable("the store is closed".into()))
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the store is closed".into())))
    }
}

/// Takes every call waiting (up to a batch), runs them, answers them.
async fn work<T: Together>(runner: Arc<T>, queue: Queue<T>, clock: SharedClock) {
    loop {
        let batch = {
            let mut rx = queue.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MOST_PER_BATCH {
                match rx.try_recv() {
                    Ok(w) => batch.push(w),
                    Err(_) => break,
                }
            }
            batch
        };
        run(&*runner, batch, clock.now_ms()).await;
    }
}

/// The answer to a call that waited too long for a worker.
fn waited_too_long() -> StoreError {
    crate::observe::prometheus::store_saturated();
    StoreError::Unavailable(format!(
        "the store is saturated: waited {MOST_QUEUE_WAIT} ms for its turn"
    ))
}

async fn run<T: Together>(runner: &T, batch: Vec<Waiting<T>>, now: Millis) {
    // A caller past its deadline was answered `Unavailable`: what it asked
    // must not be done behind its back.
    let (calls, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .filter(|w| !w.reply.is_closed())
        .filter_map(|w| {
            if now - w.since > MOST_QUEUE_WAIT {
                let _ = w.reply.send(Err(waited_too_long()));
                return None;
            }
            Some((w.call, w.reply))
        })
        .unzip();
    if calls.is_empty() {
        return;
    }
    let answers = if calls.len() == 1 {
        vec![None]
    } else {
        match runner.together(&calls).await {
            Ok(answers) => answers,
            Err(e) => {
                tracing::debug!(calls = calls.len(), error = %e, "a batch failed; running its calls one by one");
                calls.iter().map(|_| None).collect()
            }
        }
    };
    for ((call, reply), answer) in calls.iter().zip(replies).zip(answers) {
        let answer = match answer {
            Some(answer) => answer,
            None => runner.alone(call).await,
        };
        let _ = reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::Semaphore;

    use super::*;
    use crate::clock::{ManualClock, SystemClock};

    fn start(runner: Arc<Doubling>, capacity: usize) -> Group<Arc<Doubling>> {
        Group::start("numbers", runner, 1, capacity, Arc::new(SystemClock))
    }

    /// Doubles numbers; refuses 13, together and alone; each batch and each
    /// lone call first takes a permit of `gate`, so a test holds the
    /// workers busy until it adds permits.
    struct Doubling {
        gate: Semaphore,
    }

    fn held() -> Arc<Doubling> {
        Arc::new(Doubling {
            gate: Semaphore::new(0),
        })
    }

    fn open() -> Arc<Doubling> {
        Arc::new(Doubling {
            gate: Semaphore::new(Semaphore::MAX_PERMITS),
        })
    }

    #[async_trait]
    impl Together for Arc<Doubling> {
        type Call = u32;
        type Answer = u32;

        async fn together(
            &self,
            calls: &[u32],
        ) -> Result<Vec<Option<Result<u32, StoreError>>>, StoreError> {
            self.gate.acquire().await.expect("gate").forget();
            if calls.contains(&13) {
                return Err(StoreError::Unavailable("13".into()));
            }
            // Odd numbers are left to run alone.
            Ok(calls
                .iter()
                .map(|c| (c % 2 == 0).then_some(Ok(c * 2)))
                .collect())
        }

        async fn alone(&self, call: &u32) -> Result<u32, StoreError> {
            self.gate.acquire().await.expect("gate").forget();
            if *call == 13 {
                return Err(StoreError::Unavailable("13".into()));
            }
            Ok(call * 2)
        }
    }

    type Answers = Vec<tokio::task::JoinHandle<Result<u32, StoreError>>>;

    /// Sends `calls` while the worker is held, so they gather into batches.
    async fn send(group: &Arc<Group<Arc<Doubling>>>, calls: &[u32]) -> Answers {
        let mut answers = Vec::new();
        for &c in calls {
            let group = group.clone();
            answers.push(tokio::spawn(async move { group.call(c).await }));
            tokio::task::yield_now().await;
        }
        answers
    }

    async fn answers(runner: &Doubling, answers: Answers) -> Vec<Result<u32, StoreError>> {
        runner.gate.add_permits(1000);
        let mut out = Vec::new();
        for a in answers {
            out.push(a.await.expect("the call's task"));
        }
        out
    }

    /// Sends even numbers from 0 until the queue is full.
    async fn fill(group: &Arc<Group<Arc<Doubling>>>) -> Answers {
        let mut accepted = Vec::new();
        while group.queue.capacity() > 0 {
            assert!(accepted.len() < 1000, "the queue never filled");
            let c = 2 * accepted.len() as u32;
            accepted.extend(send(group, &[c]).await);
        }
        accepted
    }

    #[tokio::test]
    async fn every_caller_gets_its_own_answer_from_a_batch() {
        let runner = held();
        let group = Arc::new(start(runner.clone(), 64));
        let sent = send(&group, &[1, 2, 4, 6, 7]).await;
        let got: Vec<u32> = answers(&runner, sent)
            .await
            .into_iter()
            .map(|a| a.expect("answered"))
            .collect();
        assert_eq!(got, vec![2, 4, 8, 12, 14]);
    }

    #[tokio::test]
    async fn a_failed_batch_fails_only_the_call_that_broke_it() {
        let runner = held();
        let group = Arc::new(start(runner.clone(), 64));
        let sent = send(&group, &[1, 2, 13, 4, 6]).await;
        let got = answers(&runner, sent).await;
        assert_eq!(got[0].as_ref().ok(), Some(&2));
        assert_eq!(got[1].as_ref().ok(), Some(&4));
        assert!(got[2].is_err(), "13 fails alone too");
        assert_eq!(got[3].as_ref().ok(), Some(&8));
        assert_eq!(got[4].as_ref().ok(), Some(&12));
    }

    #[tokio::test]
    async fn a_full_queue_answers_unavailable_at_once_and_loses_no_accepted_call() {
        let runner = held();
        let group = Arc::new(start(runner.clone(), 4));
        // The worker holds what it took; the queue behind it fills up.
        let accepted = fill(&group).await;
        let refused = match group.call(1000).await {
            Err(StoreError::Unavailable(why)) => why,
            other => panic!("expected Unavailable, got {other:?}"),
        };
        assert!(refused.contains("saturated"), "{refused}");
        // Every call accepted is still answered, with its own result.
        let n = accepted.len() as u32;
        let got: Vec<u32> = answers(&runner, accepted)
            .await
            .into_iter()
            .map(|a| a.expect("answered"))
            .collect();
        assert_eq!(got, (0..n).map(|i| 4 * i).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_call_that_waited_too_long_is_refused_not_run() {
        let runner = held();
        let clock = Arc::new(ManualClock::new(0));
        let group = Arc::new(Group::start(
            "numbers",
            runner.clone(),
            1,
            64,
            clock.clone(),
        ));
        // The first call holds the worker; the second waits in the queue.
        let sent = send(&group, &[2]).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let waiting = send(&group, &[4]).await;
        clock.advance(MOST_QUEUE_WAIT + 1);
        let got = answers(&runner, sent.into_iter().chain(waiting).collect()).await;
        assert_eq!(got[0].as_ref().ok(), Some(&4), "the call taken runs");
        match &got[1] {
            Err(StoreError::Unavailable(why)) => assert!(why.contains("saturated"), "{why}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn one_kind_saturated_does_not_hold_another() {
        let busy = held();
        let inserts = Arc::new(start(busy.clone(), 2));
        fill(&inserts).await;
        let refused = inserts.call(1000).await.is_err();
        assert!(refused, "the inserts' queue is full");
        let acks = start(open(), 2);
        assert_eq!(acks.call(21).await.ok(), Some(42));
    }
}
