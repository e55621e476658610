//! PostgreSQL's own tests: what only a shared, remote database can
//! show (several nodes, a lost server). The contract both engines keep
//! is tested in `conformance/`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;
use sqlx::{Connection, PgConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::deadline::{ACQUIRE_TIMEOUT, ANSWER_DEADLINE};
use super::inbox::list_query;
use super::marks::QUEUE_FOR_TESTS;
use super::*;
use crate::clock::Millis;
use crate::notification::StateFilter;
use crate::store::conformance::{note, TestDatabase};
use crate::store::{AuditTrail, Completion, EscalationSteps, Inbox, StepOutcome};
use crate::trail::{self, Chain, Entry, Kind};

fn unavailable<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Unavailable(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_agree_on_each_first_acknowledgement() {
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    let notes: Vec<_> = (0..50).map(|i| note(&format!("n{i}"), "t", i)).collect();
    for n in &notes {
        a.insert(n, &["u".into()]).await.unwrap();
    }
    let races = join_all(notes.iter().map(|n| async {
        tokio::join!(
            a.acknowledge(&n.id, "u", 100),
            b.acknowledge(&n.id, "u", 200)
        )
    }))
    .await;
    for (n, (x, y)) in notes.iter().zip(races) {
        let (x, y) = (x.unwrap().unwrap(), y.unwrap().unwrap());
        assert!(x.first != y.first, "{}: exactly one is first", n.id);
        let winner = if x.first { 100 } else { 200 };
        assert_eq!((x.at, y.at), (winner, winner), "{}", n.id);
        let stored = b.user_notification(&n.id, "u").await.unwrap().unwrap();
        assert_eq!(stored.recipient.acknowledged_at, Some(winner));
    }
    a.close().await;
    b.close().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_claim_each_due_step_once() {
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    for i in 0..60 {
        let n = note(&format!("n{i}"), "t", i);
        a.insert_scheduled(&Arc::new(n), &["u".into()], &[(1, 10), (2, 20)])
            .await
            .unwrap();
    }
    // Several claims at once on each node, until none is left due:
    // level 2 waits for level 1, which nobody completes here.
    let mut claimed: Vec<(String, u32, &str)> = Vec::new();
    loop {
        let claims = (0..4).flat_map(|_| [(&a, "a"), (&b, "b")]);
        let rounds = join_all(claims.map(|(s, owner)| async move {
            let steps = s.claim_steps(100, owner, 10_000, 5).await.unwrap();
            (steps, owner)
        }))
        .await;
        let before = claimed.len();
        for (steps, owner) in rounds {
            claimed.extend(
                steps
                    .into_iter()
                    .map(|c| (c.notification.id, c.level, owner)),
            );
        }
        if claimed.len() == before {
            break;
        }
    }
    let mut steps: Vec<_> = claimed.iter().map(|(id, level, _)| (id, level)).collect();
    steps.sort();
    steps.dedup();
    assert_eq!(steps.len(), claimed.len(), "a step was claimed twice");
    assert_eq!(steps.len(), 60, "every level 1, and only those");
    assert!(claimed.iter().all(|(_, level, _)| *level == 1));
    // The claim fences its completion: the other node cannot complete it.
    let (id, level, owner) = &claimed[0];
    let other = if *owner == "a" { "b" } else { "a" };
    let (owner_store, other_store) = if *owner == "a" { (&a, &b) } else { (&b, &a) };
    let finish = |by: &str| Completion {
        notification_id: id.clone(),
        level: *level,
        owner: by.into(),
        at: 200,
        add_users: vec![],
        add_role: None,
        audit: vec![],
        then: StepOutcome::Done,
    };
    assert!(!other_store.complete_step(&finish(other)).await.unwrap());
    assert!(owner_store.complete_step(&finish(owner)).await.unwrap());
    a.close().await;
    b.close().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_storing_one_notification_agree_on_its_body_and_recipients() {
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    let forward: Vec<String> = ["u1", "u2", "u3"].map(String::from).to_vec();
    let backward: Vec<String> = forward.iter().rev().cloned().collect();
    for round in 0..20 {
        let id = format!("n{round}");
        if round % 2 == 1 {
            // Already stored: both inserts only add recipients, in
            // opposite orders (where two transactions can deadlock).
            a.insert(&note(&id, "before", 0), &["u0".into()])
                .await
                .unwrap();
        }
        let (from_a, from_b) = (note(&id, "from a", 1), note(&id, "from b", 2));
        let (x, y) = tokio::join!(a.insert(&from_a, &forward), b.insert(&from_b, &backward));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.notification.body(), y.notification.body(), "{id}");
        if round % 2 == 1 {
            assert_eq!(x.notification.body()["title"], "before");
        }
        for (i, user) in forward.iter().enumerate() {
            let j = backward.iter().position(|u| u == user).unwrap();
            assert!(
                x.new_for[i] != y.new_for[j],
                "{id}: {user} is new for exactly one node"
            );
        }
        let (_, recipients) = a.notification(&id).await.unwrap().unwrap();
        assert_eq!(recipients.len(), 3 + round % 2, "{id}");
    }
    a.close().await;
    b.close().await;
    db.drop().await;
}

#[tokio::test]
async fn ten_thousand_recipients_are_stored_at_once() {
    let db = TestDatabase::create().await;
    let s = db.store().await;
    let users: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let inserted = s.insert(&note("big", "t", 1), &users).await.unwrap();
    assert_eq!(inserted.new_for.len(), 10_000);
    assert!(inserted.new_for.iter().all(|new| *new));
    let mut more = users.clone();
    more.insert(5000, "late".into());
    let again = s.insert(&note("big", "second", 2), &more).await.unwrap();
    assert_eq!(again.notification.body()["title"], "t");
    let new: Vec<usize> = (0..more.len()).filter(|i| again.new_for[*i]).collect();
    assert_eq!(new, [5000], "only the late user is new");
    let (_, recipients) = s.notification("big").await.unwrap().unwrap();
    let stored: Vec<&str> = recipients.iter().map(|r| r.user_id.as_str()).collect();
    let expected: Vec<&str> = users.iter().map(String::as_str).chain(["late"]).collect();
    assert_eq!(stored, expected, "in the order they were added");
    let inbox = s
        .list("user-9999", StateFilter::Unacknowledged, 0, 10)
        .await
        .unwrap();
    assert_eq!(inbox.len(), 1);
    s.close().await;
    db.drop().await;
}

#[tokio::test]
async fn unacknowledged_listings_read_the_partial_index() {
    let db = TestDatabase::create().await;
    let s = db.store().await;
    for i in 0..200 {
        let id = format!("n{i}");
        s.insert(&note(&id, "t", i), &["u".into(), "v".into()])
            .await
            .unwrap();
        if i >= 10 {
            s.acknowledge(&id, "u", 1000).await.unwrap();
        }
    }
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("ANALYZE recipients")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    for filter in [
        StateFilter::Unacknowledged,
        StateFilter::Pending,
        StateFilter::Delivered,
    ] {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", list_query(filter)))
            .bind("u")
            .bind(0_i64)
            .bind(100_i64)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("recipients_unacknowledged"),
            "{filter:?}:\n{plan}"
        );
    }
    conn.close().await.unwrap();
    s.close().await;
    db.drop().await;
}

/// A burst past the queue's capacity, queued without a pause (as a large
/// broadcast queues its deliveries): nothing is dropped, and the records
/// reach the chain in the order they were queued.
#[tokio::test]
async fn a_burst_past_the_queue_is_set_aside_not_dropped_and_keeps_its_order() {
    let db = TestDatabase::create().await;
    let s = db.store().await;
    s.insert(&note("n", "t", 1), &["u".into()]).await.unwrap();
    let burst = 3 * QUEUE_FOR_TESTS;
    for i in 0..burst {
        s.record(
            Entry::new(Kind::Delivered, 10)
                .notification("n")
                .user("u")
                .socket(&format!("s{i}")),
        );
    }
    // Closing writes everything queued or set aside.
    s.close().await;
    assert_eq!(s.marks.dropped(), 0);
    let other = db.store().await;
    other.seal_audit().await.unwrap();
    let chain = verified_chain(&other).await;
    let sockets: Vec<String> = chain
        .iter()
        .filter(|r| r.entry.kind == Kind::Delivered)
        .filter_map(|r| r.entry.socket_id.clone())
        .collect();
    let expected: Vec<String> = (0..burst).map(|i| format!("s{i}")).collect();
    assert_eq!(sockets, expected, "every record, in the order queued");
    other.close().await;
    db.drop().await;
}

#[tokio::test]
async fn closing_writes_the_queued_delivery_marks() {
    let db = TestDatabase::create().await;
    let s = db.store().await;
    let users: Vec<String> = (0..300).map(|i| format!("u{i}")).collect();
    s.insert(&note("n", "t", 1), &users).await.unwrap();
    for user in &users {
        s.mark_delivered("n", user, 50);
    }
    s.close().await;
    assert_eq!(s.marks.dropped(), 0);
    let other = db.store().await;
    let (_, recipients) = other.notification("n").await.unwrap().unwrap();
    assert!(recipients.iter().all(|r| r.delivered_at == Some(50)));
    other.close().await;
    db.drop().await;
}

#[tokio::test]
async fn connecting_to_no_server_fails_within_seconds() {
    // A port nothing listens on: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/herald");
    let started = Instant::now();
    assert!(unavailable(PostgresStore::connect(&url).await.map(|_| ())));
    assert!(started.elapsed() < ACQUIRE_TIMEOUT + Duration::from_secs(2));
}

/// What a [`Proxy`] does with the connections it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Up,
    /// Connections stay open, nothing crosses (a network partition).
    Silent,
    /// Every connection is closed as soon as it opens (a server down).
    Cut,
}

/// A TCP relay to the test server, to take it away from a store.
struct Proxy {
    addr: SocketAddr,
    link: watch::Sender<Link>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (link, watching) = watch::channel(Link::Up);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(carry(client, upstream.clone(), watching.clone()));
            }
        });
        Self { addr, link }
    }

    fn set(&self, link: Link) {
        self.link.send_replace(link);
    }

    /// `url` with its server replaced by this relay.
    fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap();
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}{}/{path}", self.addr)
    }
}

