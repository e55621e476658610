//! A store that times every call and counts its failures for `/metrics`
//! (`herald_store_operation_seconds`, `herald_store_errors_total`), in front
//! of whichever engine runs: the engines stay free of metrics code.

use std::future::Future;
use std::time::Instant;

use async_trait::async_trait;

use super::{Acknowledged, Inserted, Store, StoreError, Unacknowledged, UserNotification};
use crate::clock::Millis;
use crate::notification::{Notification, Recipient, StateFilter};

pub struct Metered<S> {
    inner: S,
}

impl<S: Store> Metered<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

/// Runs `call`, recording how long it took and whether it failed.
async fn timed<T>(
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = call.await;
    crate::prometheus::store_call(operation, started.elapsed(), result.is_err());
    result
}

#[async_trait]
impl<S: Store> Store for Metered<S> {
    async fn insert(&self, n: &Notification, users: &[String]) -> Result<Inserted, StoreError> {
        timed("insert", self.inner.insert(n, users)).await
    }

    fn mark_delivered(&self, id: &str, user: &str, at: Millis) {
        // Queued, not awaited: nothing to time.
        self.inner.mark_delivered(id, user, at);
    }

    async fn acknowledge(
        &self,
        id: &str,
        user: &str,
        at: Millis,
    ) -> Result<Option<Acknowledged>, StoreError> {
        timed("acknowledge", self.inner.acknowledge(id, user, at)).await
    }

    async fn notification(
        &self,
        id: &str,
    ) -> Result<Option<(Notification, Vec<Recipient>)>, StoreError> {
        timed("read", self.inner.notification(id)).await
    }

    async fn user_notification(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<UserNotification>, StoreError> {
        timed("read", self.inner.user_notification(id, user)).await
    }

    async fn list(
        &self,
        user: &str,
        filter: StateFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<UserNotification>, StoreError> {
        timed("list", self.inner.list(user, filter, after, limit)).await
    }

    async fn purge(&self, acknowledged: Millis, unacknowledged: Millis) -> Result<u64, StoreError> {
        timed("purge", self.inner.purge(acknowledged, unacknowledged)).await
    }

    async fn unacknowledged(&self, limit: u32) -> Result<Unacknowledged, StoreError> {
        timed("unacknowledged", self.inner.unacknowledged(limit)).await
    }

    async fn claim_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<String, StoreError> {
        timed("claim_session", self.inner.claim_session(session, user, at)).await
    }

    async fn expire_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        timed(
            "expire_session",
            self.inner.expire_session(session, user, at),
        )
        .await
    }

    async fn expired_sessions(&self, since: Millis) -> Result<Vec<String>, StoreError> {
        timed("expired_sessions", self.inner.expired_sessions(since)).await
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        timed("pending_count", self.inner.pending_count()).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", self.inner.ping()).await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}
