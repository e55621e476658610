//! Reads that connects arriving together each make, gathered into one
//! store call: the first catch-up page of each connecting user, the files
//! waiting for each. One batch of a kind is with the store at a time; a
//! read waits for the batch in flight, and the first in line then sends
//! every read waiting (its own among them, unless [`MOST`] are ahead of
//! it). So a lone connect costs one store call as before, and a reconnect
//! storm of N sockets (a node's share of a dead node's users) about N/[`MOST`]
//! plus one, holding one of the store's connections at a time per kind:
//! the others stay free for the live notifications of everyone else.

use std::future::Future;

use parking_lot::Mutex;
use tokio::sync::oneshot::{self, error::TryRecvError};

use crate::store::StoreError;

/// Most reads in one store call.
pub const MOST: usize = 256;

/// A read waiting: its key and where its answer goes.
type Waiting<K, V> = (K, oneshot::Sender<Result<V, StoreError>>);

/// The reads of one kind.
pub struct Gather<K, V> {
    /// Reads not yet sent to the store.
    waiting: Mutex<Vec<Waiting<K, V>>>,
    /// Held while a batch is with the store.
    flight: tokio::sync::Mutex<()>,
}

impl<K, V> Default for Gather<K, V> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(Vec::new()),
            flight: tokio::sync::Mutex::new(()),
        }
    }
}

impl<K: Clone, V> Gather<K, V> {
    /// The answer for `key`, read with whatever else waits: `read` gets
    /// the keys of a batch and answers each, in their order (a short
    /// answer fails the batch's reads).
    pub async fn read<F, Fut>(&self, key: K, read: F) -> Result<V, StoreError>
    where
        F: Fn(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<V>, StoreError>>,
    {
        loop {
            let (tx, mut rx) = oneshot::channel();
            self.waiting.lock().push((key.clone(), tx));
            let _flight = self.flight.lock().await;
            loop {
                match rx.try_recv() {
                    Ok(answer) => return answer,
                    // The read that took it went away mid-call (its
                    // connect closed): asked again.
                    Err(TryRecvError::Closed) => break,
                    Err(TryRecvError::Empty) => {}
                }
                let batch: Vec<Waiting<K, V>> = {
                    let mut waiting = self.waiting.lock();
                    let n = waiting.len().min(MOST);
                    waiting.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                let keys = batch.iter().map(|(k, _)| k.clone()).collect();
                let n = batch.len();
                match read(keys).await {
                    Ok(answers) if answers.len() == n => {
                        for ((_, tx), answer) in batch.into_iter().zip(answers) {
                            let _ = tx.send(Ok(answer));
                        }
                    }
                    Ok(_) => {
                        let short =
                            StoreError::Unavailable("the store answered a batch short".into());
                        for (_, tx) in batch {
                            let _ = tx.send(Err(short.clone()));
                        }
                    }
                    Err(e) => {
                        for (_, tx) in batch {
                            let _ = tx.send(Err(e.clone()));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn reads_arriving_together_share_a_few_calls_and_each_gets_its_own_answer() {
        let gather = Arc::new(Gather::<u32, u32>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let reads = (0..1000u32).map(|k| {
            let (gather, calls) = (gather.clone(), calls.clone());
            async move {
                gather
                    .read(k, |keys: Vec<u32>| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        async move {
                            tokio::task::yield_now().await;
                            Ok(keys.iter().map(|k| k * 2).collect())
                        }
                    })
                    .await
            }
        });
        let answers = futures::future::join_all(reads).await;
        for (k, a) in answers.into_iter().enumerate() {
            assert_eq!(a.unwrap(), 2 * k as u32);
        }
        let calls = calls.load(Ordering::SeqCst);
        assert!(
            calls <= 1000 / MOST + 3,
            "{calls} store calls for 1,000 reads"
        );
    }

    #[tokio::test]
    async fn a_failed_or_short_call_fails_its_batch_and_the_next_read_goes_on() {
        let gather = Gather::<u32, u32>::default();
        let failed = gather
            .read(1, |_| async { Err(StoreError::Unavailable("down".into())) })
            .await;
        assert!(matches!(failed, Err(StoreError::Unavailable(_))));
        let short = gather.read(2, |_| async { Ok(vec![]) }).await;
        assert!(matches!(short, Err(StoreError::Unavailable(_))));
        assert_eq!(gather.read(3, |_| async { Ok(vec![7]) }).await.unwrap(), 7);
    }
}
