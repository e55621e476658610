//! Walking a store's whole audit chain, a page at a time from its anchor,
//! as `herald audit verify` does: the store is read, never trusted. The
//! trail does not know the store: the store implements [`ChainReader`].

use std::future::Future;

use super::{follows, verify, Anchor, Broken, Chain, Record};

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

/// A stored record as the store read it: whole, or the place of one that
/// cannot be read (a column of the wrong type, an unknown kind, a detail
/// that is not JSON) and why. Such a record is a broken one, not a store
/// that cannot be reached: someone changed it.
pub type Stored = Result<Record, Broken>;

/// What a walk reads from where the chain is kept.
pub trait ChainReader {
    type Error: std::error::Error + 'static;

    /// Whether `e` says the stored data cannot be read (the store answered
    /// with something damaged), rather than that the store did not answer.
    fn unreadable(e: &Self::Error) -> bool;

    /// Where the remaining chain starts.
    fn anchor(&self) -> impl Future<Output = Result<Anchor, Self::Error>> + Send;

    /// The records after place `seq`, in chain order, at most `limit`.
    fn records_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Stored>, Self::Error>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Broken(#[from] Broken),
    /// The store could not be reached or did not answer.
    #[error(transparent)]
    Store(E),
}

/// Verifies every record the store holds, oldest first. Only a store that
/// does not answer is a [`WalkError::Store`]: anything it answers that
/// cannot be read is the first broken record.
pub async fn walk<R: ChainReader + ?Sized>(store: &R) -> Result<Walked, WalkError<R::Error>> {
    let anchor = match store.anchor().await {
        Ok(anchor) => anchor,
        Err(e) if R::unreadable(&e) => return Err(unreadable_anchor(store, &e).await),
        Err(e) => return Err(WalkError::Store(e)),
    };
    let mut head = Chain::from(anchor.clone());
    let mut records = 0;
    let mut limit = PAGE;
    loop {
        let page = match store.records_after(head.seq, limit).await {
            Ok(page) => page,
            // Damage the store could not split into rows (a damaged page
            // of the database file): it lies within the next `limit`
            // records, so read them one at a time to find the first.
            Err(e) if R::unreadable(&e) && limit > 1 => {
                limit = 1;
                continue;
            }
            Err(e) if R::unreadable(&e) => {
                let why = format!("the records from here on cannot be read ({e})");
                return Err(Broken {
                    seq: head.seq + 1,
                    why,
                }
                .into());
            }
            Err(e) => return Err(WalkError::Store(e)),
        };
        let full = page.len() == limit as usize;
        // `verify` checks the pages as one sequence: the first record of a
        // page must follow the last of the one before.
        for stored in page {
            match stored {
                Ok(record) => records += verify(&mut head, [&record])?,
                Err(unreadable) => {
                    // A record missing before it is the first bad one.
                    follows(&head, unreadable.seq)?;
                    return Err(unreadable.into());
                }
            }
        }
        if !full {
            return Ok(Walked {
                anchor,
                records,
                head,
            });
        }
    }
}

/// The anchor retention left cannot be read: the chain cannot be checked
/// from its start, so its first remaining record is the first bad one.
async fn unreadable_anchor<R: ChainReader + ?Sized>(
    store: &R,
    e: &R::Error,
) -> WalkError<R::Error> {
    let first = match store.records_after(i64::MIN, 1).await {
        Ok(page) => page.first().map(|s| match s {
            Ok(r) => r.seq,
            Err(b) => b.seq,
        }),
        Err(_) => None,
    };
    Broken {
        seq: first.unwrap_or(1),
        why: format!(
            "the anchor it hangs from (where retention cut the chain) cannot be read ({e})"
        ),
    }
    .into()
}
