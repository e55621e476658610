//! Who each session belongs to: the user whose token first used its
//! `sessionId`. The durable record is the store's (it outlives restarts and
//! is shared by every node); this keeps the pairs already confirmed, so a
//! reconnecting tab costs no write, and gathers the claims of connects
//! arriving together into one store write: a reconnect storm of N new
//! sessions (after a restart, this node's memory is empty) costs a few
//! writes, not N.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot::{self, error::TryRecvError};

use crate::auth::{AuthError, Identity};
use crate::clock::Millis;
use crate::store::Store;

/// Confirmed pairs kept in memory; past this the memory starts over (the
/// store still answers for every session).
const REMEMBERED: usize = 100_000;

/// Most claims in one store write.
const MAX_BATCH: usize = 512;

/// A claim waiting for the store: the session, its user, and where its
/// owner (or why there is none) goes.
type Waiting = (Arc<str>, Arc<str>, oneshot::Sender<Result<String, String>>);

#[derive(Default)]
pub struct SessionOwners {
    confirmed: Mutex<HashMap<Arc<str>, Arc<str>>>,
    /// Claims not yet sent to the store.
    waiting: Mutex<Vec<Waiting>>,
    /// Held while a batch of claims is with the store: claims arriving
    /// meanwhile wait, and the next holder sends them all at once.
    flight: tokio::sync::Mutex<()>,
}

impl SessionOwners {
    /// Refuses `identity` when its session belongs to another user,
    /// claiming the session for its user when it has no owner yet.
    pub async fn check(
        &self,
        store: &dyn Store,
        identity: &Identity,
        now: Millis,
    ) -> Result<(), AuthError> {
        let known = self.confirmed.lock().get(&identity.session_id).cloned();
        let owner = match known {
            Some(owner) => owner,
            None => {
                let owner = self
                    .claim(store, identity, now)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "could not look up a session's owner; the connection is refused");
                        AuthError::Failed("store_unavailable")
                    })?;
                let owner: Arc<str> = if *owner == *identity.user_id {
                    identity.user_id.clone()
                } else {
                    owner.into()
                };
                let mut confirmed = self.confirmed.lock();
                if confirmed.len() >= REMEMBERED {
                    confirmed.clear();
                }
                confirmed.insert(identity.session_id.clone(), owner.clone());
                owner
            }
        };
        if owner != identity.user_id {
            return Err(AuthError::Failed("session_owner_mismatch"));
        }
        Ok(())
    }

    /// The owner of `identity`'s session, claimed for its user if it has
    /// none, answered only once the store has made the claim durable. One
    /// batch is with the store at a time; each claim waits for the batch
    /// in flight, and the first in line then sends every claim waiting
    /// (its own among them, unless [`MAX_BATCH`] are ahead of it). So a
    /// claim costs one store write when alone, and N claims arriving
    /// together about two.
    async fn claim(
        &self,
        store: &dyn Store,
        identity: &Identity,
        now: Millis,
    ) -> Result<String, String> {
        loop {
            let (tx, mut rx) = oneshot::channel();
            self.waiting
                .lock()
                .push((identity.session_id.clone(), identity.user_id.clone(), tx));
            let _flight = self.flight.lock().await;
            loop {
                match rx.try_recv() {
                    Ok(answer) => return answer,
                    // The connect that sent it went away mid-write: the
                    // claim is sent again.
                    Err(TryRecvError::Closed) => break,
                    Err(TryRecvError::Empty) => {}
                }
                let batch: Vec<Waiting> = {
                    let mut waiting = self.waiting.lock();
                    let n = waiting.len().min(MAX_BATCH);
                    waiting.drain(..n).collect()
                };
                if batch.is_empty() {
                    break; // not answered and not waiting: sent again
                }
                let claims: Vec<(String, String)> = batch
                    .iter()
                    .map(|(s, u, _)| (s.to_string(), u.to_string()))
                    .collect();
                let answers = match store.claim_sessions(&claims, now).await {
                    Ok(owners) if owners.len() == batch.len() => {
                        owners.into_iter().map(Ok).collect()
                    }
                    Ok(_) => vec![Err("the store answered a claim short".to_string()); batch.len()],
                    Err(e) => vec![Err(e.to_string()); batch.len()],
                };
                for ((_, _, tx), answer) in batch.into_iter().zip(answers) {
                    let _ = tx.send(answer);
                }
            }
        }
    }

    /// Forgets what was confirmed before a retention purge removed the
    /// store's records, so memory never outlives the durable answer.
    pub fn forget(&self) {
        self.confirmed.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SessionRecords, SqliteStore};

    fn identity(session: &str, user: &str) -> Identity {
        Identity {
            user_id: Arc::from(user),
            session_id: Arc::from(session),
            role: Arc::from("r"),
            expires_at: 0,
            rooms: None,
        }
    }

    #[tokio::test]
    async fn claims_arriving_together_each_get_the_durable_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let owners = SessionOwners::default();
        let ids: Vec<Identity> = (0..300)
            .map(|i| identity(&format!("s{i}"), &format!("u{i}")))
            .collect();
        let checks = futures::future::join_all(ids.iter().map(|id| owners.check(&store, id, 5)));
        assert!(checks.await.iter().all(Result::is_ok));
        // Durable: the store, not only this memory, names each owner.
        assert_eq!(store.claim_session("s7", "mallory", 9).await.unwrap(), "u7");
        assert_eq!(
            store.claim_session("s299", "mallory", 9).await.unwrap(),
            "u299"
        );
    }

    #[tokio::test]
    async fn a_store_that_cannot_write_refuses_every_claim_waiting_and_remembers_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.close().await;
        let owners = SessionOwners::default();
        let ids: Vec<Identity> = (0..20)
            .map(|i| identity(&format!("s{i}"), &format!("u{i}")))
            .collect();
        let checks =
            futures::future::join_all(ids.iter().map(|id| owners.check(&store, id, 5))).await;
        for c in checks {
            assert_eq!(c, Err(AuthError::Failed("store_unavailable")));
        }
        // Nothing was taken for confirmed: with the store back, the claims
        // are made (and another user's token for one of them is refused).
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert!(owners.check(&store, &ids[3], 6).await.is_ok());
        let mallory = identity("s3", "mallory");
        assert_eq!(
            owners.check(&store, &mallory, 7).await,
            Err(AuthError::Failed("session_owner_mismatch"))
        );
    }

    #[tokio::test]
    async fn of_two_users_claiming_one_session_together_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let owners = SessionOwners::default();
        let (alice, mallory) = (identity("s", "alice"), identity("s", "mallory"));
        let (a, m) = futures::join!(
            owners.check(&store, &alice, 1),
            owners.check(&store, &mallory, 1)
        );
        assert!(a.is_ok() != m.is_ok(), "exactly one owner: {a:?} {m:?}");
        let (winner, other, refused) = if a.is_ok() {
            (&alice, &mallory, m)
        } else {
            (&mallory, &alice, a)
        };
        assert_eq!(refused, Err(AuthError::Failed("session_owner_mismatch")));
        // And a new node (an empty memory) hears the same from the store.
        let fresh = SessionOwners::default();
        assert!(fresh.check(&store, winner, 2).await.is_ok());
        assert!(fresh.check(&store, other, 2).await.is_err());
    }
}
