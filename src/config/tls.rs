//! HTTPS and WSS on Herald's one port: the certificate chain and private
//! key (PEM files named by `HERALD_TLS_CERT` and `HERALD_TLS_KEY`), loaded
//! and checked with the rest of the configuration so that a bad file stops
//! start-up (and `check-config`) with its setting named.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

use super::ConfigError;

/// `[tls]`: PEM files; both or neither.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsFile {
    /// The loaded files; `None` serves plain HTTP.
    pub fn resolve(&self) -> Result<Option<Tls>, ConfigError> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok(Some(Tls::load(cert, key)?)),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::invalid(
                "HERALD_TLS_KEY",
                "is required with HERALD_TLS_CERT (tls.cert): the certificate's private key",
            )),
            (None, Some(_)) => Err(ConfigError::invalid(
                "HERALD_TLS_CERT",
                "is required with HERALD_TLS_KEY (tls.key): the certificate chain",
            )),
        }
    }
}

/// A loaded certificate and key, ready to accept connections.
#[derive(Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the chain from `cert` (leaf first) and the key from `key`, and
    /// checks that they belong together. Errors name `HERALD_TLS_CERT` or
    /// `HERALD_TLS_KEY` (never the key's content).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, ConfigError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect())
            .map_err(|e| {
                ConfigError::invalid(
                    "HERALD_TLS_CERT",
                    format!(
                        "cannot read a PEM certificate chain from {}: {e}",
                        cert.display()
                    ),
                )
            })?;
        if chain.is_empty() {
            return Err(ConfigError::invalid(
                "HERALD_TLS_CERT",
                format!("{} holds no certificate", cert.display()),
            ));
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            ConfigError::invalid(
                "HERALD_TLS_KEY",
                format!("cannot read a PEM private key from {}: {e}", key.display()),
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::invalid("HERALD_TLS_CERT", e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| {
                ConfigError::invalid(
                    "HERALD_TLS_KEY",
                    format!("does not fit the certificate in {}: {e}", cert.display()),
                )
            })?;
        // Herald speaks HTTP/1.1 only (src/http/serve.rs).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_or_mismatched_files_name_their_setting() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = Tls::load(&missing, &missing).unwrap_err().to_string();
        assert!(e.contains("HERALD_TLS_CERT"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Tls::load(&empty, &missing).unwrap_err().to_string();
        assert!(
            e.contains("HERALD_TLS_CERT") && e.contains("no certificate"),
            "{e}"
        );
    }
}
