//! `herald audit verify` by the real command on a real SQLite store: an
//! intact chain passes and prints its head; a record changed (the first, a
//! middle one, the last) or removed is named by its seq. On both engines,
//! every kind of tampering (a field or the kind changed, a kind or detail
//! that cannot be read, a record removed, two swapped) exits 1 naming the
//! first bad seq, and only a store that cannot be reached exits 2. On a
//! real PostgreSQL store: the records not yet sealed are counted, not
//! sealed.

use std::path::Path;
use std::process::Output;

#[path = "common/command.rs"]
mod command;
use command::said;

use herald::clock::Millis;
use herald::notification::Notification;
use herald::store::{AuditTrail, Inbox, PostgresStore, SqliteStore, Store};
use herald::trail::{Entry, Kind};

/// Three notifications, each created, delivered and acknowledged (which
/// closes it) through the store; answers how many records that made.
async fn build_chain(dir: &Path) -> i64 {
    let store = SqliteStore::open(dir).await.unwrap();
    fill(&store).await;
    store.close().await;
    let conn = rusqlite::Connection::open(dir.join("herald.db")).unwrap();
    conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap()
}

/// Three notifications, each created, delivered with a detail and
/// acknowledged (which closes it), through `store`.
async fn fill(store: &dyn Store) {
    for i in 0..3 {
        let at: Millis = 1_795_600_800_000 + i * 1000;
        let body = serde_json::json!({"id": format!("n{i}"), "severity": "critical"});
        let n = Notification::from_body(body, || unreachable!("the body has an id"), at).unwrap();
        store.insert(&n, &["u1".to_string()]).await.unwrap();
        store.record(
            Entry::new(Kind::Delivered, at + 10)
                .notification(&n.id)
                .user("u1")
                .socket("sock-1"),
        );
        store.acknowledge(&n.id, "u1", at + 500).await.unwrap();
    }
}

fn verify(dir: &Path) -> Output {
    verify_store(dir, None)
}

/// `herald audit verify` with the data directory `dir`, or the PostgreSQL
/// database at `url` when given.
fn verify_store(dir: &Path, url: Option<&str>) -> Output {
    command::herald(dir, url, &["audit", "verify"])
        .output()
        .unwrap()
}

/// A fresh copy of the intact store in its own directory.
fn copy_of(intact: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(intact.join("herald.db"), dir.path().join("herald.db")).unwrap();
    dir
}

fn sql(dir: &Path, statement: &str) {
    let conn = rusqlite::Connection::open(dir.join("herald.db")).unwrap();
    assert_eq!(conn.execute(statement, []).unwrap(), 1, "{statement}");
}

