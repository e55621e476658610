//! Signed checkpoints by the real commands: `herald audit checkpoint`
//! prints one, `herald audit verify --checkpoint FILE` passes an intact
//! trail, names the gap when the newest records were cut off, refuses a
//! forged or altered checkpoint, and does not fail a checkpoint that
//! retention has since passed, and after a key rotation verifies the
//! earlier key's checkpoints when its public key (`herald audit
//! public-key`) is given. `herald audit checkpoint` also hands its
//! line to the configured witnesses (the file, the signed webhook) and
//! exits 3, the line still printed, when one of them does not keep it. A
//! malformed key stops the command with a configuration error that does
//! not repeat it. On SQLite and on
//! PostgreSQL (where the checkpoint signs the sealed head, and two nodes'
//! checkpoints of one head both verify).

use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[path = "common/command.rs"]
mod command;
use command::said;

use herald::clock::Millis;
use herald::notification::Notification;
use herald::store::{AuditTrail, Inbox, PostgresStore, SqliteStore, Store};

const KEY: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const OTHER_KEY: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

/// Notifications `ids`, each created and acknowledged at `at`.
async fn add(store: &dyn Store, ids: &[&str], at: Millis) {
    for id in ids {
        let body = serde_json::json!({"id": id, "severity": "critical"});
        let n = Notification::from_body(body, || unreachable!("the body has an id"), at).unwrap();
        store.insert(&n, &["u1".to_string()]).await.unwrap();
        store.acknowledge(id, "u1", at + 1).await.unwrap();
    }
}

/// `herald` with `args`, the data directory `dir` (or PostgreSQL at `url`)
/// and the signing key `key`.
fn herald(dir: &Path, url: Option<&str>, key: &str, args: &[&str]) -> Output {
    command::herald(dir, url, args)
        .env("HERALD_AUDIT_SIGNING_KEY", key)
        .env_remove("HERALD_AUDIT_CHECKPOINT_FILE")
        .env_remove("HERALD_AUDIT_CHECKPOINT_WEBHOOK")
        .output()
        .unwrap()
}

/// `herald audit checkpoint`'s line, appended to `file`.
fn checkpoint_into(dir: &Path, url: Option<&str>, file: &Path) -> serde_json::Value {
    signed_into(dir, url, KEY, file)
}

