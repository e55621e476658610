//! Walking a store's whole audit chain, a page at a time from its anchor,
//! as `herald audit verify` does: the store is read, never trusted.

use super::{verify, Anchor, Broken, Chain};
use crate::clock::Millis;
use crate::store::{Store, StoreError};

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

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Broken(#[from] Broken),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verifies every record the store holds, oldest first.
pub async fn walk(store: &dyn Store) -> Result<Walked, WalkError> {
    let anchor = store.audit_anchor().await?;
    let mut head = Chain::from(anchor.clone());
    let mut records = 0;
    loop {
        let page = store
            .audit_page(head.seq, Millis::MIN, Millis::MAX, PAGE)
            .await?;
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