#[tokio::test]
async fn an_intact_chain_verifies_and_a_tampered_one_names_the_record() {
    let intact = tempfile::tempdir().unwrap();
    let n = build_chain(intact.path()).await;
    assert!(
        n >= 9,
        "at least created, delivered, acknowledged each: {n}"
    );

    let ok = verify(intact.path());
    assert!(ok.status.success(), "{}", said(&ok));
    let out = said(&ok);
    assert!(out.contains(&format!("{n} records verified")), "{out}");
    let conn = rusqlite::Connection::open(intact.path().join("herald.db")).unwrap();
    let head: String = conn
        .query_row(
            "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(out.contains(&format!("head: seq {n} hash {head}")), "{out}");

    for seq in [1, n / 2, n] {
        let dir = copy_of(intact.path());
        sql(
            dir.path(),
            &format!("UPDATE audit SET user_id = 'mallory' WHERE seq = {seq}"),
        );
        let bad = verify(dir.path());
        assert_eq!(bad.status.code(), Some(1), "{}", said(&bad));
        let out = said(&bad);
        assert!(out.contains(&format!("BROKEN at seq {seq}:")), "{out}");
        assert!(out.contains("changed"), "{out}");
    }

    let dir = copy_of(intact.path());
    sql(
        dir.path(),
        &format!("DELETE FROM audit WHERE seq = {}", n / 2),
    );
    let bad = verify(dir.path());
    assert_eq!(bad.status.code(), Some(1), "{}", said(&bad));
    let out = said(&bad);
    assert!(
        out.contains(&format!("BROKEN at seq {}:", n / 2 + 1)),
        "{out}"
    );
    assert!(out.contains("missing"), "{out}");

    // A wrong data directory is not an empty, intact chain.
    let empty = tempfile::tempdir().unwrap();
    let missing = verify(empty.path());
    assert_eq!(missing.status.code(), Some(2), "{}", said(&missing));
    assert!(said(&missing).contains("no store"));
}

#[tokio::test]
async fn on_postgresql_verify_counts_the_unsealed_records_and_seals_none() {
    let base = std::env::var("HERALD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let url = herald::store::testing::fresh_database(&base).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A store that seals nothing leaves its records as a stopped node does.
    let writer = PostgresStore::inspect(&url).await.unwrap();
    for i in 0..2 {
        let n = Notification::from_body(
            serde_json::json!({"id": format!("n{i}")}),
            || unreachable!(),
            i,
        )
        .unwrap();
        writer.insert(&n, &["u1".to_string()]).await.unwrap();
    }
    writer.close().await;

    let before = verify_store(dir.path(), Some(&url));
    let out = said(&before);
    assert!(before.status.success(), "{out}");
    assert!(out.contains("0 records verified"), "{out}");
    assert!(
        out.contains("unsealed: 2 records committed and not yet in the chain, the oldest"),
        "{out}"
    );
    // Verifying sealed nothing: a node seals them (its sealer as it
    // starts, or the call below, whichever comes first).
    let node = PostgresStore::connect(&url).await.unwrap();
    node.seal_audit().await.unwrap();
    assert_eq!(node.unsealed().await.unwrap().count, 0);
    node.close().await;

    let after = verify_store(dir.path(), Some(&url));
    let out = said(&after);
    assert!(after.status.success(), "{out}");
    assert!(
        out.contains("2 records verified") && out.contains("unsealed: none"),
        "{out}"
    );
    herald::store::testing::drop_fresh_database(&base, &url)
        .await
        .unwrap();
}

/// One way of tampering with a chain of records, the seq `herald audit
/// verify` must name for it, and a word of the reason it must give.
struct Tampering {
    what: &'static str,
    statements: Vec<String>,
    named: i64,
    says: &'static str,
}

/// What anyone with write access to either engine's tables can do to a
/// chain whose records `m` and `m + 1` exist.
fn tamperings(m: i64) -> Vec<Tampering> {
    let one = |what, statement: String, named, says| Tampering {
        what,
        statements: vec![statement],
        named,
        says,
    };
    vec![
        one(
            "a field changed",
            format!("UPDATE audit SET user_id = 'mallory' WHERE seq = {m}"),
            m,
            "changed",
        ),
        one(
            "the kind changed to another kind",
            format!(
                "UPDATE audit SET kind = CASE WHEN kind = 'closed' THEN 'created' ELSE 'closed' END \
                 WHERE seq = {m}"
            ),
            m,
            "changed",
        ),
        one(
            "the kind changed to no kind",
            format!("UPDATE audit SET kind = 'forged' WHERE seq = {m}"),
            m,
            "cannot be read",
        ),
        one(
            "the detail is not JSON",
            format!("UPDATE audit SET detail = '{{not json' WHERE seq = {m}"),
            m,
            "cannot be read",
        ),
        one(
            "a record removed",
            format!("DELETE FROM audit WHERE seq = {m}"),
            m + 1,
            "missing",
        ),
        one(
            "the first record removed",
            "DELETE FROM audit WHERE seq = 1".to_string(),
            2,
            "missing",
        ),
        Tampering {
            what: "two records swapped",
            statements: vec![
                format!("UPDATE audit SET seq = -1 WHERE seq = {m}"),
                format!("UPDATE audit SET seq = {m} WHERE seq = {}", m + 1),
                format!("UPDATE audit SET seq = {} WHERE seq = -1", m + 1),
            ],
            named: m,
            says: "link",
        },
    ]
}

/// `verify` exits 1 naming `t.named` for tampering `t`.
fn assert_names(t: &Tampering, out: &Output) {
    let said = said(out);
    assert_eq!(out.status.code(), Some(1), "{}: {said}", t.what);
    assert!(
        said.contains(&format!("BROKEN at seq {}:", t.named)),
        "{}: {said}",
        t.what
    );
    assert!(said.contains(t.says), "{}: {said}", t.what);
}

#[tokio::test]
async fn on_sqlite_every_tampering_names_the_first_bad_record() {
    let intact = tempfile::tempdir().unwrap();
    let n = build_chain(intact.path()).await;
    let m = n / 2;
    let mut all = tamperings(m);
    // SQLite keeps any value in any column: one of the wrong type cannot
    // be read.
    all.push(Tampering {
        what: "a time that is not a number",
        statements: vec![format!("UPDATE audit SET at = 'noon' WHERE seq = {m}")],
        named: m,
        says: "cannot be read",
    });
    all.push(Tampering {
        what: "an anchor that cannot be read",
        statements: vec!["UPDATE audit_anchor SET seq = 'start' WHERE id = 1".to_string()],
        named: 1,
        says: "anchor",
    });
    for t in &all {
        let dir = copy_of(intact.path());
        for statement in &t.statements {
            sql(dir.path(), statement);
        }
        assert_names(t, &verify(dir.path()));
    }
}

#[tokio::test]
async fn on_postgresql_every_tampering_names_the_first_bad_record() {
    use sqlx::Connection;
    let base = std::env::var("HERALD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let dir = tempfile::tempdir().unwrap();
    for t in tamperings(5) {
        let url = herald::store::testing::fresh_database(&base).await.unwrap();
        let store = PostgresStore::connect(&url).await.unwrap();
        fill(&store).await;
        store.seal_audit().await.unwrap();
        store.close().await;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for statement in &t.statements {
            let done = sqlx::query(statement).execute(&mut conn).await.unwrap();
            assert_eq!(done.rows_affected(), 1, "{statement}");
        }
        conn.close().await.unwrap();
        assert_names(&t, &verify_store(dir.path(), Some(&url)));
        herald::store::testing::drop_fresh_database(&base, &url)
            .await
            .unwrap();
    }
}

#[test]
fn only_a_store_that_cannot_be_reached_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1.
    let out = verify_store(dir.path(), Some("postgres://postgres@127.0.0.1:1/herald"));
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("cannot open the store"),
        "{}",
        said(&out)
    );
}

#[test]
fn a_configuration_verify_cannot_read_exits_2_not_broken() {
    let dir = tempfile::tempdir().unwrap();
    // A webhook step with no secret to sign it: the configuration is
    // refused before verify learns where the store is.
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        "[escalation.policies.critical]\nsteps = [{ after = \"5m\", webhook = \"http://127.0.0.1:1/page\" }]\n",
    )
    .unwrap();
    let out = command::herald(
        dir.path(),
        None,
        &["--config", config.to_str().unwrap(), "audit", "verify"],
    )
    .env_remove("HERALD_ESCALATION_WEBHOOK_SECRET")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains("configuration error"), "{}", said(&out));
}
