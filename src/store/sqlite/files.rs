//! The embedded store's shared files: rows in `files` and
//! `file_recipients`, written by the writer thread like every write, and
//! the bytes as one file each in the data directory's `files/` folder,
//! named by the file id. The bytes are linked in place before the rows are
//! written, and removed again if the rows fail: a row always has its bytes.
//! A crash can leave bytes without a row (after the link, before the
//! commit; or a purge's rows gone, its bytes not yet): the sweep removes
//! those, and waits for every keep in progress so that it never sees
//! bytes whose row is about to commit.

use std::collections::HashSet;
use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::file_rows::FileWrite;
use super::writer::Write;
use super::SqliteStore;
use crate::clock::Millis;
use crate::files::{valid_file_id, SharedFile};
use crate::store::rows::{self, SELECT_FILE};
use crate::store::{Content, Files, StoreError};

/// The size of one read of a download.
const PIECE: usize = 64 * 1024;

impl SqliteStore {
    /// Where the bytes of `file_id` are kept.
    fn file_path(&self, file_id: &str) -> PathBuf {
        self.files_dir.join(file_id)
    }

    async fn file_write(&self, op: FileWrite) -> Result<u64, StoreError> {
        self.write(|reply| Write::Files { op, reply }).await
    }
}

#[async_trait]
impl Files for SqliteStore {
    async fn keep_file(
        &self,
        file: &SharedFile,
        recipients: &[String],
        content: &Path,
    ) -> Result<(), StoreError> {
        // Held from the link to the row's commit (or the link's removal):
        // the sweep takes it whole, so it never sees bytes in between.
        let _keeping = self.keeping.read().await;
        let kept = self.file_path(&file.file_id);
        // The upload was written in the data directory: a link, not a copy
        // (the caller removes the staging name). Unlike a rename it never
        // replaces a file kept under the same id.
        tokio::fs::hard_link(content, &kept)
            .await
            .map_err(StoreError::from)?;
        let keep = FileWrite::Keep {
            file: file.clone(),
            recipients: recipients.to_vec(),
        };
        if let Err(e) = self.file_write(keep).await {
            let _ = tokio::fs::remove_file(&kept).await;
            return Err(e);
        }
        Ok(())
    }

    async fn file_for(
        &self,
        file_id: &str,
        user: &str,
        now: Millis,
    ) -> Result<Option<SharedFile>, StoreError> {
        let sql = format!(
            "{SELECT_FILE} JOIN file_recipients r ON r.file_id = f.file_id \
             WHERE f.file_id = ? AND r.user_id = ? AND f.expires_at > ?"
        );
        let row = sqlx::query(&sql)
            .bind(file_id)
            .bind(user)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| rows::shared_file(&r)).transpose()
    }

    async fn file_content(&self, file_id: &str, range: Range<u64>) -> Result<Content, StoreError> {
        let mut f = tokio::fs::File::open(self.file_path(file_id))
            .await
            .map_err(StoreError::from)?;
        f.seek(SeekFrom::Start(range.start))
            .await
            .map_err(StoreError::from)?;
        let left = range.end.saturating_sub(range.start);
        let pieces = futures::stream::try_unfold((f, left), |(mut f, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let mut buf = vec![0u8; PIECE.min(left as usize)];
            let n = f.read(&mut buf).await.map_err(StoreError::from)?;
            if n == 0 {
                return Err(StoreError::Corrupt(
                    "a kept file is shorter than its size".into(),
                ));
            }
            buf.truncate(n);
            Ok(Some((buf, (f, left - n as u64))))
        });
        Ok(Box::pin(pieces))
    }

    async fn file_downloaded(
        &self,
        file_id: &str,
        user: &str,
        at: Millis,
    ) -> Result<bool, StoreError> {
        let first = FileWrite::Downloaded {
            file_id: file_id.into(),
            user: user.into(),
            at,
        };
        Ok(self.file_write(first).await? == 1)
    }

    async fn pending_files(&self, user: &str, now: Millis) -> Result<Vec<SharedFile>, StoreError> {
        let sql = format!(
            "{SELECT_FILE} JOIN file_recipients r ON r.file_id = f.file_id \
             WHERE r.user_id = ? AND r.downloaded_at IS NULL AND f.expires_at > ? \
             ORDER BY f.created_at, f.file_id"
        );
        let found = sqlx::query(&sql)
            .bind(user)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::shared_file).collect()
    }

    async fn purge_files(&self, now: Millis) -> Result<u64, StoreError> {
        let expired = sqlx::query("SELECT file_id FROM files WHERE expires_at <= ?")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        let ids = expired
            .iter()
            .map(|r| rows::Columns::text(r, "file_id"))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let paths: Vec<PathBuf> = ids.iter().map(|id| self.file_path(id)).collect();
        let n = self.file_write(FileWrite::Forget { ids }).await?;
        // Rows first: a crash between leaves bytes nobody can read, never a
        // row without its bytes.
        for p in paths {
            if let Err(e) = tokio::fs::remove_file(&p).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, "could not remove an expired file's bytes");
                }
            }
        }
        Ok(n)
    }

    async fn sweep_unreferenced(&self) -> Result<u64, StoreError> {
        let _alone = self.keeping.write().await;
        let found = sqlx::query("SELECT file_id FROM files")
            .fetch_all(&self.pool)
            .await?;
        let kept = found
            .iter()
            .map(|r| rows::Columns::text(r, "file_id"))
            .collect::<Result<HashSet<_>, _>>()?;
        let mut entries = tokio::fs::read_dir(&self.files_dir)
            .await
            .map_err(StoreError::from)?;
        let mut removed = 0;
        while let Some(e) = entries.next_entry().await.map_err(StoreError::from)? {
            let name = e.file_name();
            // Only what this store names: a file id. Uploads' staging files
            // are the API's, anything else an operator's.
            let Some(id) = name.to_str().filter(|n| valid_file_id(n)) else {
                continue;
            };
            if kept.contains(id) {
                continue;
            }
            match tokio::fs::remove_file(e.path()).await {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(error = %err, "could not remove a file's unreferenced bytes")
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed shared files' bytes that no row refers to");
        }
        Ok(removed)
    }
}
