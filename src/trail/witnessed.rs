//! Checking a witness's checkpoints against the trail, as `herald audit
//! verify --checkpoint FILE` does after the chain itself verified: every
//! line must be a checkpoint this server's key signed, and the trail must
//! still reach each checkpoint's `seq` with the checkpoint's hash there.
//!
//! Retention removes the oldest records on purpose and keeps the last
//! removed one's place and hash as the anchor. A checkpoint at the anchor
//! is compared with the anchor; one before it names records retention
//! removed, so there is nothing left to compare it with: it is counted as
//! retired, not as a gap. The newest checkpoints, always after the anchor
//! while checkpoints are made every minute and records are kept for days,
//! are the ones that catch a cut-off tail.

use ed25519_dalek::VerifyingKey;

use super::checkpoint::{Signed, Unsigned};
use super::{ChainReader, Walked};

/// A witness file's line that is not a checkpoint of this server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint line {line}: {why}")]
pub struct BadLine {
    pub line: usize,
    pub why: Unsigned,
}

/// Reads a witness's file of checkpoint lines (blank lines skipped), each
/// checked against the one of `keys` it names (a file kept across a key
/// rotation holds lines of each key); the first line that is not one is
/// named.
pub fn read_lines(text: &str, keys: &[VerifyingKey]) -> Result<Vec<Signed>, BadLine> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            Signed::parse_verified(l.trim(), keys).map_err(|why| BadLine { line: i + 1, why })
        })
        .collect()
}

/// Where the trail no longer agrees with a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gap {
    #[error(
        "the trail ends at seq {head}, but the checkpoint of {at} reaches seq {seq}: \
         records {from} to {seq} are missing (the newest records were cut off)",
        from = head + 1
    )]
    CutOff { seq: i64, at: String, head: i64 },
    #[error(
        "the trail disagrees with the checkpoint of {at} at seq {seq}: \
         the record there is not the one that was signed (the trail was rewritten)"
    )]
    Differs { seq: i64, at: String },
}

/// What the checkpoints showed of an intact trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Witnessed {
    /// Checkpoints compared with the trail, all in agreement.
    pub compared: usize,
    /// Checkpoints before the anchor: records retention removed.
    pub retired: usize,
    /// The newest place a checkpoint vouched for.
    pub newest: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum WitnessError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Gap(#[from] Gap),
    /// The store could not be read.
    #[error(transparent)]
    Store(E),
}

