//! Signed checkpoints of the chain's head. A chain alone cannot show that
//! its newest records were cut off: a shorter chain still verifies. A
//! checkpoint `{ seq, hash, at }` signed with Ed25519 and kept by an
//! outside witness can: the trail must still reach `seq`, with `hash`
//! there. One checkpoint is one JSON line, so a witness's file is a file
//! of lines that `herald audit verify --checkpoint` reads back.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::chain::hex;
use super::Chain;
use crate::clock::{rfc3339, Millis};

/// What is signed: the head's place and hash, and when it was the head.
/// Its JSON text, fields in this order and no spaces, is the signed
/// message, so a verifier outside Herald rebuilds it from the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: String,
}

impl Checkpoint {
    pub fn of(head: &Chain, at: Millis) -> Self {
        Self {
            seq: head.seq,
            hash: head.hash.clone(),
            at: rfc3339(at),
        }
    }

    /// The message the signature covers.
    pub fn message(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain fields serialise")
    }
}

/// A checkpoint with its signature and the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub checkpoint: Checkpoint,
    /// The Ed25519 signature of [`Checkpoint::message`], hex.
    pub signature: String,
    /// The signer's public key, hex.
    pub public_key: String,
}

/// A public key's short name: the first 16 hex digits of its SHA-256, as
/// an operator compares keys by eye.
pub fn key_id(public: &VerifyingKey) -> String {
    hex(&Sha256::digest(public.as_bytes()))[..16].to_string()
}

/// A public key as every line carries it (`publicKey`) and `herald audit
/// public-key` prints it: 64 hex digits.
pub fn public_hex(public: &VerifyingKey) -> String {
    hex(public.as_bytes())
}

/// A public key from its 64 hex digits, as [`public_hex`] writes it.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = unhex::<32>(text.trim()).ok_or(
        "is not an Ed25519 public key: 64 hex digits, as `herald audit public-key` prints",
    )?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "is not a valid Ed25519 public key".to_string())
}

/// Signs `checkpoint` with `key`.
pub fn sign(key: &SigningKey, checkpoint: Checkpoint) -> Signed {
    let signature = key.sign(&checkpoint.message());
    Signed {
        checkpoint,
        signature: hex(&signature.to_bytes()),
        public_key: hex(key.verifying_key().as_bytes()),
    }
}

/// Why a line is not a checkpoint this server signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsigned {
    #[error("not a checkpoint line ({0})")]
    Malformed(String),
    #[error(
        "signed by another key (key id {theirs}), none of those it is checked with (key id {})",
        known.join(", ")
    )]
    OtherKey { theirs: String, known: Vec<String> },
    #[error("its signature does not match its contents (forged or altered)")]
    BadSignature,
}

/// The JSON form of a line, as written and read.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    checkpoint: Checkpoint,
    signature: String,
    key_id: String,
    public_key: String,
}

impl Signed {
    /// The checkpoint as one JSON line (no newline): what `herald audit
    /// checkpoint` prints, the file witness appends and the webhook posts.
    pub fn to_json(&self) -> Value {
        let key_id = unhex::<32>(&self.public_key)
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .map(|k| key_id(&k))
            .unwrap_or_default();
        json!({
            "checkpoint": self.checkpoint,
            "signature": self.signature,
            "keyId": key_id,
            "publicKey": self.public_key,
        })
    }

    pub fn to_line(&self) -> String {
        self.to_json().to_string()
    }

    /// Reads a line back and checks it was signed by one of `keys` (the
    /// configured key and earlier ones, kept through a rotation): the key
    /// the line names only says which one to check with, since anyone can
    /// sign with a key of their own.
    pub fn parse_verified(line: &str, keys: &[VerifyingKey]) -> Result<Signed, Unsigned> {
        let l: Line = serde_json::from_str(line).map_err(|e| Unsigned::Malformed(e.to_string()))?;
        let Some(key) = keys.iter().find(|k| l.public_key == public_hex(k)) else {
            // Named by the key it carries when it carries one: its keyId
            // field is not signed and may say anything.
            let theirs = unhex::<32>(&l.public_key)
                .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                .map_or(l.key_id, |k| key_id(&k));
            return Err(Unsigned::OtherKey {
                theirs,
                known: keys.iter().map(key_id).collect(),
            });
        };
        let signature = unhex::<64>(&l.signature)
            .ok_or_else(|| Unsigned::Malformed("the signature is not 128 hex digits".into()))?;
        key.verify(&l.checkpoint.message(), &Signature::from_bytes(&signature))
            .map_err(|_| Unsigned::BadSignature)?;
        Ok(Signed {
            checkpoint: l.checkpoint,
            signature: l.signature,
            public_key: l.public_key,
        })
    }
}

