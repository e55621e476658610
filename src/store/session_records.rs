//! The session records a store keeps: which sessions expired (their tokens
//! are refused) and which user owns each session.

use async_trait::async_trait;

use super::StoreError;
use crate::clock::Millis;

/// Expired sessions and the owner of each session.
#[async_trait]
pub trait SessionRecords: Send + Sync + 'static {
    /// Records that `session` has expired; its tokens are refused from now on.
    async fn expire_session(&self, session: &str, user: &str, at: Millis)
        -> Result<(), StoreError>;

    /// Makes `user` the owner of `session` unless it already has one, and
    /// answers the owner: the user whose token first used the session.
    /// Kept as long as expired-session records (the unacknowledged
    /// retention, counted from the first use).
    async fn claim_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<String, StoreError> {
        let claims = [(session.to_string(), user.to_string())];
        let mut owners = self.claim_sessions(&claims, at).await?;
        owners
            .pop()
            .ok_or_else(|| StoreError::Unavailable("no owner answered for a claim".into()))
    }

    /// [`SessionRecords::claim_session`] for each `(session, user)`, in one
    /// durable write: the owners, in the order of `claims`. Of two claims
    /// of one new session in the same call, the first stands.
    async fn claim_sessions(
        &self,
        claims: &[(String, String)],
        at: Millis,
    ) -> Result<Vec<String>, StoreError>;

    /// Every session expired at or after `since`.
    async fn expired_sessions(&self, since: Millis) -> Result<Vec<String>, StoreError>;
}
