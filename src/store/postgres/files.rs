//! The PostgreSQL store's shared files: rows in `files` and
//! `file_recipients`, and the bytes in `file_chunks`, 256 KiB a row, so
//! that every node serves every file (a node's own disk would not) and
//! neither an upload nor a download holds more than one chunk in memory.
//! A file's rows and chunks commit in one transaction: all or nothing. A
//! purge is one `DELETE` of the files' rows, whose recipients and chunks
//! go with them (`ON DELETE CASCADE`) in the same statement: no chunk
//! ever outlives its file's row, and nothing lies outside the database.

use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{PgPool, Row};

use super::deadline::{with_deadline, ANSWER_DEADLINE, PURGE_DEADLINE};
use super::inbox::{distinct, per_user};
use super::PostgresStore;
use crate::clock::Millis;
use crate::files::SharedFile;
use crate::store::rows::{self, SELECT_FILE};
use crate::store::{Content, Files, StoreError};

/// The bytes of one `file_chunks` row.
const CHUNK: u64 = 256 * 1024;

/// The longest a file's copy into the database may take (25 MB at a slow
/// disk's pace, with room).
const KEEP_DEADLINE: Duration = Duration::from_secs(120);

/// Reads `f` on the blocking pool until `buf` is full or the file ends;
/// the file and the buffer back, and the bytes read.
///
/// Not `tokio::fs::File`: that reads into a buffer of its own, a chunk's
/// size, allocated on a blocking-pool thread and freed on a worker when the
/// file closes, and mimalloc held on to such blocks: about 0.25 MiB of RSS
/// per upload, up to some 80 MiB (bench/BENCHMARKS.md, "PostgreSQL's
/// upload growth"). Here the one buffer is the upload's own, made and
/// freed on a worker; the blocking thread only fills it.
async fn fill(
    mut f: std::fs::File,
    mut buf: Vec<u8>,
) -> Result<(std::fs::File, Vec<u8>, usize), StoreError> {
    tokio::task::spawn_blocking(move || {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(read) => n += read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StoreError::from(e)),
            }
        }
        Ok((f, buf, n))
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("reading an upload: {e}")))?
}

/// Chunk `seq` of `file_id`.
async fn chunk(pool: &PgPool, file_id: &str, seq: i32) -> Result<Vec<u8>, StoreError> {
    with_deadline(ANSWER_DEADLINE, async {
        let row = sqlx::query("SELECT data FROM file_chunks WHERE file_id = $1 AND seq = $2")
            .bind(file_id)
            .bind(seq)
            .fetch_optional(pool)
            .await?;
        match row {
            Some(r) => Ok(r.try_get::<Vec<u8>, _>("data")?),
            None => Err(StoreError::Corrupt(format!(
                "chunk {seq} of a file is missing"
            ))),
        }
    })
    .await
}

