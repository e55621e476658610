//! The shared files' contract: kept whole for their recipients only, read
//! back by range, offered until downloaded, gone at expiry.

use futures::TryStreamExt;

use super::*;
use crate::files::SharedFile;

fn shared(id: &str, size: u64, at: Millis, expires_at: Millis) -> SharedFile {
    SharedFile {
        file_id: id.into(),
        name: "scan.pdf".into(),
        size,
        content_type: "application/pdf".into(),
        sha256: "ab".repeat(32),
        sender: Some("sender".into()),
        room: Some("study:1".into()),
        created_at: at,
        expires_at,
    }
}

/// A staged file of `bytes` in the store's own folder when it has one
/// (SQLite renames it), else in a temporary one.
async fn staged(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    tokio::fs::create_dir_all(dir).await.unwrap();
    let path = dir.join(name);
    tokio::fs::write(&path, bytes).await.unwrap();
    path
}

async fn read(s: &dyn Store, id: &str, range: std::ops::Range<u64>) -> Vec<u8> {
    let pieces: Vec<Vec<u8>> = s
        .file_content(id, range)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    pieces.concat()
}

pub(super) async fn a_file_is_kept_for_its_recipients_and_read_by_range(
    s: &dyn Store,
    staging: &std::path::Path,
) {
    // Larger than PostgreSQL's chunk, so ranges cross chunks.
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let id = "00000000-0000-4000-8000-000000000001";
    let path = staged(staging, "incoming-1", &bytes).await;
    let f = shared(id, bytes.len() as u64, 1_000, 10_000);
    s.keep_file(&f, &["u1".into(), "u2".into()], &path)
        .await
        .unwrap();
    assert_eq!(s.file_for(id, "u1", 2_000).await.unwrap(), Some(f.clone()));
    assert_eq!(
        s.file_for(id, "u3", 2_000).await.unwrap(),
        None,
        "not a recipient"
    );
    assert_eq!(s.file_for("nope", "u1", 2_000).await.unwrap(), None);
    assert_eq!(read(s, id, 0..bytes.len() as u64).await, bytes);
    assert_eq!(read(s, id, 262_000..530_000).await, bytes[262_000..530_000]);
    assert_eq!(read(s, id, 699_999..700_000).await, bytes[699_999..]);

    assert_eq!(s.pending_files("u1", 2_000).await.unwrap(), vec![f.clone()]);
    assert!(s.file_downloaded(id, "u1", 3_000).await.unwrap());
    assert!(
        !s.file_downloaded(id, "u1", 4_000).await.unwrap(),
        "first stands"
    );
    assert!(
        !s.file_downloaded(id, "u3", 4_000).await.unwrap(),
        "not a recipient"
    );
    assert!(
        s.pending_files("u1", 5_000).await.unwrap().is_empty(),
        "downloaded"
    );
    assert_eq!(s.pending_files("u2", 5_000).await.unwrap(), vec![f.clone()]);
    let users: Vec<String> = ["u2", "u1", "u3", "u2"].map(String::from).to_vec();
    assert_eq!(
        s.pending_files_of(&users, 5_000).await.unwrap(),
        vec![vec![f.clone()], vec![], vec![], vec![f.clone()]],
        "each user's own, in the order asked"
    );
    assert!(
        s.file_for(id, "u1", 5_000).await.unwrap().is_some(),
        "a download may be repeated"
    );
}

pub(super) async fn an_expired_file_is_neither_offered_nor_served_and_purge_removes_it(
    s: &dyn Store,
    staging: &std::path::Path,
) {
    let (old, new) = (
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
    );
    let path = staged(staging, "incoming-2", b"%PDF-old").await;
    s.keep_file(&shared(old, 8, 1_000, 5_000), &["u1".into()], &path)
        .await
        .unwrap();
    let path = staged(staging, "incoming-3", b"%PDF-new").await;
    s.keep_file(&shared(new, 8, 2_000, 50_000), &["u1".into()], &path)
        .await
        .unwrap();
    assert_eq!(s.pending_files("u1", 4_999).await.unwrap().len(), 2);
    assert_eq!(s.file_for(old, "u1", 5_000).await.unwrap(), None, "expired");
    let pending = s.pending_files("u1", 5_000).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].file_id, new);
    assert_eq!(s.purge_files(5_000).await.unwrap(), 1);
    assert_eq!(s.purge_files(5_000).await.unwrap(), 0);
    assert!(s.file_content(old, 0..8).await.is_err() || read_fails(s, old).await);
    assert_eq!(read(s, new, 0..8).await, b"%PDF-new");
}

/// Whether reading `id`'s bytes fails (PostgreSQL finds no chunk only on
/// the first read).
async fn read_fails(s: &dyn Store, id: &str) -> bool {
    let content = s.file_content(id, 0..8).await.unwrap();
    content.try_collect::<Vec<_>>().await.is_err()
}

pub(super) async fn a_file_whose_rows_fail_is_not_kept(s: &dyn Store, staging: &std::path::Path) {
    let id = "00000000-0000-4000-8000-000000000004";
    let path = staged(staging, "incoming-4", b"%PDF-1").await;
    s.keep_file(&shared(id, 6, 1_000, 9_000), &["u1".into()], &path)
        .await
        .unwrap();
    // The same id again: the rows are refused, and nothing changes.
    let path = staged(staging, "incoming-5", b"%PDF-2").await;
    assert!(s
        .keep_file(&shared(id, 6, 1_000, 9_000), &["u2".into()], &path)
        .await
        .is_err());
    assert_eq!(s.file_for(id, "u2", 2_000).await.unwrap(), None);
    assert_eq!(read(s, id, 0..6).await, b"%PDF-1");
}

pub(super) async fn a_sweep_never_removes_the_bytes_of_a_row_that_exists(
    s: &dyn Store,
    staging: &std::path::Path,
) {
    let (live, expired) = (
        "00000000-0000-4000-8000-000000000006",
        "00000000-0000-4000-8000-000000000007",
    );
    let path = staged(staging, "incoming-6", b"%PDF-live").await;
    s.keep_file(&shared(live, 9, 1_000, 50_000), &["u1".into()], &path)
        .await
        .unwrap();
    tokio::fs::remove_file(&path).await.unwrap();
    let path = staged(staging, "incoming-7", b"%PDF-gone").await;
    s.keep_file(&shared(expired, 9, 1_000, 5_000), &["u1".into()], &path)
        .await
        .unwrap();
    tokio::fs::remove_file(&path).await.unwrap();
    // Expired but not purged: its row still refers to its bytes.
    assert_eq!(s.sweep_unreferenced().await.unwrap(), 0);
    assert_eq!(read(s, live, 0..9).await, b"%PDF-live");
    assert_eq!(read(s, expired, 0..9).await, b"%PDF-gone");
    assert_eq!(s.purge_files(5_000).await.unwrap(), 1);
    assert_eq!(
        s.sweep_unreferenced().await.unwrap(),
        0,
        "the purge took the bytes with the row"
    );
    assert_eq!(read(s, live, 0..9).await, b"%PDF-live");
}