/// `N` bytes from exactly `2 * N` hex digits.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn head() -> Chain {
        Chain {
            seq: 42,
            hash: "ab".repeat(32),
        }
    }

    #[test]
    fn a_signed_checkpoint_reads_back_from_its_line() {
        let k = key(1);
        let signed = sign(&k, Checkpoint::of(&head(), 1_795_600_800_123));
        let line = signed.to_line();
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["checkpoint"]["seq"], 42);
        assert_eq!(v["checkpoint"]["at"], "2026-11-25T10:00:00.123Z");
        assert_eq!(v["keyId"], key_id(&k.verifying_key()));
        assert_eq!(
            Signed::parse_verified(&line, &[k.verifying_key()]),
            Ok(signed)
        );
    }

    #[test]
    fn a_line_verifies_with_any_key_it_is_checked_with_and_an_unknown_one_is_named() {
        let (old, new) = (key(1), key(2));
        let line = sign(&old, Checkpoint::of(&head(), 0)).to_line();
        let both = [new.verifying_key(), old.verifying_key()];
        assert!(Signed::parse_verified(&line, &both).is_ok());
        // Only the new key: the line is named by its own key, whatever its
        // (unsigned) keyId field claims.
        let lying = line.replace(&key_id(&old.verifying_key()), "0000000000000000");
        let e = Signed::parse_verified(&lying, &both[..1]).unwrap_err();
        assert_eq!(
            e,
            Unsigned::OtherKey {
                theirs: key_id(&old.verifying_key()),
                known: vec![key_id(&new.verifying_key())],
            }
        );
    }

    #[test]
    fn a_public_key_reads_back_from_its_hex_and_nothing_else_does() {
        let public = key(1).verifying_key();
        assert_eq!(parse_public_key(&public_hex(&public)), Ok(public));
        for bad in ["", "abc", &"zz".repeat(32), &public_hex(&public)[2..]] {
            assert!(parse_public_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_signed_message_is_the_checkpoints_json_text() {
        // What a verifier outside Herald checks the signature against.
        let c = Checkpoint::of(&head(), 0);
        let text = format!(
            r#"{{"seq":42,"hash":"{}","at":"1970-01-01T00:00:00.000Z"}}"#,
            "ab".repeat(32)
        );
        assert_eq!(c.message(), text.as_bytes());
        let signed = sign(&key(1), c);
        let sig = Signature::from_bytes(&unhex::<64>(&signed.signature).unwrap());
        assert!(key(1).verifying_key().verify(text.as_bytes(), &sig).is_ok());
    }

    #[test]
    fn an_altered_or_forged_checkpoint_is_refused() {
        let ours = [key(1).verifying_key()];
        let line = sign(&key(1), Checkpoint::of(&head(), 0)).to_line();
        // A longer trail claimed: the seq changed, the signature kept.
        let altered = line.replace("\"seq\":42", "\"seq\":41");
        assert_eq!(
            Signed::parse_verified(&altered, &ours),
            Err(Unsigned::BadSignature)
        );
        // A signature flipped.
        let mut v: Value = serde_json::from_str(&line).unwrap();
        let sig = v["signature"].as_str().unwrap().to_string();
        let flipped = format!("{}{}", if &sig[..1] == "0" { "1" } else { "0" }, &sig[1..]);
        v["signature"] = flipped.into();
        assert_eq!(
            Signed::parse_verified(&v.to_string(), &ours),
            Err(Unsigned::BadSignature)
        );
        // Signed with a key of the forger's own, which the line names.
        let forged = sign(&key(2), Checkpoint::of(&head(), 0)).to_line();
        assert!(matches!(
            Signed::parse_verified(&forged, &ours),
            Err(Unsigned::OtherKey { .. })
        ));
        // Not a checkpoint at all.
        for junk in ["", "{}", "not json", r#"{"checkpoint":1}"#] {
            assert!(matches!(
                Signed::parse_verified(junk, &ours),
                Err(Unsigned::Malformed(_))
            ));
        }
    }
}
