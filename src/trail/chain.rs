//! The hash chain: each record's hash covers its own fields and the hash of
//! the record before it, so changing, removing or inserting a record breaks
//! every link after it. Retention removes the oldest records and keeps the
//! last removed record's place and hash as the anchor the rest hangs from.

use sha2::{Digest, Sha256};

use super::record::with_detail;
use super::{Entry, Record};

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of record `seq` holding `entry`, linked to `prev`: SHA-256 over
/// a JSON array of every field, so no two different records serialise the
/// same.
pub fn link(prev: &str, seq: i64, e: &Entry) -> String {
    let detail = e.detail.as_ref().map(|d| d.to_string());
    Linker::default().link(prev, seq, e, detail.as_deref())
}

/// Hashes records one after another with one buffer for the text they are
/// hashed as, kept from record to record: the SQLite writer keeps one for
/// its life, as it links every delivery and acknowledgement.
#[derive(Debug, Default)]
pub struct Linker {
    text: Vec<u8>,
}

impl Linker {
    /// [`link`], with the entry's detail already as its JSON text
    /// (`detail`), which the caller stores as the record's detail column.
    pub fn link(&mut self, prev: &str, seq: i64, e: &Entry, detail: Option<&str>) -> String {
        // A tuple serialises as the JSON array of its fields, without
        // building a JSON tree first.
        self.text.clear();
        serde_json::to_writer(&mut self.text, &with_detail(seq, e, detail, prev))
            .expect("plain fields serialise");
        hex(&Sha256::digest(&self.text))
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Where the remaining chain starts: the place and hash of the last record
/// retention removed (seq 0 and [`GENESIS`] while none was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

impl Default for Anchor {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

/// The head of the chain: the last record's place and hash. The writer
/// appends from a copy and keeps it only once the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub seq: i64,
    pub hash: String,
}

impl Default for Chain {
    fn default() -> Self {
        let a = Anchor::default();
        Self {
            seq: a.seq,
            hash: a.hash,
        }
    }
}

impl Chain {
    /// The next record, linked to the head, which moves to it.
    pub fn append(&mut self, entry: Entry) -> Record {
        let seq = self.seq + 1;
        let hash = link(&self.hash, seq, &entry);
        let record = Record {
            seq,
            entry,
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
        };
        self.seq = seq;
        record
    }
}

/// The first record that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit record {seq} does not verify: {why}")]
pub struct Broken {
    pub seq: i64,
    pub why: String,
}

/// Checks records in order from `anchor`: consecutive places, each linked
/// to the one before, each hash its own fields' hash. Feed it pages; it
/// answers the number checked so far.
pub fn verify<'r>(
    head: &mut Chain,
    records: impl IntoIterator<Item = &'r Record>,
) -> Result<u64, Broken> {
    let mut checked = 0;
    for r in records {
        follows(head, r.seq)?;
        if r.prev_hash != head.hash {
            return Err(Broken {
                seq: r.seq,
                why: "its link to the record before does not match".into(),
            });
        }
        if link(&r.prev_hash, r.seq, &r.entry) != r.hash {
            return Err(Broken {
                seq: r.seq,
                why: "its contents do not match its hash (the record was changed)".into(),
            });
        }
        head.seq = r.seq;
        head.hash = r.hash.clone();
        checked += 1;
    }
    Ok(checked)
}

/// Checks that the record at place `seq` is the one due after `head`: a
/// gap is a removed record, named at the place after it.
pub fn follows(head: &Chain, seq: i64) -> Result<(), Broken> {
    if seq == head.seq + 1 {
        return Ok(());
    }
    let why = format!(
        "expected record {} next (a record is missing)",
        head.seq + 1
    );
    Err(Broken { seq, why })
}

impl From<Anchor> for Chain {
    fn from(a: Anchor) -> Self {
        Self {
            seq: a.seq,
            hash: a.hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::Kind;

    fn chain(n: usize) -> Vec<Record> {
        let mut head = Chain::default();
        (0..n)
            .map(|i| {
                head.append(
                    Entry::new(Kind::Delivered, i as i64)
                        .notification("n")
                        .user("u"),
                )
            })
            .collect()
    }

    fn check(records: &[Record]) -> Result<u64, Broken> {
        verify(&mut Chain::default(), records)
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(check(&chain(5)), Ok(5));
        assert_eq!(check(&[]), Ok(0));
    }

    #[test]
    fn a_changed_record_is_named_first_middle_last() {
        for at in [0, 2, 4] {
            let mut rs = chain(5);
            rs[at].entry.user_id = Some("mallory".into());
            let e = check(&rs).unwrap_err();
            assert_eq!(e.seq, at as i64 + 1, "{e}");
            assert!(e.why.contains("changed"), "{e}");
        }
    }

    #[test]
    fn a_removed_record_is_named() {
        for at in [0, 2, 4] {
            let mut rs = chain(5);
            rs.remove(at);
            if at == 4 {
                // Removing the last record leaves a valid shorter chain: the
                // head hash kept outside the store is what shows it.
                assert_eq!(check(&rs), Ok(4));
                continue;
            }
            let e = check(&rs).unwrap_err();
            assert_eq!(e.seq, at as i64 + 2, "{e}");
            assert!(e.why.contains("missing"), "{e}");
        }
    }

    #[test]
    fn a_rehashed_forgery_breaks_the_next_link() {
        let mut rs = chain(5);
        rs[2].entry.user_id = Some("mallory".into());
        rs[2].hash = link(&rs[2].prev_hash, 3, &rs[2].entry);
        let e = check(&rs).unwrap_err();
        assert_eq!(e.seq, 4, "{e}");
        assert!(e.why.contains("link"), "{e}");
    }

    #[test]
    fn what_remains_after_retention_verifies_from_its_anchor() {
        let rs = chain(6);
        let anchor = Anchor {
            seq: rs[2].seq,
            hash: rs[2].hash.clone(),
        };
        assert_eq!(verify(&mut Chain::from(anchor.clone()), &rs[3..]), Ok(3));
        let e = verify(&mut Chain::from(anchor), &rs[4..]).unwrap_err();
        assert_eq!(e.seq, 5);
    }

    #[test]
    fn the_hash_is_over_the_json_array_of_the_fields() {
        // What a verifier outside Herald recomputes (the e2e test does, in
        // JavaScript): SHA-256 of `[seq, at, type, notificationId, userId,
        // socketId, level, detail as text, prevHash]`.
        let e = Entry::new(Kind::Acknowledged, 5)
            .notification("n")
            .user("u")
            .detail(serde_json::json!({"remote": "10.0.0.7:5000"}));
        let text = r#"[1,5,"acknowledged","n","u",null,null,"{\"remote\":\"10.0.0.7:5000\"}","0000000000000000000000000000000000000000000000000000000000000000"]"#;
        assert_eq!(link(GENESIS, 1, &e), hex(&Sha256::digest(text.as_bytes())));
        // The digest as lowercase hex, as any SHA-256 tool prints it.
        assert_eq!(
            link(GENESIS, 1, &e),
            "c2b27324acac35eadcc56a7f386b41b2d1d900f5dd3e7bcf1d38df3739215cae"
        );
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn every_field_is_covered() {
        let base = Entry::new(Kind::Escalated, 7)
            .notification("n")
            .user("u")
            .socket("s")
            .level(2)
            .detail(serde_json::json!({"role": "attending"}));
        let h = link(GENESIS, 1, &base);
        let variants = [
            Entry {
                at: 8,
                ..base.clone()
            },
            Entry {
                kind: Kind::Reminded,
                ..base.clone()
            },
            Entry {
                notification_id: None,
                ..base.clone()
            },
            Entry {
                user_id: Some("v".into()),
                ..base.clone()
            },
            Entry {
                socket_id: None,
                ..base.clone()
            },
            Entry {
                level: Some(3),
                ..base.clone()
            },
            Entry {
                detail: None,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(link(GENESIS, 1, &v), h, "{v:?}");
        }
        assert_ne!(link(GENESIS, 2, &base), h);
        assert_ne!(link(&h, 1, &base), h);
    }
}
