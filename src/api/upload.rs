//! An upload's multipart body (one file in the field `file`), read a chunk
//! at a time into a staging file in the data directory while it is hashed,
//! measured and its first bytes checked against the declared type: never
//! the whole file in memory, and reading stops at `files.max_size`. The
//! staging file is removed on every refusal and after the store kept (or
//! refused) the file, so a refused upload leaves nothing behind.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use crate::config::FilesConfig;
use crate::files::{safe_name, Received, Signature, SNIFF_LEN, STAGING_PREFIX};

/// The most bytes of fields other than `file` an upload may carry.
const MAX_OTHER_FIELDS: usize = 64 * 1024;

/// A received upload and its staging file, removed when this is dropped
/// (a store that kept the file moved or copied it first).
pub struct Staged {
    pub received: Received,
}

impl Drop for Staged {
    fn drop(&mut self) {
        remove(&self.received.path);
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != ErrorKind::NotFound {
            tracing::warn!(error = %e, "could not remove an upload's staging file");
        }
    }
}

/// A staging file being written, removed unless handed over as [`Staged`].
struct Incoming {
    path: PathBuf,
    file: Option<tokio::fs::File>,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if self.file.is_some() {
            remove(&self.path);
        }
    }
}

/// The answer to a failed write of an upload: a full disk (or quota) is
/// 507, anything else 503; nothing is stored either way.
pub fn write_failed(e: &std::io::Error) -> ApiError {
    if matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded) {
        tracing::error!(error = %e, "an upload found the disk full");
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the server has no room for this file; nothing was stored",
        )
    } else {
        tracing::error!(error = %e, "an upload could not be written");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the file could not be written; nothing was stored",
        )
    }
}

fn invalid_body() -> ApiError {
    ApiError::bad_request(
        "invalid_body",
        "the multipart body is malformed or was cut short; nothing was stored",
    )
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the file exceeds files.max_size ({max} bytes)"),
    )
}

fn wrong_type(declared: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_type",
        format!("{declared} is not an allowed type, or the file's content is not of it"),
    )
}

/// The next chunk of `field`, waiting at most `idle` for it.
async fn chunk(
    field: &mut Field<'_>,
    idle: Duration,
) -> Result<Option<axum::body::Bytes>, ApiError> {
    match tokio::time::timeout(idle, field.chunk()).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the upload stalled for {idle:?}; nothing was stored"),
        )),
        Ok(Err(_)) => Err(invalid_body()),
        Ok(Ok(c)) => Ok(c),
    }
}

/// Room for the multipart envelope around the file (boundaries, headers,
/// small fields) in a body whose declared length is checked.
const ENVELOPE: u64 = MAX_OTHER_FIELDS as u64 + 16 * 1024;

/// The multipart body, or the refusal of a body that is not one.
pub fn multipart(m: Result<Multipart, MultipartRejection>) -> Result<Multipart, ApiError> {
    m.map_err(|_| {
        ApiError::bad_request(
            "invalid_body",
            "the body must be multipart/form-data with the file in the field `file`",
        )
    })
}

/// Reads and throws away what is left of a refused upload, at most `cap`
/// bytes, so that the client reads the refusal instead of a connection
/// reset (closing a socket with unread bytes resets it). Past `cap` the
/// connection is closed after the answer.
pub async fn discard(multipart: &mut Multipart, cap: u64, idle: Duration) {
    let mut read = 0u64;
    while let Ok(Ok(Some(mut field))) = tokio::time::timeout(idle, multipart.next_field()).await {
        while let Ok(Some(c)) = chunk(&mut field, idle).await {
            read += c.len() as u64;
            if read > cap {
                return;
            }
        }
    }
}

/// Reads the body into a staging file in `staging`, with `rules`' limits;
/// `idle` is the longest wait for the next chunk. A body declared larger
/// than the limit is refused before a byte of it is read; one that grows
/// past it is refused at the limit. Any other refusal reads the rest (up to
/// the limit) before answering.
pub async fn receive(
    multipart: &mut Multipart,
    declared: Option<u64>,
    staging: &Path,
    rules: &FilesConfig,
    idle: Duration,
) -> Result<Staged, ApiError> {
    if declared.is_some_and(|n| n > rules.max_size + ENVELOPE) {
        return Err(too_large(rules.max_size));
    }
    match read(multipart, staging, rules, idle).await {
        Ok(staged) => Ok(staged),
        Err(e) => {
            if e.status != StatusCode::PAYLOAD_TOO_LARGE && e.status != StatusCode::REQUEST_TIMEOUT
            {
                discard(multipart, rules.max_size + ENVELOPE, idle).await;
            }
            Err(e)
        }
    }
}

async fn read(
    multipart: &mut Multipart,
    staging: &Path,
    rules: &FilesConfig,
    idle: Duration,
) -> Result<Staged, ApiError> {
    let mut staged = None;
    let mut other = 0usize;
    loop {
        let next = tokio::time::timeout(idle, multipart.next_field()).await;
        let mut field = match next {
            Err(_) => return Err(chunk_timeout(idle)),
            Ok(Err(_)) => return Err(invalid_body()),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(f))) => f,
        };
        if field.name() != Some("file") {
            while let Some(c) = chunk(&mut field, idle).await? {
                other += c.len();
                if other > MAX_OTHER_FIELDS {
                    return Err(invalid_body());
                }
            }
            continue;
        }
        if staged.is_some() {
            return Err(ApiError::bad_request(
                "invalid_body",
                "one file per upload, in the field `file`",
            ));
        }
        staged = Some(stage(field, staging, rules, idle).await?);
    }
    staged.ok_or_else(|| {
        ApiError::bad_request("missing_file", "the body has no file in the field `file`")
    })
}

