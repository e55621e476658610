//! The embedded store's writes of shared files' rows (`files`,
//! `file_recipients`), applied by the writer thread in its transaction.

use rusqlite::Connection;

use crate::clock::Millis;
use crate::files::SharedFile;
use crate::store::StoreError;

/// A write of the files' rows, applied by the writer thread.
pub enum FileWrite {
    Keep {
        file: SharedFile,
        recipients: Vec<String>,
    },
    /// A recipient's first download.
    Downloaded {
        file_id: String,
        user: String,
        at: Millis,
    },
    /// Expired files' rows (their recipients go with them).
    Forget { ids: Vec<String> },
}

impl FileWrite {
    /// Applies the write in the writer's transaction; rows changed.
    pub fn apply(&self, conn: &Connection) -> Result<u64, StoreError> {
        Ok(match self {
            FileWrite::Keep { file, recipients } => {
                conn.prepare_cached(
                    "INSERT INTO files (file_id, name, size, content_type, sha256, sender, room, \
                     created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(rusqlite::params![
                    file.file_id,
                    file.name,
                    file.size as i64,
                    file.content_type,
                    file.sha256,
                    file.sender,
                    file.room,
                    file.created_at,
                    file.expires_at,
                ])?;
                let mut add = conn.prepare_cached(
                    "INSERT OR IGNORE INTO file_recipients (file_id, user_id) VALUES (?1, ?2)",
                )?;
                for user in recipients {
                    add.execute((&file.file_id, user))?;
                }
                1
            }
            FileWrite::Downloaded { file_id, user, at } => {
                conn.prepare_cached(
                    "UPDATE file_recipients SET downloaded_at = ?3 \
                     WHERE file_id = ?1 AND user_id = ?2 AND downloaded_at IS NULL",
                )?
                .execute((file_id, user, at))? as u64
            }
            FileWrite::Forget { ids } => {
                let mut forget = conn.prepare_cached("DELETE FROM files WHERE file_id = ?1")?;
                let mut n = 0;
                for id in ids {
                    n += forget.execute([id])? as u64;
                }
                n
            }
        })
    }
}