async fn carry(mut client: TcpStream, upstream: String, mut link: watch::Receiver<Link>) {
    if *link.borrow_and_update() != Link::Up {
        return hold(link, client).await;
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = link.changed() => hold(link, (client, server)).await,
    }
}

/// Keeps `sockets` open, carrying nothing, while the link is silent.
async fn hold<T>(mut link: watch::Receiver<Link>, sockets: T) {
    while *link.borrow_and_update() == Link::Silent {
        if link.changed().await.is_err() {
            break;
        }
    }
    drop(sockets);
}

#[tokio::test]
async fn a_lost_server_is_answered_unavailable_within_seconds_and_comes_back() {
    let db = TestDatabase::create().await;
    let options = PgConnectOptions::from_str(&db.url).unwrap();
    let proxy = Proxy::start(format!("{}:{}", options.get_host(), options.get_port())).await;
    let s = PostgresStore::connect(&proxy.url(&db.url)).await.unwrap();
    s.insert(&note("n", "t", 1), &["u".into()]).await.unwrap();
    let quick = ANSWER_DEADLINE + Duration::from_secs(1);

    // Partitioned: connections open, no answer.
    proxy.set(Link::Silent);
    let started = Instant::now();
    assert!(unavailable(s.ping().await));
    assert!(started.elapsed() < quick, "{:?}", started.elapsed());

    // Down: every connection closed.
    proxy.set(Link::Cut);
    let started = Instant::now();
    assert!(unavailable(s.list("u", StateFilter::All, 0, 10).await));
    assert!(unavailable(
        s.insert(&note("m", "t", 2), &["u".into()]).await
    ));
    // A mark queued now fails through its retries, and is counted.
    s.mark_delivered("n", "u", 3);
    assert!(unavailable(s.acknowledge("n", "u", 4).await));
    assert!(started.elapsed() < quick, "{:?}", started.elapsed());
    let waited = Instant::now();
    while s.marks.dropped() == 0 && waited.elapsed() < quick {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.marks.dropped(), 1);

    // Back: the store answers again, without reconnecting by hand.
    proxy.set(Link::Up);
    let back = Instant::now();
    while s.ping().await.is_err() {
        assert!(back.elapsed() < quick, "the store did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = s.acknowledge("n", "u", 5).await.unwrap().unwrap();
    assert_eq!((a.at, a.first), (5, true));
    s.close().await;
    db.drop().await;
}

/// Stores `count` notifications through `s`, each created, delivered and
/// acknowledged (which closes it, said by the same record): three records
/// each.
async fn write_records(s: &PostgresStore, prefix: &str, count: usize) {
    for i in 0..count {
        let id = format!("{prefix}{i}");
        s.insert(&note(&id, "t", i as Millis), &["u".into()])
            .await
            .unwrap();
        s.record(
            Entry::new(Kind::Delivered, 10)
                .notification(&id)
                .user("u")
                .socket("s"),
        );
        s.acknowledge(&id, "u", 20).await.unwrap().unwrap();
    }
}

/// The whole chain, verified from its anchor: its records.
async fn verified_chain(s: &PostgresStore) -> Vec<trail::Record> {
    let chain = s.audit_page(0, 0, Millis::MAX, 100_000).await.unwrap();
    let anchor = s.audit_anchor().await.unwrap();
    assert_eq!(
        trail::verify(&mut Chain::from(anchor), &chain),
        Ok(chain.len() as u64)
    );
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_records_are_sealed_by_another() {
    let db = TestDatabase::create().await;
    let survivor = db.store().await;
    // A node that commits and never seals: its records are left as a
    // node killed after its commits leaves them.
    let killed = PostgresStore::inspect(&db.url).await.unwrap();
    write_records(&killed, "k", 5).await;
    killed.marks.settle().await;
    // The survivor's timer finds them without any commit of its own.
    let started = Instant::now();
    while survivor.unsealed().await.unwrap().count > 0 {
        assert!(
            started.elapsed() < seal::SEAL_INTERVAL * 5,
            "not sealed by the other node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(verified_chain(&survivor).await.len(), 15);
    killed.close().await;
    survivor.close().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_lost_in_the_middle_of_sealing_leaves_the_records_unsealed() {
    let db = TestDatabase::create().await;
    let writer = PostgresStore::inspect(&db.url).await.unwrap();
    write_records(&writer, "n", 3).await;
    writer.marks.settle().await;
    assert_eq!(writer.unsealed().await.unwrap().count, 9);

    // The head held elsewhere: the sealing below stops in the middle of
    // its transaction, its batch read and deleted, waiting for the head.
    let mut blocker = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let options = PgConnectOptions::from_str(&db.url).unwrap();
    let proxy = Proxy::start(format!("{}:{}", options.get_host(), options.get_port())).await;
    let sealer = PostgresStore::inspect(&proxy.url(&db.url)).await.unwrap();
    let sealing = tokio::spawn(async move {
        let sealed = sealer.seal_audit().await;
        sealer.close().await;
        sealed
    });
    let started = Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE NOT granted")
            .fetch_one(&mut blocker)
            .await
            .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "sealing never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The server goes away from the sealer mid-transaction.
    proxy.set(Link::Cut);
    assert!(unavailable(sealing.await.unwrap()));
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();

    // Nothing of that sealing stands: every record is still to seal, and
    // is sealed once, by the next sealing (which waits for the lost one's
    // lock to go with its connection).
    assert_eq!(writer.seal_audit().await.unwrap(), 9);
    assert_eq!(writer.unsealed().await.unwrap().count, 0);
    let chain = verified_chain(&writer).await;
    assert_eq!(chain.len(), 9);
    blocker.close().await.unwrap();
    writer.close().await;
    db.drop().await;
}

#[tokio::test]
async fn sealing_stops_at_a_hostile_unsealed_record_and_seals_nothing_altered() {
    let db = TestDatabase::create().await;
    let s = PostgresStore::inspect(&db.url).await.unwrap();
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    for (i, hostile) in [
        "INSERT INTO audit_unsealed (at, kind) VALUES (1, 'forged')",
        "INSERT INTO audit_unsealed (at, kind, detail) VALUES (1, 'delivered', '{not json')",
        "INSERT INTO audit_unsealed (at, kind, level) VALUES (1, 'escalated', 99999999999)",
    ]
    .into_iter()
    .enumerate()
    {
        write_records(&s, &format!("before{i}-"), 1).await;
        sqlx::query(hostile).execute(&mut conn).await.unwrap();
        write_records(&s, &format!("after{i}-"), 1).await;
        s.marks.settle().await;
        // What came before is sealed; the hostile row and what follows it
        // are not, and the error names the row.
        let before = verified_chain(&s).await.len();
        let e = s.seal_audit().await.unwrap_err();
        assert!(
            matches!(&e, StoreError::Corrupt(why) if why.contains("unsealed audit record")),
            "{hostile}: {e}"
        );
        assert_eq!(verified_chain(&s).await.len(), before + 3, "{hostile}");
        assert_eq!(s.unsealed().await.unwrap().count, 4, "{hostile}");
        // Removing it (as an operator would, having read the error) lets
        // the rest be sealed.
        sqlx::query("DELETE FROM audit_unsealed WHERE id = (SELECT min(id) FROM audit_unsealed)")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(s.seal_audit().await.unwrap(), 3, "{hostile}");
    }
    conn.close().await.unwrap();
    s.close().await;
    db.drop().await;
}

/// Many calls at once on one node share batches (`group.rs`): each still
/// gets its own answer, an id stored before or twice in one batch is
/// stored against its first body, and every user's inbox and the chain
/// hold each notification once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_each_get_their_own_answer() {
    let db = TestDatabase::create().await;
    let s = db.store().await;
    // Stored before: the batch leaves them to run alone.
    for i in (0..250).step_by(10) {
        s.insert(&note(&format!("n{i}"), "before", 0), &["u0".into()])
            .await
            .unwrap();
    }
    let calls: Vec<(String, Vec<String>)> = (0..300)
        .map(|i| {
            let users = vec![format!("u{}", i % 7), format!("u{}", (i + 1) % 7)];
            (format!("n{}", i % 250), users)
        })
        .collect();
    let notes: Vec<_> = calls.iter().map(|(id, _)| note(id, "now", 1)).collect();
    let answers = join_all(
        calls
            .iter()
            .zip(&notes)
            .map(|((_, users), n)| s.insert(n, users)),
    )
    .await;
    let mut new_recipients = std::collections::HashMap::<&str, usize>::new();
    for ((id, users), answer) in calls.iter().zip(answers) {
        let inserted = answer.unwrap();
        assert_eq!(inserted.notification.id, *id);
        assert_eq!(inserted.new_for.len(), users.len());
        let stored_before = id[1..].parse::<usize>().unwrap() % 10 == 0;
        let title = &inserted.notification.body()["title"];
        assert_eq!(
            title == "before",
            stored_before,
            "{id}: the first body stands"
        );
        *new_recipients.entry(id).or_default() += inserted.new_for.iter().filter(|n| **n).count();
    }
    for (id, new) in new_recipients {
        let (_, recipients) = s.notification(id).await.unwrap().unwrap();
        let originally = usize::from(id[1..].parse::<usize>().unwrap() % 10 == 0);
        assert_eq!(recipients.len(), new + originally, "{id}: each new once");
    }
    s.marks.settle().await;
    let chain = verified_chain(&s).await;
    let created = chain
        .iter()
        .filter(|r| r.entry.kind == Kind::Created)
        .count();
    assert_eq!(created, 250, "one created record per notification");
    s.close().await;
    db.drop().await;
}

/// A call PostgreSQL refuses (a user id with a NUL byte) fails its batch;
/// the batch's calls then run one by one, and only that one fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_call_fails_alone_not_its_batch() {
    let db = TestDatabase::create().await;
    let s = db.store().await;
    let users = |i: usize| -> Vec<String> {
        if i == 17 {
            vec!["bad\0user".into()]
        } else {
            vec![format!("u{i}")]
        }
    };
    let answers = join_all((0..40).map(|i| {
        let users = users(i);
        let s = &s;
        async move { s.insert(&note(&format!("n{i}"), "t", 1), &users).await }
    }))
    .await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.is_err(), i == 17, "n{i}: {answer:?}");
    }
    assert!(s.notification("n17").await.unwrap().is_none());
    let acks = join_all((0..40).map(|i| {
        let s = &s;
        async move { s.acknowledge(&format!("n{i}"), &format!("u{i}"), 5).await }
    }))
    .await;
    for (i, ack) in acks.into_iter().enumerate() {
        let ack = ack.unwrap();
        assert_eq!(ack.is_some(), i != 17, "n{i}");
    }
    s.close().await;
    db.drop().await;
}

/// Acknowledgements of one notification by all its recipients at once,
/// on one node: every one is first for its recipient, exactly one closes
/// it (and says so in the one record that does), and a second
/// acknowledgement by the same recipient reads the first time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acknowledgements_close_each_notification_once() {
    let db = TestDatabase::create().await;
    let s = db.store().await;
    let users: Vec<String> = (0..4).map(|u| format!("u{u}")).collect();
    for i in 0..40 {
        s.insert_scheduled(
            &Arc::new(note(&format!("n{i}"), "t", 1)),
            &users,
            &[(1, 1_000)],
        )
        .await
        .unwrap();
    }
    let calls: Vec<(String, String, Millis)> = (0..40)
        .flat_map(|i| {
            // u0 twice: the second reads the first's time.
            (0..5).map(move |k| (format!("n{i}"), format!("u{}", k % 4), 10 + k as Millis))
        })
        .collect();
    let answers = join_all(calls.iter().map(|(id, u, at)| s.acknowledge(id, u, *at))).await;
    for i in 0..40 {
        let id = format!("n{i}");
        let mine: Vec<_> = calls
            .iter()
            .zip(&answers)
            .filter(|((n, _, _), _)| *n == id)
            .map(|((_, u, at), a)| (u.clone(), *at, a.as_ref().unwrap().clone().unwrap()))
            .collect();
        let closings: Vec<_> = mine.iter().filter(|(_, _, a)| a.closed.is_some()).collect();
        assert_eq!(closings.len(), 1, "{id}: closed once");
        let closed = closings[0].2.closed.clone().unwrap();
        assert_eq!(closed.by, closings[0].0);
        assert_eq!(closed.users, users, "{id}: every recipient is told");
        let firsts = mine.iter().filter(|(_, _, a)| a.first).count();
        assert_eq!(firsts, 4, "{id}: one first per recipient");
        let u0: Vec<_> = mine.iter().filter(|(u, _, _)| u == "u0").collect();
        assert_eq!(u0[0].2.at, u0[1].2.at, "{id}: the first time stands");
        let steps = s.claim_steps(2_000, "x", 10_000, 100).await.unwrap();
        assert!(steps.is_empty(), "a closed notification's steps are gone");
    }
    s.marks.settle().await;
    let chain = verified_chain(&s).await;
    let acknowledged: Vec<_> = chain
        .iter()
        .filter(|r| r.entry.kind == Kind::Acknowledged)
        .collect();
    assert_eq!(
        acknowledged.len(),
        40 * 4,
        "one record per first acknowledgement"
    );
    let closing = acknowledged
        .iter()
        .filter(|r| r.entry.detail.as_ref().is_some_and(|d| d["closed"] == true))
        .count();
    assert_eq!(closing, 40, "one closing record per notification");
    s.close().await;
    db.drop().await;
}

/// A store that cannot keep up (here its notifications table is locked)
/// refuses new calls at once as saturated, rather than holding them to
/// the deadline; every call it accepted is stored once it can, and no
/// refused one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_store_refuses_at_once_and_stores_what_it_accepted() {
    let db = TestDatabase::create().await;
    let s = db.store().await;
    let mut blocker = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE notifications IN EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let count = 2 * super::QUEUE + 4 * super::group::MOST_PER_BATCH_FOR_TESTS;
    let started = Instant::now();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let release = std::sync::Mutex::new(Some(release));
    let refusals = std::sync::atomic::AtomicUsize::new(0);
    let answers = async {
        join_all((0..count).map(|i| {
            let (s, release, refusals) = (&s, &release, &refusals);
            async move {
                let answer = s
                    .insert(&note(&format!("n{i}"), "t", 1), &["u".into()])
                    .await;
                let took = started.elapsed();
                if answer.is_err()
                    && refusals.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
                {
                    // The first refusal: let the store go on.
                    if let Some(r) = release.lock().unwrap().take() {
                        let _ = r.send(());
                    }
                }
                (answer, took)
            }
        }))
        .await
    };
    let unblock = async {
        let _ = released.await;
        sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    };
    let (answers, ()) = tokio::join!(answers, unblock);
    let mut accepted = 0;
    for (i, (answer, took)) in answers.iter().enumerate() {
        let stored = s.notification(&format!("n{i}")).await.unwrap().is_some();
        match answer {
            Ok(_) => {
                accepted += 1;
                assert!(stored, "n{i} was accepted and must be stored");
            }
            Err(StoreError::Unavailable(why)) => {
                assert!(why.contains("saturated"), "n{i}: {why}");
                assert!(*took < ANSWER_DEADLINE, "n{i} refused only after {took:?}");
                assert!(!stored, "n{i} was refused and must not be stored");
            }
            Err(e) => panic!("n{i}: {e}"),
        }
    }
    assert!(
        accepted > 0 && accepted < count,
        "{accepted} of {count} accepted"
    );
    s.close().await;
    db.drop().await;
}
