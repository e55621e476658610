//! How long the PostgreSQL store waits on the server: every call runs
//! under a deadline, so an unreachable or silent server answers
//! `Unavailable` within seconds instead of holding the request.

use std::future::Future;
use std::time::Duration;

use crate::store::StoreError;

/// How long a call waits for a connection, a new one included: an outage
/// answers within this, whether the server refuses or does not answer.
pub(super) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a call may take in all. A server that stops answering on an
/// open connection (a network partition) fails the call here instead of
/// holding the request until the operating system gives the connection up.
pub(super) const ANSWER_DEADLINE: Duration = Duration::from_secs(5);

/// How long a retention purge may take: it deletes in bulk, and nobody
/// waits on it but a timer.
pub(super) const PURGE_DEADLINE: Duration = Duration::from_secs(300);

/// How long the migrations may take, waiting for another node's included.
pub(super) const MIGRATE_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `work`, failing it as unavailable past `limit`.
pub(super) async fn with_deadline<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(format!(
            "PostgreSQL did not answer within {limit:?}"
        )))
    })
}
