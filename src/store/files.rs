//! Shared files: their description, their recipients and their bytes,
//! kept until retention. A file is kept whole or not at all, and a
//! recipient reads it only while it is kept.

use std::ops::Range;
use std::path::Path;

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::StoreError;
use crate::clock::Millis;
use crate::files::SharedFile;

/// A file's bytes, a piece at a time (never the whole file in memory).
pub type Content = BoxStream<'static, Result<Vec<u8>, StoreError>>;

/// Durable shared files.
#[async_trait]
pub trait Files: Send + Sync + 'static {
    /// Keeps `file` for `recipients`, its bytes taken from `content`: a
    /// complete, synced file the caller wrote in the data directory. The
    /// store moves or copies it; the caller removes whatever is left at
    /// `content` afterwards. On error nothing is kept.
    async fn keep_file(
        &self,
        file: &SharedFile,
        recipients: &[String],
        content: &Path,
    ) -> Result<(), StoreError>;

    /// `file_id` as `user` may read it: one of its recipients, and kept at
    /// `now` (not past `expires_at`). Anyone else reads `None`.
    async fn file_for(
        &self,
        file_id: &str,
        user: &str,
        now: Millis,
    ) -> Result<Option<SharedFile>, StoreError>;

    /// The bytes `range` of a kept file (within its size), in order.
    async fn file_content(&self, file_id: &str, range: Range<u64>) -> Result<Content, StoreError>;

    /// Marks `user`'s first download of `file_id`; true when it is the first.
    async fn file_downloaded(
        &self,
        file_id: &str,
        user: &str,
        at: Millis,
    ) -> Result<bool, StoreError>;

    /// The files kept at `now` that `user` has not downloaded, oldest first:
    /// what a new connection is told of.
    async fn pending_files(&self, user: &str, now: Millis) -> Result<Vec<SharedFile>, StoreError>;

    /// [`Files::pending_files`] of each of `users`, in their order: the
    /// files a reconnect storm's sockets are told of, read together. One
    /// read where the engine can; this default reads them one by one.
    async fn pending_files_of(
        &self,
        users: &[String],
        now: Millis,
    ) -> Result<Vec<Vec<SharedFile>>, StoreError> {
        let mut files = Vec::with_capacity(users.len());
        for user in users {
            files.push(self.pending_files(user, now).await?);
        }
        Ok(files)
    }

    /// Removes every file expired at `now`, rows and bytes; how many.
    async fn purge_files(&self, now: Millis) -> Result<u64, StoreError>;

    /// Removes the bytes this store keeps beside its rows that no file's
    /// row refers to (what a crash leaves between writing a file's bytes
    /// and committing its row, or between a purge's rows and its bytes);
    /// how many. Never the bytes of a file whose row exists, expired or
    /// not. A store that keeps the bytes in its rows has none.
    async fn sweep_unreferenced(&self) -> Result<u64, StoreError>;
}
