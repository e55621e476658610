//! Shared files on the injectable clock: a file is served and caught up
//! until its retention passes, then refused, and the purge removes its
//! bytes, without a test sleeping through the retention.

mod common;

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
    let token = s.token(user, &format!("{user}-session"), "radiologist", DAY);
    s.http
        .get(format!("{}/api/v1/files/{file_id}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
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
    let (content_type, body) = multipart("scan.pdf", b"%PDF-1.7\nreport");
    let res = s
        .http
        .post(format!("{}/api/v1/users/ann/files", s.base))
        .bearer_auth(API_KEY)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let answer: serde_json::Value = res.json().await.unwrap();
    let file_id = answer["fileId"].as_str().unwrap().to_string();
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
