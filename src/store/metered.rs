//! A store that times every call and counts its failures for `/metrics`
//! (`herald_store_operation_seconds`, `herald_store_errors_total`), in front
//! of whichever engine runs: the engines stay free of metrics code.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{
    Acknowledged, AuditTrail, ClaimedStep, Completion, Content, Escalation, EscalationSteps, Files,
    Inbox, Inserted, ReadModels, ReportRow, RoomGrants, SessionRecords, Source, Store, StoreError,
    Unacknowledged, Unsealed, UserNotification,
};
use crate::clock::Millis;
use crate::files::SharedFile;
use crate::notification::{Notification, Recipient, StateFilter};
use crate::trail::{Anchor, Chain, Entry, Record, Stored};

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
    crate::observe::prometheus::store_call(operation, started.elapsed(), result.is_err());
    result
}

#[async_trait]
impl<S: Store> Inbox for Metered<S> {
    async fn insert_scheduled(
        &self,
        n: &Arc<Notification>,
        users: &[String],
        steps: &[(u32, Millis)],
    ) -> Result<Inserted, StoreError> {
        timed("insert", self.inner.insert_scheduled(n, users, steps)).await
    }

    fn mark_delivered(&self, id: &str, user: &str, at: Millis) {
        // Queued, not awaited: nothing to time.
        self.inner.mark_delivered(id, user, at);
    }

    async fn acknowledge_from(
        &self,
        id: &str,
        user: &str,
        at: Millis,
        source: &Source,
    ) -> Result<Option<Acknowledged>, StoreError> {
        timed(
            "acknowledge",
            self.inner.acknowledge_from(id, user, at, source),
        )
        .await
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

    async fn first_pages(
        &self,
        users: &[String],
        filter: StateFilter,
        limit: u32,
    ) -> Result<Vec<Vec<UserNotification>>, StoreError> {
        timed("first_pages", self.inner.first_pages(users, filter, limit)).await
    }

    async fn purge(&self, acknowledged: Millis, unacknowledged: Millis) -> Result<u64, StoreError> {
        timed("purge", self.inner.purge(acknowledged, unacknowledged)).await
    }
}

#[async_trait]
impl<S: Store> EscalationSteps for Metered<S> {
    async fn claim_steps(
        &self,
        now: Millis,
        owner: &str,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedStep>, StoreError> {
        timed(
            "claim_steps",
            self.inner.claim_steps(now, owner, until, limit),
        )
        .await
    }

    async fn complete_step(&self, c: &Completion) -> Result<bool, StoreError> {
        timed("complete_step", self.inner.complete_step(c)).await
    }

    async fn next_step_due(&self) -> Result<Option<Millis>, StoreError> {
        timed("next_step_due", self.inner.next_step_due()).await
    }

    async fn next_claim_end(&self, now: Millis) -> Result<Option<Millis>, StoreError> {
        timed("next_claim_end", self.inner.next_claim_end(now)).await
    }

    async fn open_roles(&self) -> Result<Vec<String>, StoreError> {
        timed("open_roles", self.inner.open_roles()).await
    }

    async fn join_role(
        &self,
        user: &str,
        role: &str,
        only: Option<&str>,
        at: Millis,
    ) -> Result<u64, StoreError> {
        timed("join_role", self.inner.join_role(user, role, only, at)).await
    }
}

#[async_trait]
impl<S: Store> AuditTrail for Metered<S> {
    fn record(&self, entry: Entry) {
        // Queued, not awaited: nothing to time.
        self.inner.record(entry);
    }

    async fn timeline(&self, id: &str) -> Result<Vec<Entry>, StoreError> {
        timed("timeline", self.inner.timeline(id)).await
    }

    async fn audit_page(
        &self,
        after: i64,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        timed("audit_page", self.inner.audit_page(after, from, to, limit)).await
    }

    async fn audit_chain(&self, after: i64, limit: u32) -> Result<Vec<Stored>, StoreError> {
        timed("audit_chain", self.inner.audit_chain(after, limit)).await
    }

    async fn audit_anchor(&self) -> Result<Anchor, StoreError> {
        timed("audit_anchor", self.inner.audit_anchor()).await
    }