#[async_trait]
impl Files for PostgresStore {
    async fn keep_file(
        &self,
        file: &SharedFile,
        recipients: &[String],
        content: &Path,
    ) -> Result<(), StoreError> {
        with_deadline(KEEP_DEADLINE, async {
            let path = content.to_path_buf();
            let mut f = tokio::task::spawn_blocking(move || std::fs::File::open(path))
                .await
                .map_err(|e| StoreError::Unavailable(format!("opening an upload: {e}")))??;
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO files (file_id, name, size, content_type, sha256, sender, room, \
                 created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&file.file_id)
            .bind(&file.name)
            .bind(file.size as i64)
            .bind(&file.content_type)
            .bind(&file.sha256)
            .bind(&file.sender)
            .bind(&file.room)
            .bind(file.created_at)
            .bind(file.expires_at)
            .execute(&mut *tx)
            .await?;
            let mut buf = vec![0u8; CHUNK as usize];
            let mut seq = 0i32;
            loop {
                let n;
                (f, buf, n) = fill(f, buf).await?;
                if n == 0 {
                    break;
                }
                sqlx::query("INSERT INTO file_chunks (file_id, seq, data) VALUES ($1, $2, $3)")
                    .bind(&file.file_id)
                    .bind(seq)
                    .bind(&buf[..n])
                    .execute(&mut *tx)
                    .await?;
                seq += 1;
            }
            sqlx::query(
                "INSERT INTO file_recipients (file_id, user_id) \
                 SELECT $1, u FROM unnest($2::text[]) AS u ON CONFLICT DO NOTHING",
            )
            .bind(&file.file_id)
            .bind(recipients)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn file_for(
        &self,
        file_id: &str,
        user: &str,
        now: Millis,
    ) -> Result<Option<SharedFile>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let sql = format!(
                "{SELECT_FILE} JOIN file_recipients r ON r.file_id = f.file_id \
                 WHERE f.file_id = $1 AND r.user_id = $2 AND f.expires_at > $3"
            );
            let row = sqlx::query(&sql)
                .bind(file_id)
                .bind(user)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| rows::shared_file(&r)).transpose()
        })
        .await
    }

    async fn file_content(&self, file_id: &str, range: Range<u64>) -> Result<Content, StoreError> {
        let (pool, id) = (self.pool.clone(), file_id.to_string());
        // One chunk read at a time, each cut to the part inside `range`.
        let pieces = futures::stream::try_unfold(range.start, move |at| {
            let (pool, id, end) = (pool.clone(), id.clone(), range.end);
            async move {
                if at >= end {
                    return Ok(None);
                }
                let seq = (at / CHUNK) as i32;
                let data = chunk(&pool, &id, seq).await?;
                let from = (at - seq as u64 * CHUNK) as usize;
                let to = ((end - seq as u64 * CHUNK) as usize).min(data.len());
                if from >= to {
                    return Err(StoreError::Corrupt(
                        "a kept file is shorter than its size".into(),
                    ));
                }
                let piece = data[from..to].to_vec();
                let next = at + piece.len() as u64;
                Ok(Some((piece, next)))
            }
        });
        Ok(Box::pin(pieces))
    }

    async fn file_downloaded(
        &self,
        file_id: &str,
        user: &str,
        at: Millis,
    ) -> Result<bool, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let done = sqlx::query(
                "UPDATE file_recipients SET downloaded_at = $3 \
                 WHERE file_id = $1 AND user_id = $2 AND downloaded_at IS NULL",
            )
            .bind(file_id)
            .bind(user)
            .bind(at)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn pending_files(&self, user: &str, now: Millis) -> Result<Vec<SharedFile>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let sql = format!(
                "{SELECT_FILE} JOIN file_recipients r ON r.file_id = f.file_id \
                 WHERE r.user_id = $1 AND r.downloaded_at IS NULL AND f.expires_at > $2 \
                 ORDER BY f.created_at, f.file_id"
            );
            let found = sqlx::query(&sql)
                .bind(user)
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
            found.iter().map(rows::shared_file).collect()
        })
        .await
    }

    async fn pending_files_of(
        &self,
        users: &[String],
        now: Millis,
    ) -> Result<Vec<Vec<SharedFile>>, StoreError> {
        let (keys, at) = distinct(users);
        with_deadline(ANSWER_DEADLINE, async {
            let select = SELECT_FILE.replacen("SELECT ", "SELECT r.user_id AS recipient, ", 1);
            let sql = format!(
                "{select} JOIN file_recipients r ON r.file_id = f.file_id \
                 WHERE r.user_id = ANY($1) AND r.downloaded_at IS NULL AND f.expires_at > $2 \
                 ORDER BY f.created_at, f.file_id"
            );
            let found = sqlx::query(&sql)
                .bind(&keys)
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
            let items = found
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get::<String, _>("recipient")?,
                        rows::shared_file(row)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(per_user(&keys, &at, items))
        })
        .await
    }

    async fn purge_files(&self, now: Millis) -> Result<u64, StoreError> {
        with_deadline(PURGE_DEADLINE, async {
            let done = sqlx::query("DELETE FROM files WHERE expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    /// Nothing to sweep: the chunks are rows, kept and purged with their
    /// file's row in one transaction.
    async fn sweep_unreferenced(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
