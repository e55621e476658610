//! `herald backup FILE`: a consistent copy of the SQLite store, taken while
//! the server runs. SQLite's `VACUUM INTO` reads one snapshot (WAL readers
//! never block the writer, nor it them), so the copy holds every commit up
//! to a single instant and none after; it is checked before it is kept.

use std::path::{Path, PathBuf};

/// What a backup did.
#[derive(Debug, PartialEq, Eq)]
pub struct Copied {
    pub notifications: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no store at {0} (is the data directory right?)")]
    NoStore(PathBuf),
    #[error("{0} exists already: a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("the copy at {0} failed its integrity check: {1}")]
    Corrupt(PathBuf, String),
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Copies the store of `data_dir` to `dest`, which must not exist.
pub fn sqlite(data_dir: &Path, dest: &Path) -> Result<Copied, BackupError> {
    let source = data_dir.join("herald.db");
    if !source.is_file() {
        return Err(BackupError::NoStore(source));
    }
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    let conn = rusqlite::Connection::open_with_flags(
        &source,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let dest_text = dest.to_string_lossy();
    conn.execute("VACUUM INTO ?1", [dest_text.as_ref()])?;
    drop(conn);
    let copy =
        rusqlite::Connection::open_with_flags(dest, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        drop(copy);
        let _ = std::fs::remove_file(dest);
        return Err(BackupError::Corrupt(dest.to_path_buf(), check));
    }
    let notifications: u64 =
        copy.query_row("SELECT COUNT(*) FROM notifications", [], |r| r.get(0))?;
    Ok(Copied {
        notifications,
        bytes: std::fs::metadata(dest)?.len(),
    })
}
