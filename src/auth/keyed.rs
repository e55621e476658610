//! The JWT secret's HMAC key schedule, computed once per secret instead of
//! once per token: `jsonwebtoken` builds a fresh HMAC from the secret for
//! every token it checks (two extra SHA compressions, for the inner and
//! outer padded keys), which a reconnect storm pays once per socket. This
//! installs, for the process, a crypto provider that keeps the keyed state
//! of each secret it has seen and hands a copy to each check. Everything
//! else (which algorithms are accepted, the claims' validation, the
//! errors) stays `jsonwebtoken`'s own.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtVerifier};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::RwLock;
use sha2::{Sha256, Sha384, Sha512};

/// Secrets whose keyed state is kept: a server has one (tests a few);
/// past this the memory starts over.
const KEPT: usize = 8;

/// A secret's HMAC, keyed, ready to be copied for one message.
#[derive(Clone)]
enum Keyed {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

impl Keyed {
    fn new(alg: Algorithm, secret: &[u8]) -> Option<Self> {
        // HMAC accepts a key of any length: only another family has none.
        Some(match alg {
            Algorithm::HS256 => Keyed::Hs256(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS384 => Keyed::Hs384(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS512 => Keyed::Hs512(Hmac::new_from_slice(secret).ok()?),
            _ => return None,
        })
    }
}

/// One token's check: a copy of the keyed state.
struct Check {
    alg: Algorithm,
    keyed: Keyed,
}

impl Verifier<Vec<u8>> for Check {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        fn check<M: Mac + Clone>(
            mac: &M,
            msg: &[u8],
            sig: &[u8],
        ) -> std::result::Result<(), signature::Error> {
            let mut mac = mac.clone();
            mac.update(msg);
            // Compared in constant time.
            mac.verify_slice(sig).map_err(signature::Error::from_source)
        }
        match &self.keyed {
            Keyed::Hs256(m) => check(m, msg, sig),
            Keyed::Hs384(m) => check(m, msg, sig),
            Keyed::Hs512(m) => check(m, msg, sig),
        }
    }
}

impl JwtVerifier for Check {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// The keyed states made so far: (algorithm, secret, state).
type Kept = Vec<(Algorithm, Vec<u8>, Keyed)>;

fn kept() -> &'static RwLock<Kept> {
    static KEPT_STATES: OnceLock<RwLock<Kept>> = OnceLock::new();
    KEPT_STATES.get_or_init(RwLock::default)
}

/// The provider's verifier factory: HMAC from the kept keyed state (made
/// on first use), every other algorithm as `jsonwebtoken` makes it.
fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let secret = match key.try_get_hmac_secret() {
        Ok(s) if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => s,
        _ => return (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(alg, key),
    };
    let found = kept()
        .read()
        .iter()
        .find(|(a, s, _)| a == alg && s == secret)
        .map(|(_, _, k)| k.clone());
    let keyed = match found {
        Some(k) => k,
        None => {
            let k = Keyed::new(*alg, secret).ok_or(ErrorKind::InvalidKeyFormat)?;
            let mut kept = kept().write();
            if kept.len() >= KEPT {
                kept.clear();
            }
            kept.push((*alg, secret.to_vec(), k.clone()));
            k
        }
    };
    Ok(Box::new(Check { alg: *alg, keyed }))
}

/// Makes the keyed provider the process's, before the first token is
/// checked. If `jsonwebtoken` already chose its default (a token was
/// checked first), that one stays: slower, never different.
pub fn install() {
    static PROVIDER: OnceLock<CryptoProvider> = OnceLock::new();
    let mut made = false;
    let provider = PROVIDER.get_or_init(|| {
        made = true;
        CryptoProvider {
            signer_factory: rust_crypto::DEFAULT_PROVIDER.signer_factory,
            verifier_factory: verifier,
            jwk_utils: rust_crypto::DEFAULT_PROVIDER.jwk_utils.clone(),
        }
    });
    if made && provider.install_default().is_err() {
        tracing::debug!("the JWT crypto provider was chosen before; keys are not kept");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(alg: Algorithm, secret: &str, msg: &[u8]) -> Vec<u8> {
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        let signer = (rust_crypto::DEFAULT_PROVIDER.signer_factory)(&alg, &key).unwrap();
        signature::Signer::try_sign(&*signer, msg).unwrap()
    }

    #[test]
    fn a_kept_state_checks_as_a_fresh_one_and_never_for_another_secret() {
        let msg = b"header.payload";
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            for _ in 0..2 {
                // The second round takes the kept states.
                for (mine, other) in [
                    ("secret-a-0123456789", "secret-b-0123456789"),
                    ("secret-b-0123456789", "secret-a-0123456789"),
                ] {
                    let key = DecodingKey::from_secret(mine.as_bytes());
                    let check = verifier(&alg, &key).unwrap();
                    assert_eq!(check.algorithm(), alg);
                    assert!(check.verify(msg, &sign(alg, mine, msg)).is_ok());
                    assert!(check.verify(msg, &sign(alg, other, msg)).is_err());
                    assert!(check
                        .verify(b"header.changed", &sign(alg, mine, msg))
                        .is_err());
                }
            }
        }
        assert!(kept()
            .read()
            .iter()
            .any(|(a, s, _)| *a == Algorithm::HS512 && s == b"secret-b-0123456789"));
    }

    #[test]
    fn another_family_is_made_as_jsonwebtoken_makes_it() {
        let key = DecodingKey::from_secret(b"secret");
        // An HMAC secret for an RSA algorithm: jsonwebtoken's own refusal.
        assert!(verifier(&Algorithm::RS256, &key).is_err());
    }
}
