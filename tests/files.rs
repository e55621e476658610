//! Shared files on the injectable clock: a file is served and caught up
//! until its retention passes, then refused, and the purge removes its
//! bytes, without a test sleeping through the retention; what a crash
//! leaves in the data directory is swept, never a kept file; a user over
//! the file routes' budget is refused and changes nothing.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{TestServer, API_KEY};

const DAY: i64 = 24 * 60 * 60 * 1000;

/// A multipart body holding `bytes` as the file `name` (a PDF).
fn multipart(name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "herald-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn download(s: &TestServer, file_id: &str, user: &str) -> u16 {
    fetch(s, file_id, user).await.status().as_u16()
}

async fn fetch(s: &TestServer, file_id: &str, user: &str) -> reqwest::Response {
    let token = s.token(user, &format!("{user}-session"), "radiologist", DAY);
    s.http
        .get(format!("{}/api/v1/files/{file_id}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The backend hands `user` a PDF; its file id.
async fn upload(s: &TestServer, user: &str) -> String {
    let (content_type, body) = multipart("scan.pdf", b"%PDF-1.7\nreport");
    let res = s
        .http
        .post(format!("{}/api/v1/users/{user}/files", s.base))
        .bearer_auth(API_KEY)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let answer: serde_json::Value = res.json().await.unwrap();
    answer["fileId"].as_str().unwrap().to_string()
}

/// `user` shares a PDF in `room` with their own token.
async fn share_in_room(s: &TestServer, room: &str, user: &str) -> reqwest::Response {
    let token = s.token(user, &format!("{user}-session"), "radiologist", DAY);
    let (content_type, body) = multipart("key.pdf", b"%PDF-1.7\nkey image");
    s.http
        .post(format!("{}/api/v1/rooms/{room}/files", s.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The names in the data directory's files folder.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_file_is_served_until_its_retention_and_the_purge_removes_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // An upload a crash cut off: swept at start.
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    let stale = dir.path().join("files").join("incoming-stale");
    std::fs::write(&stale, b"%PDF-half").unwrap();
    let s = TestServer::start_in(dir.path(), |f| f.files.retention = Some("2d".into())).await;
    assert!(!stale.exists(), "a stale upload is removed at start");
    let file_id = upload(&s, "ann").await;
    let kept = dir.path().join("files").join(&file_id);
    assert!(kept.exists());

    assert_eq!(download(&s, &file_id, "bob").await, 404, "not a recipient");
    s.clock.advance(2 * DAY - 1);
    let token = s.token("ann", "ann-session", "radiologist", DAY);
    let (mut ann, _) = s.connect_ok(&token).await;
    let told = ann.expect_event("file_available").await;
    assert_eq!(
        told["fileId"],
        file_id.as_str(),
        "caught up until it expires"
    );
    assert_eq!(s.hub.purge_files().await, 0, "not expired yet");

    s.clock.advance(1);
    assert_eq!(download(&s, &file_id, "ann").await, 404, "expired");
    let token = s.token("ann", "ann-session", "radiologist", DAY);
    let (mut again, _) = s.connect_ok(&token).await;
    assert!(
        again.silent_for(300).await,
        "an expired file is not offered"
    );
    assert!(kept.exists(), "kept until the purge runs");
    assert_eq!(s.hub.purge_files().await, 1);
    assert!(!kept.exists(), "the purge removed the bytes");
    assert_eq!(s.hub.purge_files().await, 0);
    s.stop().await;
}

#[tokio::test]
async fn bytes_no_row_refers_to_and_dead_uploads_are_swept_never_a_kept_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    // A crash between linking an upload's bytes and committing its row
    // leaves bytes under an id no row has; an operator's note is not ours.
    let orphan = files.join("00000000-0000-4000-8000-0000000000aa");
    std::fs::write(&orphan, b"%PDF-orphan").unwrap();
    let note = files.join("README.txt");
    std::fs::write(&note, b"kept by the operator").unwrap();
    let s = TestServer::start_in(dir.path(), |f| f.files.retention = Some("2d".into())).await;
    assert!(!orphan.exists(), "bytes with no row are removed at start");
    assert!(note.exists(), "a name the store never gives is left alone");

    let file_id = upload(&s, "ann").await;
    let kept = files.join(&file_id);
    // While running: a purge whose rows were deleted and whose bytes were
    // not (a crash between), and two uploads' staging files, one dead
    // for over an hour, one being written now.
    let purged = files.join("00000000-0000-4000-8000-0000000000bb");
    std::fs::copy(&kept, &purged).unwrap();
    let dead = files.join("incoming-dead");
    std::fs::write(&dead, b"%PDF-half").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&dead)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(61 * 60))
        .unwrap();
    let live = files.join("incoming-live");
    std::fs::write(&live, b"%PDF-arriving").unwrap();

    s.hub.purge().await;
    assert_eq!(
        names(dir.path()),
        {
            let mut want = vec![file_id.clone(), "README.txt".into(), "incoming-live".into()];
            want.sort();
            want
        },
        "the unreferenced bytes and the dead upload went; the kept file, the live upload and the note stay"
    );
    assert_eq!(download(&s, &file_id, "ann").await, 200);

    // Expired but not yet purged: its row still refers to its bytes.
    s.clock.advance(3 * DAY);
    s.hub.sweep_files(0).await;
    assert!(kept.exists(), "a row that exists keeps its bytes");
    assert_eq!(s.hub.purge_files().await, 1);
    assert!(!kept.exists());
    s.stop().await;

    // A restart sweeps every staging file: no upload is in flight yet.
    let s = TestServer::start_in(dir.path(), |_| {}).await;
    assert_eq!(names(dir.path()), ["README.txt"]);
    s.stop().await;
}

#[tokio::test]
async fn a_user_over_the_file_budget_gets_429_and_changes_nothing_others_are_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), |f| {
        f.files.rate_limit.per_second = Some(1);
        f.files.rate_limit.burst = Some(2);
    })
    .await;
    let room = "study:1.2.840.9";
    let mut sockets = Vec::new();
    for user in ["ann", "bob"] {
        let (code, _) = s
            .api(
                reqwest::Method::PUT,
                &format!("/api/v1/rooms/{room}/members/{user}"),
                None,
            )
            .await;
        assert_eq!(code, 201);
        let token = s.token(user, &format!("{user}-session"), "radiologist", DAY);
        let (mut c, _) = s.connect_ok(&token).await;
        let joined = c
            .call("join_room", Some(serde_json::json!({ "room": room })))
            .await;
        assert_eq!(joined["ok"], true, "{joined}");
        sockets.push(c);
    }
    let ann_file = upload(&s, "ann").await;
    let bob_file = upload(&s, "bob").await;
    for (c, file) in sockets.iter_mut().zip([&ann_file, &bob_file]) {
        assert_eq!(
            c.expect_event("file_available").await["fileId"],
            file.as_str()
        );
    }

    // Ann's burst of two, then a refusal that says when to come back.
    assert_eq!(download(&s, &ann_file, "ann").await, 200);
    assert_eq!(download(&s, &ann_file, "ann").await, 200);
    let refused = fetch(&s, &ann_file, "ann").await;
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // A share over budget is refused before anything is kept.
    let before = names(dir.path());
    let refused = share_in_room(&s, room, "ann").await;
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(names(dir.path()), before, "nothing stored");

    // Bob is not held back by Ann's budget; his share is the room's only
    // new file (so Ann's refused one was never offered).
    assert_eq!(download(&s, &bob_file, "bob").await, 200);
    let shared = share_in_room(&s, room, "bob").await;
    assert_eq!(shared.status().as_u16(), 201);
    let shared: serde_json::Value = shared.json().await.unwrap();
    for c in &mut sockets {
        let offered = c.expect_event("file_available").await;
        assert_eq!(offered["fileId"], shared["fileId"]);
        assert_eq!(offered["room"], room);
    }

    // One request a second comes back.
    s.clock.advance(1_000);
    assert_eq!(download(&s, &ann_file, "ann").await, 200);
    assert_eq!(fetch(&s, &ann_file, "ann").await.status().as_u16(), 429);
    s.stop().await;
}
