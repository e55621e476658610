//! `[files]`: what the backend and room members may share as files, how
//! long a shared file is kept for its recipients, and how many requests a
//! user's token may make of the file routes.

use std::time::Duration;

use serde::Deserialize;

use super::limits::{RateLimitConfig, RateLimitFile};
use super::values::duration_or;
use super::ConfigError;

/// The default largest file: a multi-frame DICOM series item or a scanned
/// report fits, a whole study does not (it belongs in the PACS).
const DEFAULT_MAX_SIZE: u64 = 25 * 1024 * 1024;

/// The default types: reports (PDF), key images (PNG, JPEG) and single
/// DICOM objects.
const DEFAULT_TYPES: [&str; 4] = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "application/dicom",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesFile {
    pub max_size: Option<u64>,
    pub allowed_types: Option<Vec<String>>,
    pub retention: Option<String>,
    #[serde(default)]
    pub rate_limit: RateLimitFile,
}

#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// The largest file accepted, in bytes: an upload is cut off there.
    pub max_size: u64,
    /// Content types accepted, each checked against the file's first bytes.
    pub allowed_types: Vec<String>,
    /// How long a shared file can be downloaded and is caught up.
    pub retention: Duration,
    /// Requests per user to the routes a user's JWT opens (a room share, a
    /// download), on each node.
    pub rate_limit: RateLimitConfig,
}

impl FilesFile {
    pub fn resolve(&self) -> Result<FilesConfig, ConfigError> {
        let max_size = self.max_size.unwrap_or(DEFAULT_MAX_SIZE);
        if max_size == 0 || max_size > 1024 * 1024 * 1024 {
            return Err(ConfigError::invalid(
                "files.max_size",
                format!("{max_size} is not between 1 byte and 1 GiB"),
            ));
        }
        let allowed_types: Vec<String> = match &self.allowed_types {
            None => DEFAULT_TYPES.iter().map(|t| t.to_string()).collect(),
            Some(types) => types.iter().map(|t| t.to_ascii_lowercase()).collect(),
        };
        if let Some(t) = allowed_types
            .iter()
            .find(|t| crate::files::Signature::of(t).is_none())
        {
            return Err(ConfigError::invalid(
                "files.allowed_types",
                format!(
                    "{t} has no known signature (one of {})",
                    DEFAULT_TYPES.join(", ")
                ),
            ));
        }
        let retention = duration_or(
            "files.retention",
            &self.retention,
            Duration::from_secs(7 * 24 * 3600),
        )?;
        if retention < Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "files.retention",
                format!("{retention:?} is under a minute"),
            ));
        }
        // A viewer reading a PDF or a DICOM object by ranges asks for it in
        // pieces (pdf.js: 64 KiB each, about 400 requests for a 25 MiB
        // file): the burst takes a whole file at once, the rate a steady read.
        let rate_limit = self.rate_limit.resolve("files.rate_limit", 100, 1000)?;
        Ok(FilesConfig {
            max_size,
            allowed_types,
            retention,
            rate_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_contracts_and_unknown_types_are_refused() {
        let c = FilesFile::default().resolve().unwrap();
        assert_eq!(c.max_size, 25 * 1024 * 1024);
        assert_eq!(c.allowed_types.len(), 4);
        assert_eq!(c.retention, Duration::from_secs(7 * 24 * 3600));
        assert_eq!((c.rate_limit.per_second, c.rate_limit.burst), (100, 1000));
        let f = FilesFile {
            allowed_types: Some(vec!["text/html".into()]),
            ..FilesFile::default()
        };
        let e = f.resolve().unwrap_err().to_string();
        assert!(e.contains("files.allowed_types"), "{e}");
        let f = FilesFile {
            max_size: Some(0),
            ..FilesFile::default()
        };
        assert!(f.resolve().is_err());
        let f = FilesFile {
            rate_limit: RateLimitFile {
                per_second: Some(0),
                burst: None,
            },
            ..FilesFile::default()
        };
        let e = f.resolve().unwrap_err().to_string();
        assert!(e.contains("files.rate_limit"), "{e}");
    }
}
