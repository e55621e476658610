//! Shared files (contract section 14, "Files"): a file kept for a user or a
//! study room's members, `file_available` to their sockets now and at each
//! later connection until they download it or it expires, downloads by
//! recipients only, and the audit trail's `file_shared` and
//! `file_downloaded` records.

use std::ops::Range;
use std::path::PathBuf;

use serde_json::Value;

use super::{Hub, HubError};
use crate::auth::{AuthError, Identity};
use crate::broker::{Message, Target};
use crate::clock::{rfc3339, Millis};
use crate::connections::connection::Handle;
use crate::connections::outbox;
use crate::files::{Received, SharedFile, STAGING_PREFIX};
use crate::protocol;
use crate::store::{Content, FILES_DIR};
use crate::trail::record;

/// How long a staging file may go unwritten before the purge takes it for
/// a dead upload's. An upload in flight writes at least once per
/// `http.body_timeout` (or is refused and removes its file), and is kept
/// within minutes of its last byte; an hour is far past both.
pub const STAGING_STALE_MS: Millis = 60 * 60 * 1000;

/// Whether the directory entry `e` was last written at or before `at`
/// (an entry whose time cannot be read is not).
async fn written_by(e: &tokio::fs::DirEntry, at: Millis) -> bool {
    let Ok(modified) = e.metadata().await.and_then(|m| m.modified()) else {
        return false;
    };
    modified
        .duration_since(std::time::UNIX_EPOCH)
        .is_ok_and(|d| (d.as_millis() as Millis) <= at)
}

/// The `file_available` payload of `file`.
fn available(file: &SharedFile) -> Value {
    let mut v = serde_json::to_value(file).unwrap_or_default();
    v["expiresAt"] = rfc3339(file.expires_at).into();
    v
}

impl Hub {
    /// Where uploads are written while they arrive: beside the kept files,
    /// so that keeping one in the embedded store is a rename.
    pub fn files_staging(&self) -> PathBuf {
        self.config.data_dir.join(FILES_DIR)
    }

    /// Removes what a crash leaves in the files folder: the staging files
    /// of uploads last written at or before `staging_before` (at start,
    /// when no upload is in flight, every one: `Millis::MAX`), and the
    /// bytes the store keeps that no file's row refers to. Never the bytes
    /// of a kept file.
    pub async fn sweep_files(&self, staging_before: Millis) {
        self.sweep_staging(staging_before).await;
        if let Err(e) = self.store.sweep_unreferenced().await {
            tracing::warn!(error = %e, "could not sweep the files folder; tried again at the next purge");
        }
    }

