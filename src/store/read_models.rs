//! What the store answers for the dashboard, the report and `/metrics`:
//! reads over many notifications at once, shaped for their reader.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{Escalation, ReportRow, StoreError, UserNotification};
use crate::clock::Millis;

/// The oldest unacknowledged notifications of every recipient, and how
/// many there are in all.
#[derive(Debug, Clone)]
pub struct Unacknowledged {
    pub total: u64,
    pub oldest: Vec<UserNotification>,
}

/// Reads over many notifications, for the dashboard, the report and
/// `/metrics`.
#[async_trait]
pub trait ReadModels: Send + Sync + 'static {
    /// Where the escalation of each of `ids` stands (a stored notification
    /// each; unknown ids are left out): one read for a page of the
    /// dashboard's list, through the audit trail's and the steps' indexes.
    async fn escalations(&self, ids: &[String]) -> Result<HashMap<String, Escalation>, StoreError>;

    /// Every notification created in `from <= createdAt < to`.
    async fn report_rows(&self, from: Millis, to: Millis) -> Result<Vec<ReportRow>, StoreError>;

    /// Every recipient's unacknowledged notifications, oldest first (by
    /// creation, then by insertion), at most `limit`, with their total:
    /// what the operators' dashboard watches. Reads only; one answer is
    /// one consistent snapshot on neither engine, so the total may count
    /// a row the page no longer shows.
    async fn unacknowledged(&self, limit: u32) -> Result<Unacknowledged, StoreError>;

    /// Recipients who have not acknowledged their notification yet, over
    /// all users (the pending gauge of `/metrics`; the partial index of the
    /// unacknowledged answers it).
    async fn pending_count(&self) -> Result<u64, StoreError>;
}
