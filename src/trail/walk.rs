//! Walking a store's whole audit chain, a page at a time from its anchor,
//! as `herald audit verify` does: the store is read, never trusted. The
//! trail does not know the store: the store implements [`ChainReader`].

use std::future::Future;

use super::{verify, Anchor, Broken, Chain, Record};

/// Records read at once.
pub const PAGE: u32 = 1000;

/// An intact chain: how many records verified, from where, and its head
/// (for an operator to keep outside the store; a later walk whose head no
/// longer reaches it shows records removed from the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    pub anchor: Anchor,
    pub records: u64,
    pub head: Chain,
}

/// What a walk reads from where the chain is kept.
pub trait ChainReader {
    type Error: std::error::Error + 'static;

    /// Where the remaining chain starts.
    fn anchor(&self) -> impl Future<Output = Result<Anchor, Self::Error>> + Send;

    /// The records after place `seq`, in chain order, at most `limit`.
    fn records_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Record>, Self::Error>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Broken(#[from] Broken),
    /// The store could not be read.
    #[error(transparent)]
    Store(E),
}

/// Verifies every record the store holds, oldest first.
pub async fn walk<R: ChainReader + ?Sized>(store: &R) -> Result<Walked, WalkError<R::Error>> {
    let anchor = store.anchor().await.map_err(WalkError::Store)?;
    let mut head = Chain::from(anchor.clone());
    let mut records = 0;
    loop {
        let page = store
            .records_after(head.seq, PAGE)
            .await
            .map_err(WalkError::Store)?;
        // `verify` checks the pages as one sequence: the first record of a
        // page must follow the last of the one before.
        records += verify(&mut head, &page)?;
        if page.len() < PAGE as usize {
            return Ok(Walked {
                anchor,
                records,
                head,
            });
        }
    }
}
