//! The audit trail a store keeps: records appended to one hash chain,
//! read back per notification, by page, and from the anchor retention left;
//! and the records committed but not yet sealed into the chain.

use async_trait::async_trait;

use super::StoreError;
use crate::clock::Millis;
use crate::trail::{Anchor, Chain, ChainReader, Entry, Record, Stored};

/// The records committed but not yet given their place in the chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unsealed {
    pub count: u64,
    /// How long ago the oldest of them was committed, by the store's clock.
    pub oldest_age_ms: Option<u64>,
}

/// The hash-chained record of what happened, appended by the engines and
/// by the Hub, read by the API and `herald audit verify`.
#[async_trait]
pub trait AuditTrail: Send + Sync + 'static {
    /// Appends `entry` to the audit trail. Queued, not awaited, like a
    /// delivery mark: it rides with the next commit.
    fn record(&self, entry: Entry);

    /// The audit records of one notification, oldest first: those sealed
    /// into the chain, then those committed and not yet sealed (the order
    /// the chain will give them).
    async fn timeline(&self, id: &str) -> Result<Vec<Entry>, StoreError>;

    /// Audit records with `seq > after` and `from <= at < to`, in chain
    /// order, at most `limit`.
    async fn audit_page(
        &self,
        after: i64,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError>;

    /// The chain's records with `seq > after`, in chain order, at most
    /// `limit`, each read whole or named as unreadable, for `herald audit
    /// verify`: a damaged record is a broken chain, not a failed read.
    async fn audit_chain(&self, after: i64, limit: u32) -> Result<Vec<Stored>, StoreError>;

    /// Where the remaining chain starts (after retention removed its oldest
    /// records).
    async fn audit_anchor(&self) -> Result<Anchor, StoreError>;

    /// The head of the chain: the place and hash of its newest sealed
    /// record, else the anchor. What a checkpoint signs.
    async fn audit_head(&self) -> Result<Chain, StoreError>;

    /// Seals every record committed so far into the chain now, rather than
    /// soon (waiting for a sealing under way elsewhere); answers how many
    /// it sealed. An engine that appends to the chain as it commits has
    /// none to seal.
    async fn seal_audit(&self) -> Result<u64, StoreError>;

    /// The records committed and not yet sealed, as they stand.
    async fn unsealed(&self) -> Result<Unsealed, StoreError>;
}

/// `herald audit verify` walks the chain of any store.
impl<S: AuditTrail + ?Sized> ChainReader for S {
    type Error = StoreError;

    fn unreadable(e: &StoreError) -> bool {
        matches!(e, StoreError::Corrupt(_))
    }

    fn anchor(&self) -> impl std::future::Future<Output = Result<Anchor, StoreError>> + Send {
        self.audit_anchor()
    }

    fn records_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> impl std::future::Future<Output = Result<Vec<Stored>, StoreError>> + Send {
        self.audit_chain(seq, limit)
    }
}
