//! `herald backup`: a consistent copy of a running server's SQLite store,
//! by the real command against a real server.

mod common;

use std::process::Command;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_backup_of_a_running_server_holds_every_accepted_notification() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), |_| {}).await;
    for i in 0..25 {
        let (status, _) = s
            .post(
                "/api/v1/users/u1/notifications",
                json!({"id": format!("n{i}")}),
            )
            .await;
        assert_eq!(status, 202);
    }
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("copy.db");
    let herald = |dest: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("backup")
            .arg(dest)
            .env("HERALD_DATA_DIR", dir.path())
            .env("JWT_SECRET", "backup-test-secret-0123456789")
            .env("HERALD_API_KEYS", "backup-test-key-0123456789")
            .output()
            .unwrap()
    };
    let run = herald(&dest);
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(said.starts_with("backed up 25 notifications"), "{said}");

    // The copy is a whole store: every notification with its recipient.
    let copy = rusqlite::Connection::open(&dest).unwrap();
    let rows: i64 = copy
        .query_row(
            "SELECT COUNT(*) FROM recipients WHERE user_id = 'u1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 25);

    // The server went on while it was copied; a second backup never
    // overwrites the first.
    let (status, _) = s
        .post("/api/v1/users/u1/notifications", json!({"id": "after"}))
        .await;
    assert_eq!(status, 202);
    let again = herald(&dest);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    s.stop().await;
}