/// `herald audit checkpoint`'s line signed with `key`, appended to `file`.
fn signed_into(dir: &Path, url: Option<&str>, key: &str, file: &Path) -> serde_json::Value {
    let o = herald(dir, url, key, &["audit", "checkpoint"]);
    assert!(o.status.success(), "{}", said(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 1, "one JSON line: {out}");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    std::io::Write::write_all(&mut f, out.as_bytes()).unwrap();
    serde_json::from_str(out.trim()).unwrap()
}

/// `herald audit checkpoint` with the witnesses `file` and `webhook`
/// configured, signed with `secret`.
fn checkpoint_witnessed(dir: &Path, file: Option<&Path>, webhook: Option<&str>) -> Output {
    let mut c = command::herald(dir, None, &["audit", "checkpoint"]);
    c.env("HERALD_AUDIT_SIGNING_KEY", KEY)
        .env("HERALD_ESCALATION_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env_remove("HERALD_AUDIT_CHECKPOINT_FILE")
        .env_remove("HERALD_AUDIT_CHECKPOINT_WEBHOOK");
    if let Some(f) = file {
        c.env("HERALD_AUDIT_CHECKPOINT_FILE", f);
    }
    if let Some(url) = webhook {
        c.env("HERALD_AUDIT_CHECKPOINT_WEBHOOK", url);
    }
    c.output().unwrap()
}

const WEBHOOK_SECRET: &str = "checkpoint-webhook-secret-0123";

/// A witness receiver on loopback that refuses its first POST (503) and
/// keeps the others' bodies with their signature header.
async fn receiver() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let kept: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = kept.clone();
    let app = axum::Router::new().route(
        "/witness",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (k, calls) = (k.clone(), calls.clone());
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let sig = headers["x-herald-signature"].to_str().unwrap().to_string();
                k.lock().unwrap().push((sig, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/witness", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, kept)
}

fn verify_against(dir: &Path, url: Option<&str>, file: &Path) -> Output {
    let file = file.to_str().unwrap();
    herald(dir, url, KEY, &["audit", "verify", "--checkpoint", file])
}

fn sql(dir: &Path, statement: &str) -> usize {
    let conn = rusqlite::Connection::open(dir.join("herald.db")).unwrap();
    conn.execute(statement, []).unwrap()
}

#[tokio::test]
async fn a_cut_off_tail_is_caught_by_the_checkpoint_and_an_intact_trail_passes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    add(&store, &["a", "b", "c"], 1_795_600_800_000).await;
    let head = store.audit_head().await.unwrap();
    store.close().await;
    let file = dir.path().join("checkpoints.jsonl");

    let line = checkpoint_into(dir.path(), None, &file);
    assert_eq!(line["checkpoint"]["seq"], head.seq);
    assert_eq!(line["checkpoint"]["hash"], head.hash.as_str());
    assert_eq!(line["publicKey"].as_str().unwrap().len(), 64);
    assert_eq!(line["signature"].as_str().unwrap().len(), 128);

    let ok = verify_against(dir.path(), None, &file);
    assert!(ok.status.success(), "{}", said(&ok));
    assert!(said(&ok).contains("checkpoints: 1 agree"), "{}", said(&ok));

    // The newest two records removed: the chain alone still verifies ...
    let cut = sql(
        dir.path(),
        &format!("DELETE FROM audit WHERE seq > {}", head.seq - 2),
    );
    assert_eq!(cut, 2);
    let alone = herald(dir.path(), None, KEY, &["audit", "verify"]);
    assert!(alone.status.success(), "{}", said(&alone));
    // ... the checkpoint does not.
    let bad = verify_against(dir.path(), None, &file);
    assert_eq!(bad.status.code(), Some(1), "{}", said(&bad));
    let out = said(&bad);
    assert!(
        out.contains(&format!(
            "the trail ends at seq {}, but the checkpoint of",
            head.seq - 2
        )) && out.contains(&format!(
            "records {} to {} are missing",
            head.seq - 1,
            head.seq
        )),
        "{out}"
    );
    assert!(!out.contains("audit trail intact"), "{out}");
}

#[tokio::test]
async fn a_forged_or_foreign_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    add(&store, &["a", "b"], 1_795_600_800_000).await;
    store.close().await;
    let file = dir.path().join("checkpoints.jsonl");
    let line = checkpoint_into(dir.path(), None, &file);

    // A seq moved down, so that a cut-off tail would pass: the signature
    // no longer matches.
    let mut forged = line.clone();
    forged["checkpoint"]["seq"] = serde_json::json!(1);
    let forged_file = dir.path().join("forged.jsonl");
    std::fs::write(&forged_file, format!("{forged}\n")).unwrap();
    let bad = verify_against(dir.path(), None, &forged_file);
    assert_eq!(bad.status.code(), Some(1), "{}", said(&bad));
    assert!(
        said(&bad).contains("line 1: its signature does not match"),
        "{}",
        said(&bad)
    );

    // Signed with another key: verify checks against this server's own.
    let other = herald(dir.path(), None, OTHER_KEY, &["audit", "checkpoint"]);
    let other_file = dir.path().join("other.jsonl");
    std::fs::write(&other_file, &other.stdout).unwrap();
    let bad = verify_against(dir.path(), None, &other_file);
    assert_eq!(bad.status.code(), Some(1), "{}", said(&bad));
    assert!(
        said(&bad).contains("signed by another key"),
        "{}",
        said(&bad)
    );

    // Not a checkpoint file at all, and no file.
    let junk = dir.path().join("junk.jsonl");
    std::fs::write(&junk, "hello\n").unwrap();
    assert_eq!(
        verify_against(dir.path(), None, &junk).status.code(),
        Some(1)
    );
    let none = verify_against(dir.path(), None, &dir.path().join("absent"));
    assert_eq!(none.status.code(), Some(2), "{}", said(&none));
    assert!(said(&none).contains("cannot read the checkpoint file"));
}

#[tokio::test]
async fn a_checkpoint_retention_has_passed_is_retired_not_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    add(&store, &["old"], 1_000).await;
    store.close().await;
    let file = dir.path().join("checkpoints.jsonl");
    checkpoint_into(dir.path(), None, &file);

    // More old records and newer ones, then retention removes the old
    // ones, the checkpoint's place with them: the anchor is past it.
    let store = SqliteStore::open(dir.path()).await.unwrap();
    add(&store, &["older"], 2_000).await;
    add(&store, &["new"], 1_795_600_800_000).await;
    store.purge(500_000, 500_000).await.unwrap();
    let anchor = store.audit_anchor().await.unwrap();
    store.close().await;
    assert_eq!(anchor.seq, 4, "the old records went: {anchor:?}");
    checkpoint_into(dir.path(), None, &file);

    let ok = verify_against(dir.path(), None, &file);
    assert!(ok.status.success(), "{}", said(&ok));
    assert!(
        said(&ok).contains("1 agree") && said(&ok).contains("1 before the anchor, retired"),
        "{}",
        said(&ok)
    );
}

#[tokio::test]
async fn after_a_key_rotation_the_earlier_keys_checkpoints_verify_with_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    add(&store, &["a"], 1_795_600_800_000).await;
    store.close().await;
    let file = dir.path().join("checkpoints.jsonl");
    // Before the rotation: the old key's public key kept, its checkpoint made.
    let o = herald(dir.path(), None, OTHER_KEY, &["audit", "public-key"]);
    assert!(o.status.success(), "{}", said(&o));
    let old_public = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let old = signed_into(dir.path(), None, OTHER_KEY, &file);
    assert_eq!(old["publicKey"], old_public.as_str());
    let old_id = old["keyId"].as_str().unwrap().to_string();
    // After it: the new key signs.
    let store = SqliteStore::open(dir.path()).await.unwrap();
    add(&store, &["b"], 1_795_600_900_000).await;
    store.close().await;
    checkpoint_into(dir.path(), None, &file);
    let f = file.to_str().unwrap();

    // The old key not given: its line is named with its key id.
    let bad = verify_against(dir.path(), None, &file);
    assert_eq!(bad.status.code(), Some(1), "{}", said(&bad));
    let err = String::from_utf8_lossy(&bad.stderr).to_string();
    assert!(
        err.contains("checkpoint line 1: signed by another key")
            && err.contains(&format!("key id {old_id}"))
            && err.contains("--public-key"),
        "{err}"
    );
    // Given: both lines verify, the configured key's as always.
    let args = [
        "audit",
        "verify",
        "--checkpoint",
        f,
        "--public-key",
        &old_public,
    ];
    let ok = herald(dir.path(), None, KEY, &args);
    assert!(ok.status.success(), "{}", said(&ok));
    assert!(said(&ok).contains("checkpoints: 2 agree"), "{}", said(&ok));
    // A key given that is no public key: a usage error naming the flag.
    let args = ["audit", "verify", "--checkpoint", f, "--public-key", "abc"];
    let wrong = herald(dir.path(), None, KEY, &args);
    assert_eq!(wrong.status.code(), Some(2), "{}", said(&wrong));
    assert!(said(&wrong).contains("--public-key"), "{}", said(&wrong));
}