    async fn audit_head(&self) -> Result<Chain, StoreError> {
        timed("audit_head", self.inner.audit_head()).await
    }

    async fn seal_audit(&self) -> Result<u64, StoreError> {
        timed("seal_audit", self.inner.seal_audit()).await
    }

    async fn unsealed(&self) -> Result<Unsealed, StoreError> {
        timed("unsealed", self.inner.unsealed()).await
    }
}

#[async_trait]
impl<S: Store> SessionRecords for Metered<S> {
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

    async fn claim_sessions(
        &self,
        claims: &[(String, String)],
        at: Millis,
    ) -> Result<Vec<String>, StoreError> {
        timed("claim_session", self.inner.claim_sessions(claims, at)).await
    }

    async fn expired_sessions(&self, since: Millis) -> Result<Vec<String>, StoreError> {
        timed("expired_sessions", self.inner.expired_sessions(since)).await
    }
}

#[async_trait]
impl<S: Store> RoomGrants for Metered<S> {
    async fn grant_room(&self, room: &str, user: &str, at: Millis) -> Result<bool, StoreError> {
        timed("grant_room", self.inner.grant_room(room, user, at)).await
    }

    async fn revoke_room(&self, room: &str, user: &str) -> Result<bool, StoreError> {
        timed("revoke_room", self.inner.revoke_room(room, user)).await
    }

    async fn room_granted(&self, room: &str, user: &str) -> Result<bool, StoreError> {
        timed("room_granted", self.inner.room_granted(room, user)).await
    }
}

#[async_trait]
impl<S: Store> Files for Metered<S> {
    async fn keep_file(
        &self,
        file: &SharedFile,
        recipients: &[String],
        content: &Path,
    ) -> Result<(), StoreError> {
        timed("keep_file", self.inner.keep_file(file, recipients, content)).await
    }

    async fn file_for(
        &self,
        file_id: &str,
        user: &str,
        now: Millis,
    ) -> Result<Option<SharedFile>, StoreError> {
        timed("file_for", self.inner.file_for(file_id, user, now)).await
    }

    async fn file_content(&self, file_id: &str, range: Range<u64>) -> Result<Content, StoreError> {
        timed("file_content", self.inner.file_content(file_id, range)).await
    }

    async fn file_downloaded(
        &self,
        file_id: &str,
        user: &str,
        at: Millis,
    ) -> Result<bool, StoreError> {
        timed(
            "file_downloaded",
            self.inner.file_downloaded(file_id, user, at),
        )
        .await
    }

    async fn pending_files(&self, user: &str, now: Millis) -> Result<Vec<SharedFile>, StoreError> {
        timed("pending_files", self.inner.pending_files(user, now)).await
    }

    async fn pending_files_of(
        &self,
        users: &[String],
        now: Millis,
    ) -> Result<Vec<Vec<SharedFile>>, StoreError> {
        timed("pending_files_of", self.inner.pending_files_of(users, now)).await
    }

    async fn purge_files(&self, now: Millis) -> Result<u64, StoreError> {
        timed("purge_files", self.inner.purge_files(now)).await
    }

    async fn sweep_unreferenced(&self) -> Result<u64, StoreError> {
        timed("sweep_unreferenced", self.inner.sweep_unreferenced()).await
    }
}

#[async_trait]
impl<S: Store> ReadModels for Metered<S> {
    async fn escalations(&self, ids: &[String]) -> Result<HashMap<String, Escalation>, StoreError> {
        timed("escalations", self.inner.escalations(ids)).await
    }

    async fn report_rows(&self, from: Millis, to: Millis) -> Result<Vec<ReportRow>, StoreError> {
        timed("report_rows", self.inner.report_rows(from, to)).await
    }

    async fn unacknowledged(&self, limit: u32) -> Result<Unacknowledged, StoreError> {
        timed("unacknowledged", self.inner.unacknowledged(limit)).await
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        timed("pending_count", self.inner.pending_count()).await
    }
}

#[async_trait]
impl<S: Store> Store for Metered<S> {
    fn delivered(&self, id: &str, user: &str, at: Millis, sockets: &[String]) {
        // Queued, not awaited: nothing to time.
        self.inner.delivered(id, user, at, sockets);
    }

    async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", self.inner.ping()).await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}