    async fn sweep_staging(&self, before: Millis) {
        let Ok(mut entries) = tokio::fs::read_dir(self.files_staging()).await else {
            return;
        };
        while let Ok(Some(e)) = entries.next_entry().await {
            if !e.file_name().to_string_lossy().starts_with(STAGING_PREFIX) {
                continue;
            }
            if before != Millis::MAX && !written_by(&e, before).await {
                continue;
            }
            if let Err(err) = tokio::fs::remove_file(e.path()).await {
                if err.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %err, "could not remove a stale upload");
                }
            }
        }
    }

    /// The identity of a JWT presented as `Authorization: Bearer` (room
    /// shares, downloads): a valid token of a session still alive.
    pub async fn bearer(&self, token: &str) -> Result<Identity, AuthError> {
        let identity = self.verifier.verify(token)?;
        self.owners
            .check(&*self.store, &identity, self.now())
            .await?;
        Ok(identity)
    }

    /// Whether `user` is in `room` now (has a socket in it, on any node):
    /// only members share files in a room.
    pub async fn in_room(&self, room: &str, user: &str) -> bool {
        self.room_members(room)
            .await
            .value
            .iter()
            .any(|m| m.user_id == user)
    }

    /// Keeps `received` for `user` (from the backend) and tells the user's
    /// sockets.
    pub async fn share_file_with_user(
        &self,
        user: &str,
        received: &Received,
    ) -> Result<SharedFile, HubError> {
        self.share_file(received, vec![user.to_string()], None, None)
            .await
    }

    /// Keeps `received`, shared by `sender` in `room`, for the room's
    /// members now (the sender among them) and tells them.
    pub async fn share_file_in_room(
        &self,
        sender: &str,
        room: &str,
        received: &Received,
    ) -> Result<SharedFile, HubError> {
        let mut members: Vec<String> = self
            .room_members(room)
            .await
            .value
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        if !members.iter().any(|m| m == sender) {
            members.push(sender.to_string());
        }
        self.share_file(received, members, Some(sender), Some(room))
            .await
    }

    async fn share_file(
        &self,
        received: &Received,
        recipients: Vec<String>,
        sender: Option<&str>,
        room: Option<&str>,
    ) -> Result<SharedFile, HubError> {
        let now = self.now();
        let file = SharedFile {
            file_id: crate::files::new_file_id(),
            name: received.name.clone(),
            size: received.size,
            content_type: received.content_type.clone(),
            sha256: received.sha256.clone(),
            sender: sender.map(str::to_string),
            room: room.map(str::to_string),
            created_at: now,
            expires_at: now + self.config.files.retention.as_millis() as i64,
        };
        self.store
            .keep_file(&file, &recipients, &received.path)
            .await?;
        self.store.record(record::file_shared(
            &file.file_id,
            sender,
            &recipients,
            &file.sha256,
            file.size,
            room,
            now,
        ));
        let message = Message::Event {
            name: protocol::FILE_AVAILABLE.into(),
            data: Some(available(&file)),
        };
        self.broker
            .deliver(&Target::Users(recipients), &message)
            .await;
        Ok(file)
    }

    /// `file_id` as `user` may download it now; `None` for anyone but a
    /// recipient, and once it expired.
    pub async fn file_for(
        &self,
        file_id: &str,
        user: &str,
    ) -> Result<Option<SharedFile>, HubError> {
        Ok(self.store.file_for(file_id, user, self.now()).await?)
    }

    /// The bytes `range` of `file` for its recipient `user`: recorded as a
    /// download (`file_downloaded`), which ends its catch-up.
    pub async fn download(
        &self,
        file: &SharedFile,
        user: &str,
        range: Range<u64>,
    ) -> Result<Content, HubError> {
        let content = self.store.file_content(&file.file_id, range).await?;
        let now = self.now();
        self.store.record(record::file_downloaded(
            &file.file_id,
            user,
            &file.sha256,
            now,
        ));
        if let Err(e) = self.store.file_downloaded(&file.file_id, user, now).await {
            tracing::warn!(error = %e, "could not mark a file downloaded; it will be offered again");
        }
        Ok(content)
    }

    /// Tells a new socket of every file kept for its user that the user has
    /// not downloaded, oldest first.
    pub async fn catch_up_files(&self, h: &Handle) {
        // With those of the connects arriving together: one store read.
        let (store, now) = (&self.store, self.now());
        let read = self
            .waiting_files
            .read(h.conn.user_id.to_string(), |users| async move {
                store.pending_files_of(&users, now).await
            })
            .await;
        let files = match read {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, sid = %h.conn.sid, "files catch-up read failed; offered on the next connection");
                return;
            }
        };
        for file in files {
            if let Err(why) = outbox::emit(
                &h.socket,
                protocol::FILE_AVAILABLE,
                &available(&file),
                self.patience(),
            )
            .await
            {
                tracing::debug!(?why, sid = %h.conn.sid, "files catch-up stopped");
                return;
            }
        }
    }

    /// Removes the files past retention (their rows and bytes).
    pub async fn purge_files(&self) -> u64 {
        match self.store.purge_files(self.now()).await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(removed = n, "purged shared files past retention");
                }
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "file purge failed");
                0
            }
        }
    }
}
