//! The audit trail a store keeps: records appended to one hash chain,
//! read back per notification, by page, and from the anchor retention left.

use async_trait::async_trait;

use super::StoreError;
use crate::clock::Millis;
use crate::trail::{Anchor, ChainReader, Entry, Record};

/// The hash-chained record of what happened, appended by the engines and
/// by the Hub, read by the API and `herald audit verify`.
#[async_trait]
pub trait AuditTrail: Send + Sync + 'static {
    /// Appends `entry` to the audit trail. Queued, not awaited, like a
    /// delivery mark: it rides with the next commit.
    fn record(&self, entry: Entry);

    /// The audit records of one notification, oldest first.
    async fn timeline(&self, id: &str) -> Result<Vec<Record>, StoreError>;

    /// Audit records with `seq > after` and `from <= at < to`, in chain
    /// order, at most `limit`.
    async fn audit_page(
        &self,
        after: i64,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError>;

    /// Where the remaining chain starts (after retention removed its oldest
    /// records).
    async fn audit_anchor(&self) -> Result<Anchor, StoreError>;
}

/// `herald audit verify` walks the chain of any store.
impl<S: AuditTrail + ?Sized> ChainReader for S {
    type Error = StoreError;

    fn anchor(&self) -> impl std::future::Future<Output = Result<Anchor, StoreError>> + Send {
        self.audit_anchor()
    }

    fn records_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> impl std::future::Future<Output = Result<Vec<Record>, StoreError>> + Send {
        self.audit_page(seq, Millis::MIN, Millis::MAX, limit)
    }
}