fn chunk_timeout(idle: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        format!("the upload stalled for {idle:?}; nothing was stored"),
    )
}

/// The field's declared type, if allowed (parameters dropped, lowercase).
fn declared_type(field: &Field<'_>, rules: &FilesConfig) -> Result<String, ApiError> {
    let declared = field
        .content_type()
        .unwrap_or("application/octet-stream")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if rules.allowed_types.contains(&declared) {
        Ok(declared)
    } else {
        Err(wrong_type(&declared))
    }
}

async fn stage(
    mut field: Field<'_>,
    staging: &Path,
    rules: &FilesConfig,
    idle: Duration,
) -> Result<Staged, ApiError> {
    let name = field
        .file_name()
        .and_then(safe_name)
        .ok_or_else(|| ApiError::bad_request("invalid_name", "the file needs a usable name"))?;
    let content_type = declared_type(&field, rules)?;
    let signature = Signature::of(&content_type).ok_or_else(|| wrong_type(&content_type))?;
    tokio::fs::create_dir_all(staging)
        .await
        .map_err(|e| write_failed(&e))?;
    let path = staging.join(format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4()));
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| write_failed(&e))?;
    let mut incoming = Incoming {
        path,
        file: Some(file),
    };
    let mut written = Written::new(rules.max_size, signature, &content_type);
    while let Some(c) = chunk(&mut field, idle).await? {
        written.take(&c)?;
        let f = incoming.file.as_mut().expect("open until handed over");
        f.write_all(&c).await.map_err(|e| write_failed(&e))?;
    }
    let sha256 = written.finish()?;
    let f = incoming.file.as_mut().expect("open until handed over");
    f.sync_all().await.map_err(|e| write_failed(&e))?;
    drop(incoming.file.take());
    Ok(Staged {
        received: Received {
            path: std::mem::take(&mut incoming.path),
            name,
            size: written.size,
            content_type,
            sha256,
        },
    })
}

/// What has arrived of a file: its size under the limit, its hash, and its
/// first bytes until they are checked.
struct Written<'t> {
    max: u64,
    size: u64,
    hash: Sha256,
    head: Vec<u8>,
    signature: Signature,
    checked: bool,
    declared: &'t str,
}

impl<'t> Written<'t> {
    fn new(max: u64, signature: Signature, declared: &'t str) -> Self {
        Self {
            max,
            size: 0,
            hash: Sha256::new(),
            head: Vec::with_capacity(SNIFF_LEN),
            signature,
            checked: false,
            declared,
        }
    }

    /// Takes the next chunk; refuses past the limit or once the first
    /// bytes show another type.
    fn take(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.size += chunk.len() as u64;
        if self.size > self.max {
            return Err(too_large(self.max));
        }
        self.hash.update(chunk);
        if !self.checked {
            let want = SNIFF_LEN - self.head.len();
            self.head.extend_from_slice(&chunk[..want.min(chunk.len())]);
            if self.head.len() == SNIFF_LEN {
                self.check()?;
            }
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), ApiError> {
        self.checked = true;
        if self.signature.matches(&self.head) {
            Ok(())
        } else {
            Err(wrong_type(self.declared))
        }
    }

    /// The hash, once the whole file arrived (and its type was checked).
    fn finish(&mut self) -> Result<String, ApiError> {
        if self.size == 0 {
            return Err(ApiError::bad_request("empty_file", "the file is empty"));
        }
        if !self.checked {
            self.check()?;
        }
        Ok(format!("{:x}", std::mem::take(&mut self.hash).finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_stops_reading_and_the_first_bytes_must_match() {
        let mut w = Written::new(10, Signature::Pdf, "application/pdf");
        w.take(b"%PDF-1.7").unwrap();
        let e = w.take(b"abc").unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);

        let mut w = Written::new(1000, Signature::Png, "image/png");
        let e = w.take(&[b'x'; 200]).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

        // Shorter than the sniffed length: checked at the end.
        let mut w = Written::new(1000, Signature::Pdf, "application/pdf");
        w.take(b"%PD").unwrap();
        w.take(b"F-1").unwrap();
        assert_eq!(
            w.finish().unwrap(),
            format!("{:x}", Sha256::digest(b"%PDF-1"))
        );

        let mut w = Written::new(1000, Signature::Dicom, "application/dicom");
        w.take(&[0u8; 100]).unwrap();
        assert_eq!(
            w.finish().unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn a_full_disk_is_507_and_another_failure_503() {
        let full = std::io::Error::from(ErrorKind::StorageFull);
        assert_eq!(write_failed(&full).status, StatusCode::INSUFFICIENT_STORAGE);
        let other = std::io::Error::from(ErrorKind::PermissionDenied);
        assert_eq!(write_failed(&other).status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn writing_to_a_full_disk_fails_with_storage_full() {
        // /dev/full answers every write with ENOSPC, as a full disk does.
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .await
            .unwrap();
        let e = async {
            f.write_all(&[0u8; 4096]).await?;
            f.flush().await
        }
        .await
        .unwrap_err();
        assert_eq!(write_failed(&e).status, StatusCode::INSUFFICIENT_STORAGE);
    }
}
