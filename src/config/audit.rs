//! `[audit]`: the key that signs checkpoints of the audit chain's head, how
//! often one is made, and the outside witnesses each one is handed to (a
//! signed webhook, an append-only file). Without a key, a development one
//! is generated in the data directory, like the JWT secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use ed25519_dalek::SigningKey;
use serde::Deserialize;

use super::secrets::development_secret;
use super::values::{duration_or, is_http_url};
use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    pub signing_key: Option<String>,
    pub checkpoint_interval: Option<String>,
    pub checkpoint_webhook: Option<String>,
    pub checkpoint_file: Option<PathBuf>,
}

/// The Ed25519 key checkpoints are signed with. Its `Debug` names only the
/// public half: the private one is never printed or logged.
#[derive(Clone)]
pub struct CheckpointKey(SigningKey);

impl CheckpointKey {
    pub fn signing(&self) -> &SigningKey {
        &self.0
    }
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let public = self.0.verifying_key().to_bytes();
        let hex: String = public.iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "<private key redacted; public key {hex}>")
    }
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub signing_key: CheckpointKey,
    /// True when the key was generated for development.
    pub development_key: bool,
    pub checkpoint_interval: Duration,
    /// Where each checkpoint is POSTed, signed like the escalation webhook.
    pub checkpoint_webhook: Option<String>,
    /// Where each checkpoint is appended as one line.
    pub checkpoint_file: Option<PathBuf>,
}

/// The setting (and its variable) the key comes from, as errors name it.
const KEY_SETTING: &str = "audit.signing_key (HERALD_AUDIT_SIGNING_KEY)";

/// The development key's file in the data directory.
pub const DEVELOPMENT_KEY_FILE: &str = "dev-audit-signing-key";

/// An Ed25519 private key (its 32-byte seed) from 64 hex digits or from
/// base64 (standard or URL-safe, padded or not). The error never repeats
/// the text: it is a secret, even when mistyped.
pub fn parse_key(text: &str) -> Result<CheckpointKey, String> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex digits"))
            .collect()
    } else {
        let url_safe: String = text
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(url_safe)
            .map_err(|_| {
                "is neither 64 hex digits nor base64 (generate one with `openssl rand -hex 32`)"
                    .to_string()
            })?
    };
    let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "must be 32 bytes (an Ed25519 private key), not {}: generate one with `openssl rand -hex 32`",
            bytes.len()
        )
    })?;
    Ok(CheckpointKey(SigningKey::from_bytes(&seed)))
}

impl AuditFile {
    /// `data_dir` keeps the development key when none is configured;
    /// `webhook_signed` says whether the escalation webhook's secret, which
    /// signs the checkpoint webhook too, is set.
    pub fn resolve(
        self,
        data_dir: &Path,
        webhook_signed: bool,
    ) -> Result<AuditConfig, ConfigError> {
        let (signing_key, development_key) = match self.signing_key.filter(|k| !k.trim().is_empty())
        {
            Some(k) => (
                parse_key(&k).map_err(|m| ConfigError::invalid(KEY_SETTING, m))?,
                false,
            ),
            None => {
                let generated = development_secret(data_dir, DEVELOPMENT_KEY_FILE)?;
                let key = parse_key(generated.expose()).map_err(|m| {
                    ConfigError::invalid(
                        KEY_SETTING,
                        format!(
                            "the development key in {} {m}",
                            data_dir.join(DEVELOPMENT_KEY_FILE).display()
                        ),
                    )
                })?;
                (key, true)
            }
        };
        let checkpoint_interval = duration_or(
            "audit.checkpoint_interval",
            &self.checkpoint_interval,
            Duration::from_secs(60),
        )?;
        if checkpoint_interval < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "audit.checkpoint_interval",
                "must be at least 1s",
            ));
        }
        let checkpoint_webhook = match self.checkpoint_webhook.filter(|u| !u.trim().is_empty()) {
            None => None,
            Some(url) => {
                if !is_http_url(&url) {
                    return Err(ConfigError::invalid(
                        "audit.checkpoint_webhook",
                        format!("{url:?} is not an http:// or https:// URL"),
                    ));
                }
                if !webhook_signed {
                    return Err(ConfigError::invalid(
                        "audit.checkpoint_webhook",
                        "a webhook is signed: set escalation.webhook_secret or HERALD_ESCALATION_WEBHOOK_SECRET",
                    ));
                }
                Some(url.trim().to_string())
            }
        };
        let checkpoint_file = self.checkpoint_file.filter(|p| !p.as_os_str().is_empty());
        Ok(AuditConfig {
            signing_key,
            development_key,
            checkpoint_interval,
            checkpoint_webhook,
            checkpoint_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(file: AuditFile, signed: bool) -> Result<AuditConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        file.resolve(dir.path(), signed).map_err(|e| e.to_string())
    }

    const HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    #[test]
    fn a_key_reads_as_hex_or_base64_and_is_the_same_key() {
        let hex = parse_key(HEX).unwrap();
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&HEX[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        for encoded in [
            base64::engine::general_purpose::STANDARD.encode(&bytes),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes),
        ] {
            let b = parse_key(&encoded).unwrap();
            assert_eq!(b.signing().to_bytes(), hex.signing().to_bytes());
        }
    }

    #[test]
    fn a_wrong_or_malformed_key_is_a_clear_error_that_never_repeats_it() {
        for bad in ["not a key!", &HEX[..62], "c2hvcnQ", &format!("{HEX}00")] {
            let e = resolve(
                AuditFile {
                    signing_key: Some(bad.to_string()),
                    ..Default::default()
                },
                false,
            )
            .unwrap_err();
            assert!(e.contains("audit.signing_key"), "{e}");
            assert!(!e.contains(bad), "{e} repeats the key");
        }
    }

    #[test]
    fn without_a_key_one_is_generated_once_and_debug_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = AuditFile::default().resolve(dir.path(), false).unwrap();
        let b = AuditFile::default().resolve(dir.path(), false).unwrap();
        assert!(a.development_key);
        assert_eq!(
            a.signing_key.signing().to_bytes(),
            b.signing_key.signing().to_bytes()
        );
        let seed = std::fs::read_to_string(dir.path().join(DEVELOPMENT_KEY_FILE)).unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains(seed.trim()), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        assert_eq!(a.checkpoint_interval, Duration::from_secs(60));
    }

    #[test]
    fn the_webhook_needs_a_url_and_the_webhook_secret() {
        let file = |url: &str| AuditFile {
            checkpoint_webhook: Some(url.into()),
            ..Default::default()
        };
        assert!(resolve(file("https://w.example/cp"), false)
            .unwrap_err()
            .contains("webhook_secret"));
        assert!(resolve(file("ftp://w.example/cp"), true)
            .unwrap_err()
            .contains("audit.checkpoint_webhook"));
        let c = resolve(file("https://w.example/cp"), true).unwrap();
        assert_eq!(
            c.checkpoint_webhook.as_deref(),
            Some("https://w.example/cp")
        );
        let e = resolve(
            AuditFile {
                checkpoint_interval: Some("0s".into()),
                ..Default::default()
            },
            false,
        )
        .unwrap_err();
        assert!(e.contains("audit.checkpoint_interval"), "{e}");
    }
}