// Two workers: the command runs blocking on one while the receiver answers
// on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_command_hands_its_line_to_the_configured_witnesses() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    add(&store, &["a"], 1_795_600_800_000).await;
    store.close().await;
    let file = dir.path().join("witness.jsonl");
    let (url, kept) = receiver().await;
    let o = checkpoint_witnessed(dir.path(), Some(&file), Some(&url));
    assert!(o.status.success(), "{}", said(&o));
    let printed = String::from_utf8(o.stdout).unwrap();
    // The file got the printed line, the webhook (after one refusal) too,
    // signed with the escalation webhook's secret.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), printed);
    let kept = kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let (sig, body) = &kept[0];
    assert_eq!(body, printed.trim_end());
    assert_eq!(
        sig,
        &herald::escalation::webhook::signature(WEBHOOK_SECRET.as_bytes(), body.as_bytes())
    );
    // What the file witness kept verifies the trail.
    let ok = verify_against(dir.path(), None, &file);
    assert!(ok.status.success(), "{}", said(&ok));
}

#[tokio::test]
async fn a_witness_that_does_not_keep_the_checkpoint_exits_3_with_the_line_printed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    add(&store, &["a"], 1_795_600_800_000).await;
    store.close().await;
    let kept = dir.path().join("kept.jsonl");
    // /dev/full answers every write as a full disk does; nothing listens
    // on the discard port.
    let cases: [(Option<&Path>, Option<&str>, &str); 3] = [
        (Some(Path::new("/dev/full")), None, "audit.checkpoint_file"),
        (
            None,
            Some("http://127.0.0.1:9/witness"),
            "audit.checkpoint_webhook",
        ),
        (
            Some(&kept),
            Some("http://127.0.0.1:9/witness"),
            "audit.checkpoint_webhook",
        ),
    ];
    for (file, webhook, named) in cases {
        let o = checkpoint_witnessed(dir.path(), file, webhook);
        let out = said(&o);
        assert_eq!(o.status.code(), Some(3), "{out}");
        let printed = String::from_utf8(o.stdout.clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(printed.trim()).unwrap();
        assert!(line["signature"].is_string(), "{out}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(named) && err.contains("did not keep"), "{err}");
        assert!(!err.contains(WEBHOOK_SECRET) && !err.contains(KEY), "{err}");
    }
    // The witness that worked kept the line though the other failed.
    assert_eq!(std::fs::read_to_string(&kept).unwrap().lines().count(), 1);
}

#[test]
fn a_malformed_key_is_a_configuration_error_that_does_not_repeat_it() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["not-a-key", &KEY[..40]] {
        let o = herald(dir.path(), None, bad, &["audit", "checkpoint"]);
        assert!(!o.status.success());
        let out = said(&o);
        assert!(
            out.contains("configuration error: invalid setting audit.signing_key"),
            "{out}"
        );
        assert!(!out.contains(bad), "{out}");
    }
}

