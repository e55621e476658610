//! Who each session belongs to: the user whose token first used its
//! `sessionId`. The durable record is the store's (it outlives restarts and
//! is shared by every node); this keeps the pairs already confirmed, so a
//! reconnecting tab costs no write.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::auth::{AuthError, Identity};
use crate::clock::Millis;
use crate::store::Store;

/// Confirmed pairs kept in memory; past this the memory starts over (the
/// store still answers for every session).
const REMEMBERED: usize = 100_000;

#[derive(Default)]
pub struct SessionOwners {
    confirmed: Mutex<HashMap<Arc<str>, Arc<str>>>,
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
                let owner = store
                    .claim_session(&identity.session_id, &identity.user_id, now)
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

    /// Forgets what was confirmed before a retention purge removed the
    /// store's records, so memory never outlives the durable answer.
    pub fn forget(&self) {
        self.confirmed.lock().clear();
    }
}
