//! Shared files (contract section 14, "Files"), pure: the stored file's
//! description, the content types Herald recognises by their first bytes,
//! the name a file is stored and offered under, and the byte ranges of a
//! download. The upload's streaming is the API's, the bytes' keeping the
//! store's.

mod name;
mod range;
mod signature;

pub use name::{ascii_name, safe_name};
pub use range::{parse_range, Ranged};
pub use signature::{Signature, SNIFF_LEN};

use serde::Serialize;

use crate::clock::Millis;

/// A stored file as its recipients see it (`file_available` and the
/// upload's answer), with who shared it and when it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedFile {
    pub file_id: String,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// Lowercase hex of the SHA-256 of the content.
    pub sha256: String,
    /// The user who shared it in a room; `None` for the backend.
    #[serde(skip)]
    pub sender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(skip)]
    pub created_at: Millis,
    #[serde(skip)]
    pub expires_at: Millis,
}

/// How the names of uploads still arriving begin (in the data directory's
/// files folder, beside the kept files, whose names are file ids).
pub const STAGING_PREFIX: &str = "incoming-";

/// A new file id: a UUID v4, unguessable (the id alone never grants a
/// download, but it should not tell how many files there are either).
pub fn new_file_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `s` has the form of a file id (refused before any read).
pub fn valid_file_id(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

/// An upload received whole: its bytes in a synced file in the data
/// directory's files folder, checked (type, size) and hashed on the way in.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: std::path::PathBuf,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
}
