//! The file witness: each checkpoint appended to `audit.checkpoint_file` as
//! one line and synced to disk before it counts. Kept off the database's
//! disk (another volume, a log shipper, a write-once share), it is the
//! record of the chain's heads that `herald audit verify --checkpoint`
//! reads back.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Appends `line` and a newline to `path` (created when absent) and syncs
/// it. A write that fails part-way (the disk filled) is cut back off, so
/// the next line starts on a line of its own rather than after half a
/// checkpoint.
pub fn append(path: &Path, line: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    let before = f.metadata()?.len();
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_data());
    if written.is_err() {
        // Best effort: a file that cannot shrink (a device, an append-only
        // attribute) keeps what it has.
        let _ = f.set_len(before);
    }
    written
}

/// [`append`] on a blocking thread: the sync to disk may take a while, and
/// the caller is a task of the runtime.
pub async fn append_off_thread(path: PathBuf, line: String) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || append(&path, &line))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_one_per_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.jsonl");
        append(&path, "{\"a\":1}").unwrap();
        append(&path, "{\"a\":2}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
    }

    #[test]
    fn a_full_disk_is_an_error_not_a_panic() {
        // /dev/full answers every write with ENOSPC, as a full disk does.
        let e = append(Path::new("/dev/full"), "{\"a\":1}").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28), "{e}");
    }
}
