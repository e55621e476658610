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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::{Entry, Kind};

    #[derive(Debug, thiserror::Error)]
    enum Fault {
        #[error("damaged page")]
        Damaged,
        #[error("no answer")]
        Gone,
    }

    /// A store of `records`; a read whose range takes in place `damaged`
    /// fails as a damaged database page does; `gone` answers nothing.
    struct Reader {
        records: Vec<Stored>,
        damaged: Option<i64>,
        gone: bool,
    }

    impl ChainReader for Reader {
        type Error = Fault;

        fn unreadable(e: &Fault) -> bool {
            matches!(e, Fault::Damaged)
        }

        async fn anchor(&self) -> Result<Anchor, Fault> {
            if self.gone {
                return Err(Fault::Gone);
            }
            Ok(Anchor::default())
        }

        async fn records_after(&self, seq: i64, limit: u32) -> Result<Vec<Stored>, Fault> {
            let place = |s: &Stored| match s {
                Ok(r) => r.seq,
                Err(b) => b.seq,
            };
            let page: Vec<Stored> = self
                .records
                .iter()
                .filter(|s| place(s) > seq)
                .take(limit as usize)
                .cloned()
                .collect();
            if page.iter().any(|s| Some(place(s)) == self.damaged) {
                return Err(Fault::Damaged);
            }
            Ok(page)
        }
    }

    fn chain(n: usize) -> Vec<Stored> {
        let mut head = Chain::default();
        (0..n)
            .map(|i| Ok(head.append(Entry::new(Kind::Delivered, i as i64))))
            .collect()
    }

    fn reader(records: Vec<Stored>) -> Reader {
        Reader {
            records,
            damaged: None,
            gone: false,
        }
    }

    fn broken(r: Result<Walked, WalkError<Fault>>) -> Broken {
        match r {
            Err(WalkError::Broken(b)) => b,
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_damaged_page_is_narrowed_to_its_first_unreadable_record() {
        let mut r = reader(chain(2500));
        r.damaged = Some(1203);
        let b = broken(walk(&r).await);
        assert_eq!(b.seq, 1203, "{b}");
        assert!(b.why.contains("cannot be read"), "{b}");
        r.damaged = None;
        assert_eq!(walk(&r).await.unwrap().records, 2500);
    }

    #[tokio::test]
    async fn an_unreadable_row_is_named_unless_a_record_is_missing_before_it() {
        let mut records = chain(6);
        records[3] = Err(Broken {
            seq: 4,
            why: "it cannot be read".into(),
        });
        assert_eq!(broken(walk(&reader(records.clone())).await).seq, 4);
        records.remove(2).unwrap(); // record 3, whole, removed
        let b = broken(walk(&reader(records)).await);
        assert_eq!(b.seq, 4);
        assert!(b.why.contains("missing"), "{b}");
    }

    #[tokio::test]
    async fn only_a_store_that_does_not_answer_is_a_store_error() {
        let mut r = reader(chain(3));
        r.gone = true;
        assert!(matches!(walk(&r).await, Err(WalkError::Store(Fault::Gone))));
    }
}
