//! Store faults on a real file system: a data directory on a small tmpfs
//! that fills up. Mounting needs root (CI and the development machines run
//! as root); elsewhere the test fails saying so rather than passing unseen.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestServer;
use serde_json::json;

/// A tmpfs of `size`, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "this test mounts a tmpfs to fill it: run it as root (mount -t tmpfs failed)"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system holding `dir` to the last byte; returns the filler.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let mut chunk = 64 * 1024;
    while chunk > 0 {
        match f.write_all(&vec![0u8; chunk]) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc_enospc()) => chunk /= 2,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    let _ = f.sync_all();
    path
}

/// ENOSPC, "no space left on device", on Linux.
fn libc_enospc() -> i32 {
    28
}

#[tokio::test]
async fn a_full_disk_answers_503_and_not_ready_then_recovers_without_a_restart() {
    let disk = Tmpfs::mount("4m");
    let s = TestServer::start_in(disk.path(), |_| {}).await;
    let (status, _) = s.get("/readyz").await;
    assert_eq!(status, 200, "ready before the disk fills");

    let filler = fill(disk.path());
    let mut refused = 0;
    for i in 0..5 {
        let (status, res) = s
            .post(
                "/api/v1/users/u1/notifications",
                json!({"id": format!("full-{i}"), "title": "x".repeat(2000)}),
            )
            .await;
        assert_eq!(status, 503, "never a 202 for what was not stored: {res}");
        refused += 1;
    }
    assert_eq!(refused, 5);
    // A fresh probe, not the one from before the disk filled.
    s.clock.advance(1_000);
    let (status, ready) = s.get("/readyz").await;
    assert_eq!(
        (status, ready),
        (
            503,
            json!({"status": "unavailable", "store": "unavailable"})
        ),
        "reads still work, but no write commits"
    );

    std::fs::remove_file(filler).unwrap();
    s.clock.advance(1_000);
    let (status, _) = s.get("/readyz").await;
    assert_eq!(status, 200, "ready again once a write commits, no restart");
    let (status, _) = s
        .post("/api/v1/users/u1/notifications", json!({"id": "after"}))
        .await;
    assert_eq!(status, 202);
    let (_, listed) = s.get("/api/v1/users/u1/notifications").await;
    let ids: Vec<_> = listed["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["notification"]["id"].clone())
        .collect();
    assert_eq!(ids, [json!("after")], "none of the refused ones was stored");
    println!(
        "full disk: {refused} of 5 notifications answered 503, 0 answered 202, /readyz 503; \
         after freeing: /readyz 200 and 1 of 1 answered 202, no restart"
    );
    s.stop().await;
}