#[tokio::test]
async fn on_postgresql_the_checkpoint_signs_the_sealed_head_and_catches_a_cut() {
    let base = std::env::var("HERALD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let url = herald::store::testing::fresh_database(&base).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = PostgresStore::connect(&url).await.unwrap();
    add(&node, &["a", "b", "c"], 1_795_600_800_000).await;
    node.seal_audit().await.unwrap();
    let head = node.audit_head().await.unwrap();
    assert!(head.seq >= 6, "{head:?}");
    let file = dir.path().join("checkpoints.jsonl");
    let line = checkpoint_into(dir.path(), Some(&url), &file);
    assert_eq!(line["checkpoint"]["seq"], head.seq);
    // A second node's checkpoint of the same head: a harmless duplicate.
    let again = checkpoint_into(dir.path(), Some(&url), &file);
    assert_eq!(again["checkpoint"]["hash"], line["checkpoint"]["hash"]);
    let ok = verify_against(dir.path(), Some(&url), &file);
    assert!(ok.status.success(), "{}", said(&ok));
    assert!(said(&ok).contains("checkpoints: 2 agree"), "{}", said(&ok));

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM audit WHERE seq = $1")
        .bind(head.seq)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    node.close().await;
    let bad = verify_against(dir.path(), Some(&url), &file);
    assert_eq!(bad.status.code(), Some(1), "{}", said(&bad));
    assert!(
        said(&bad).contains(&format!("records {} to {} are missing", head.seq, head.seq)),
        "{}",
        said(&bad)
    );
    herald::store::testing::drop_fresh_database(&base, &url)
        .await
        .unwrap();
}