/// Compares each checkpoint with `walked`, the chain as it verified, and
/// with the record at the checkpoint's place, read from `store`. Gaps
/// are reported from the newest checkpoint down: the one that shows the
/// most is named.
pub async fn against<R: ChainReader + ?Sized>(
    store: &R,
    walked: &Walked,
    checkpoints: &[Signed],
) -> Result<Witnessed, WitnessError<R::Error>> {
    let mut newest_first: Vec<&Signed> = checkpoints.iter().collect();
    newest_first.sort_by_key(|s| std::cmp::Reverse(s.checkpoint.seq));
    let mut seen = Witnessed::default();
    for s in newest_first {
        let c = &s.checkpoint;
        let differs = || Gap::Differs {
            seq: c.seq,
            at: c.at.clone(),
        };
        if c.seq > walked.head.seq {
            return Err(Gap::CutOff {
                seq: c.seq,
                at: c.at.clone(),
                head: walked.head.seq,
            }
            .into());
        }
        if c.seq < walked.anchor.seq {
            seen.retired += 1;
            continue;
        }
        let hash = if c.seq == walked.anchor.seq {
            walked.anchor.hash.clone()
        } else {
            let found = store
                .records_after(c.seq - 1, 1)
                .await
                .map_err(WitnessError::Store)?;
            match found.into_iter().next() {
                Some(Ok(r)) if r.seq == c.seq => r.hash,
                _ => return Err(differs().into()),
            }
        };
        if hash != c.hash {
            return Err(differs().into());
        }
        seen.compared += 1;
        seen.newest = seen.newest.max(Some(c.seq));
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::checkpoint::{sign, Checkpoint};
    use crate::trail::{walk, Anchor, Chain, Entry, Kind, Record, Stored};
    use ed25519_dalek::SigningKey;

    /// A chain kept in memory, from an anchor.
    struct Kept {
        anchor: Anchor,
        records: Vec<Record>,
    }

    impl ChainReader for Kept {
        type Error = std::io::Error;

        fn unreadable(_: &Self::Error) -> bool {
            false
        }

        async fn anchor(&self) -> Result<Anchor, Self::Error> {
            Ok(self.anchor.clone())
        }

        async fn records_after(&self, seq: i64, limit: u32) -> Result<Vec<Stored>, Self::Error> {
            Ok(self
                .records
                .iter()
                .filter(|r| r.seq > seq)
                .take(limit as usize)
                .cloned()
                .map(Ok)
                .collect())
        }
    }

    fn kept(n: usize) -> Kept {
        let mut head = Chain::default();
        let records = (0..n)
            .map(|i| head.append(Entry::new(Kind::Delivered, i as i64).user("u")))
            .collect();
        Kept {
            anchor: Anchor::default(),
            records,
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    /// A checkpoint of the head of `k`'s first `n` records.
    fn at(k: &Kept, n: usize) -> Signed {
        let head = match n {
            0 => Chain::default(),
            n => Chain {
                seq: k.records[n - 1].seq,
                hash: k.records[n - 1].hash.clone(),
            },
        };
        sign(&key(), Checkpoint::of(&head, n as i64))
    }

    async fn check(k: &Kept, cps: &[Signed]) -> Result<Witnessed, WitnessError<std::io::Error>> {
        let walked = walk(k).await.unwrap();
        against(k, &walked, cps).await
    }

    #[tokio::test]
    async fn an_intact_trail_agrees_with_every_checkpoint() {
        let k = kept(6);
        let cps = [at(&k, 0), at(&k, 3), at(&k, 6)];
        let w = check(&k, &cps).await.unwrap();
        assert_eq!((w.compared, w.retired, w.newest), (3, 0, Some(6)));
    }

    #[tokio::test]
    async fn a_cut_off_tail_is_named_with_its_gap() {
        let mut k = kept(6);
        let cps = [at(&k, 3), at(&k, 6)];
        k.records.truncate(4);
        let e = check(&k, &cps).await.unwrap_err();
        assert!(
            matches!(
                e,
                WitnessError::Gap(Gap::CutOff {
                    seq: 6,
                    head: 4,
                    ..
                })
            ),
            "{e}"
        );
        assert!(e.to_string().contains("records 5 to 6 are missing"), "{e}");
    }

    #[tokio::test]
    async fn a_rewritten_trail_disagrees_at_the_checkpoints_seq() {
        let k = kept(6);
        let cps = [at(&k, 4)];
        // Records 3.. rewritten into a chain that verifies on its own.
        let mut head = Chain {
            seq: k.records[1].seq,
            hash: k.records[1].hash.clone(),
        };
        let mut rewritten = Kept {
            anchor: Anchor::default(),
            records: k.records[..2].to_vec(),
        };
        for i in 2..6 {
            rewritten
                .records
                .push(head.append(Entry::new(Kind::Delivered, i).user("mallory")));
        }
        let e = check(&rewritten, &cps).await.unwrap_err();
        assert!(
            matches!(e, WitnessError::Gap(Gap::Differs { seq: 4, .. })),
            "{e}"
        );
    }

    #[tokio::test]
    async fn checkpoints_before_the_anchor_are_retired_not_gaps() {
        let k = kept(6);
        let cps = [at(&k, 1), at(&k, 2), at(&k, 5)];
        // Retention removed records 1 and 2: record 2 is the anchor.
        let purged = Kept {
            anchor: Anchor {
                seq: k.records[1].seq,
                hash: k.records[1].hash.clone(),
            },
            records: k.records[2..].to_vec(),
        };
        let w = check(&purged, &cps).await.unwrap();
        assert_eq!((w.compared, w.retired, w.newest), (2, 1, Some(5)));
        // At the anchor itself, the anchor's hash is compared.
        let moved = Kept {
            anchor: Anchor {
                seq: 2,
                hash: "f".repeat(64),
            },
            records: Vec::new(),
        };
        let e = against(
            &moved,
            &Walked {
                anchor: moved.anchor.clone(),
                records: 0,
                head: Chain::from(moved.anchor.clone()),
            },
            &cps[1..2],
        )
        .await
        .unwrap_err();
        assert!(matches!(e, WitnessError::Gap(Gap::Differs { seq: 2, .. })));
    }

    #[test]
    fn a_file_of_lines_names_its_first_bad_line() {
        let k = kept(3);
        let ours = [key().verifying_key()];
        let good = format!("{}\n\n{}\n", at(&k, 1).to_line(), at(&k, 3).to_line());
        assert_eq!(read_lines(&good, &ours).unwrap().len(), 2);
        let forged = sign(
            &SigningKey::from_bytes(&[9; 32]),
            Checkpoint::of(&Chain::default(), 0),
        );
        let bad = format!("{good}{}\n", forged.to_line());
        let e = read_lines(&bad, &ours).unwrap_err();
        assert_eq!(e.line, 4);
        assert!(matches!(e.why, Unsigned::OtherKey { .. }));
    }
}
