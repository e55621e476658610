//! The store's contract, tested once and run against both engines: each
//! test below is an async function of a `&dyn Store`, and `conformance!`
//! makes of it one test on SQLite (in a temporary directory) and one on
//! PostgreSQL (in a database of its own). Also the two fixtures, for the
//! engines' own tests.

use serde_json::json;

use super::{
    Acknowledged, Closed, Completion, Escalation, PostgresStore, Source, SqliteStore, StepOutcome,
    Store, UserNotification,
};
use crate::clock::Millis;
use crate::notification::{Notification, StateFilter};
use crate::trail::{self, Chain, Entry, Kind};

/// Where the PostgreSQL tests create their databases, unless
/// `HERALD_TEST_POSTGRES` says otherwise.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn note(id: &str, title: &str, at: Millis) -> Notification {
    Notification::from_body(json!({"id": id, "title": title}), || unreachable!(), at).unwrap()
}

pub async fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteStore::open(dir.path()).await.unwrap(), dir)
}

/// A PostgreSQL database for one test, dropped by [`TestDatabase::drop`]
/// (one a failed test leaves behind goes a day later).
pub struct TestDatabase {
    base: String,
    pub url: String,
}

impl TestDatabase {
    /// Fails the test, saying why, when PostgreSQL cannot be reached: CI
    /// has it, so a missing server is an error, not a reason to skip.
    pub async fn create() -> Self {
        let base =
            std::env::var("HERALD_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
        match super::testing::fresh_database(&base).await {
            Ok(url) => Self { base, url },
            Err(e) => panic!(
                "the PostgreSQL store tests need a server at {base} (set HERALD_TEST_POSTGRES, \
                 or start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) \
                 main start): {e}"
            ),
        }
    }

    /// A store on this database: one Herald node.
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url).await.unwrap()
    }

    pub async fn drop(self) {
        super::testing::drop_fresh_database(&self.base, &self.url)
            .await
            .unwrap();
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = super::sqlite().await;
                    super::$name(&store).await;
                    crate::store::Store::close(&store).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDatabase::create().await;
                    let store = db.store().await;
                    super::$name(&store).await;
                    crate::store::Store::close(&store).await;
                    db.drop().await;
                }
            )*
        }
    };
}

conformance!(
    first_body_stands_and_recipients_are_idempotent,
    acknowledgement_is_per_recipient_and_first_time_stands,
    lists_filter_by_state_oldest_first_and_page,
    a_first_delivery_mark_stands_and_precedes_a_later_acknowledgement,
    purge_respects_both_retentions,
    concurrent_writes_are_each_answered,
    the_stored_notification_is_the_one_answered,
    an_expired_session_keeps_its_first_time_until_purged,
    a_session_belongs_to_its_first_user_until_purged,
    unknown_ids_and_users_read_as_absent,
    every_users_unacknowledged_oldest_first_with_their_total,
    escalation_steps_fire_once_in_order_and_are_taken_over_after_a_lease,
    closing_ends_escalation_and_the_escalated_recipients_catch_up,
    the_audit_trail_is_one_verifiable_chain_with_each_timeline,
    retention_keeps_what_remains_of_the_chain_verifiable,
    the_report_reads_severity_and_closing_of_each_notification,
    escalations_read_the_fired_level_and_the_next_step_of_each_id,
);

fn ids(v: Vec<UserNotification>) -> Vec<String> {
    v.into_iter().map(|x| x.notification.id).collect()
}

async fn first_body_stands_and_recipients_are_idempotent(s: &dyn Store) {
    let a = s
        .insert(&note("n1", "first", 1), &["u1".into()])
        .await
        .unwrap();
    assert_eq!(a.new_for, vec![true]);
    let b = s
        .insert(&note("n1", "second", 2), &["u1".into(), "u2".into()])
        .await
        .unwrap();
    assert_eq!(b.new_for, vec![false, true]);
    assert_eq!(b.notification.body["title"], "first");
    let (stored, recipients) = s.notification("n1").await.unwrap().unwrap();
    assert_eq!(stored.body["title"], "first");
    assert_eq!(stored.created_at, 1);
    let users: Vec<_> = recipients.iter().map(|r| r.user_id.as_str()).collect();
    assert_eq!(users, ["u1", "u2"], "in the order they were added");
}

async fn acknowledgement_is_per_recipient_and_first_time_stands(s: &dyn Store) {
    s.insert(&note("n1", "t", 1), &["u1".into(), "u2".into()])
        .await
        .unwrap();
    // The first acknowledgement by any recipient also closes the notification.
    let first = Acknowledged {
        at: 10,
        first: true,
        created_at: 1,
        closed: Some(Closed {
            at: 10,
            by: "u1".into(),
            users: vec!["u1".into(), "u2".into()],
            roles: vec![],
        }),
    };
    assert_eq!(s.acknowledge("n1", "u1", 10).await.unwrap(), Some(first));
    // Again, even at the same millisecond: the first time stands, and
    // this one is not the first.
    let again = Acknowledged {
        at: 10,
        first: false,
        created_at: 1,
        closed: None,
    };
    assert_eq!(
        s.acknowledge("n1", "u1", 20).await.unwrap(),
        Some(again.clone())
    );
    assert_eq!(s.acknowledge("n1", "u1", 10).await.unwrap(), Some(again));
    assert_eq!(s.acknowledge("n1", "u3", 20).await.unwrap(), None);
    assert_eq!(s.acknowledge("nope", "u1", 20).await.unwrap(), None);
    let u2 = s.user_notification("n1", "u2").await.unwrap().unwrap();
    assert_eq!(u2.recipient.acknowledged_at, None);
    let u1 = s.user_notification("n1", "u1").await.unwrap().unwrap();
    assert_eq!(u1.recipient.acknowledged_at, Some(10));
}

async fn lists_filter_by_state_oldest_first_and_page(s: &dyn Store) {
    for i in 0..5 {
        s.insert(&note(&format!("n{i}"), "t", i), &["u".into()])
            .await
            .unwrap();
    }
    s.insert(&note("other", "t", 9), &["someone else".into()])
        .await
        .unwrap();
    s.mark_delivered("n1", "u", 100);
    s.acknowledge("n2", "u", 100).await.unwrap();
    assert_eq!(
        ids(s.list("u", StateFilter::All, 0, 100).await.unwrap()),
        ["n0", "n1", "n2", "n3", "n4"]
    );
    assert_eq!(
        ids(s
            .list("u", StateFilter::Unacknowledged, 0, 100)
            .await
            .unwrap()),
        ["n0", "n1", "n3", "n4"]
    );
    assert_eq!(
        ids(s.list("u", StateFilter::Pending, 0, 100).await.unwrap()),
        ["n0", "n3", "n4"]
    );
    assert_eq!(
        ids(s.list("u", StateFilter::Delivered, 0, 100).await.unwrap()),
        ["n1"]
    );
    assert_eq!(
        ids(s
            .list("u", StateFilter::Acknowledged, 0, 100)
            .await
            .unwrap()),
        ["n2"]
    );
    let page = s.list("u", StateFilter::All, 0, 2).await.unwrap();
    assert!(page[0].seq < page[1].seq, "seq increases with insertion");
    let next = s.list("u", StateFilter::All, page[1].seq, 2).await.unwrap();
    assert_eq!(ids(next), ["n2", "n3"]);
}

async fn a_first_delivery_mark_stands_and_precedes_a_later_acknowledgement(s: &dyn Store) {
    s.insert(&note("n", "t", 1), &["u1".into(), "u2".into()])
        .await
        .unwrap();
    s.mark_delivered("n", "u1", 5);
    s.mark_delivered("n", "u1", 6);
    // Neither a recipient nor a notification: nothing to mark, no harm.
    s.mark_delivered("n", "stranger", 5);
    s.mark_delivered("nope", "u1", 5);
    // The acknowledgement is awaited: the marks queued before it are
    // committed by the time it answers.
    s.acknowledge("n", "u2", 7).await.unwrap();
    let u1 = s.user_notification("n", "u1").await.unwrap().unwrap();
    assert_eq!(u1.recipient.delivered_at, Some(5), "the first mark stands");
    s.mark_delivered("n", "u1", 8);
    s.acknowledge("n", "u1", 9).await.unwrap();
    let u1 = s.user_notification("n", "u1").await.unwrap().unwrap();
    assert_eq!(
        (u1.recipient.delivered_at, u1.recipient.acknowledged_at),
        (Some(5), Some(9))
    );
    let u2 = s.user_notification("n", "u2").await.unwrap().unwrap();
    assert_eq!(u2.recipient.delivered_at, None);
}

async fn purge_respects_both_retentions(s: &dyn Store) {
    s.insert(&note("old-unacked", "t", 1), &["u".into()])
        .await
        .unwrap();
    s.insert(&note("old-acked", "t", 1), &["u".into()])
        .await
        .unwrap();
    s.insert(&note("new", "t", 50), &["u".into()])
        .await
        .unwrap();
    s.acknowledge("old-acked", "u", 60).await.unwrap();
    assert_eq!(s.purge(10, 10).await.unwrap(), 1);
    assert!(s.notification("old-unacked").await.unwrap().is_none());
    assert!(s.notification("old-acked").await.unwrap().is_some());
    assert_eq!(s.purge(70, 10).await.unwrap(), 1);
    assert!(s.notification("old-acked").await.unwrap().is_none());
    assert!(s.notification("new").await.unwrap().is_some());
    // A purged id can be stored again, as new.
    let again = s
        .insert(&note("old-unacked", "again", 80), &["u".into()])
        .await
        .unwrap();
    assert_eq!(again.new_for, vec![true]);
    assert_eq!(again.notification.body["title"], "again");
}

async fn concurrent_writes_are_each_answered(s: &dyn Store) {
    let notes: Vec<_> = (0..200).map(|i| note(&format!("n{i}"), "t", i)).collect();
    let users = ["u".to_string()];
    let inserted = futures::future::join_all(notes.iter().map(|n| s.insert(n, &users))).await;
    for i in inserted {
        assert_eq!(i.unwrap().new_for, vec![true]);
    }
    let acks = futures::future::join_all(
        notes
            .iter()
            .map(|n| s.acknowledge(&n.id, "u", 1000 + n.created_at)),
    )
    .await;
    for (n, a) in notes.iter().zip(acks) {
        let a = a.unwrap().unwrap();
        assert_eq!((a.at, a.first), (1000 + n.created_at, true));
    }
    assert_eq!(
        s.list("u", StateFilter::Acknowledged, 0, 1000)
            .await
            .unwrap()
            .len(),
        200
    );
}

async fn the_stored_notification_is_the_one_answered(s: &dyn Store) {
    // A float whose nearest double a fast parser can miss by one unit, and
    // keys out of alphabetical order: the answer (the notification as
    // received) and every later read (parsed from the stored text) agree.
    let body =
        serde_json::from_str(r#"{"zeta":1,"id":"lab-1","alpha":2,"value":914.90173876894448}"#)
            .unwrap();
    let n = Notification::from_body(body, || unreachable!(), 1).unwrap();
    let answered = s.insert(&n, &["u".into()]).await.unwrap().notification;
    let (stored, _) = s.notification("lab-1").await.unwrap().unwrap();
    assert_eq!(stored.body, answered.body);
    assert_eq!(
        serde_json::to_string(&stored).unwrap(),
        serde_json::to_string(&answered).unwrap()
    );
    let listed = s.list("u", StateFilter::All, 0, 10).await.unwrap();
    assert_eq!(
        serde_json::to_string(&listed[0].notification).unwrap(),
        serde_json::to_string(&answered).unwrap()
    );
}

async fn an_expired_session_keeps_its_first_time_until_purged(s: &dyn Store) {
    s.expire_session("s1", "u", 10).await.unwrap();
    // Again, earlier: the first time stands.
    s.expire_session("s1", "u", 1).await.unwrap();
    s.expire_session("s2", "u", 20).await.unwrap();
    let mut since_10 = s.expired_sessions(10).await.unwrap();
    since_10.sort();
    assert_eq!(since_10, ["s1", "s2"], "s1 expired at 10, not at 1");
    assert_eq!(s.expired_sessions(11).await.unwrap(), ["s2"]);
    assert!(s.expired_sessions(21).await.unwrap().is_empty());
    s.purge(0, 15).await.unwrap();
    assert_eq!(s.expired_sessions(0).await.unwrap(), ["s2"]);
}

async fn a_session_belongs_to_its_first_user_until_purged(s: &dyn Store) {
    assert_eq!(s.claim_session("s1", "alice", 10).await.unwrap(), "alice");
    assert_eq!(s.claim_session("s1", "alice", 11).await.unwrap(), "alice");
    assert_eq!(
        s.claim_session("s1", "mallory", 12).await.unwrap(),
        "alice",
        "another user's claim does not take the session"
    );
    assert_eq!(s.claim_session("s2", "bob", 20).await.unwrap(), "bob");
    // Claimed concurrently by two users: one wins, both hear the same owner.
    let (a, b) = futures::join!(
        s.claim_session("s3", "carol", 30),
        s.claim_session("s3", "dave", 30)
    );
    assert_eq!(a.unwrap(), b.unwrap());
    // Purged by age of the first claim: s1 (10) goes, s2 (20) stays.
    s.purge(0, 15).await.unwrap();
    assert_eq!(
        s.claim_session("s1", "mallory", 40).await.unwrap(),
        "mallory"
    );
    assert_eq!(s.claim_session("s2", "mallory", 40).await.unwrap(), "bob");
}

async fn unknown_ids_and_users_read_as_absent(s: &dyn Store) {
    s.ping().await.unwrap();
    s.insert(&note("n", "t", 1), &["u".into()]).await.unwrap();
    assert!(s.notification("nope").await.unwrap().is_none());
    assert!(s
        .user_notification("n", "stranger")
        .await
        .unwrap()
        .is_none());
    assert!(s.user_notification("nope", "u").await.unwrap().is_none());
    for filter in [
        StateFilter::All,
        StateFilter::Unacknowledged,
        StateFilter::Pending,
    ] {
        assert!(s.list("stranger", filter, 0, 10).await.unwrap().is_empty());
    }
    let inserted = s.insert(&note("empty", "t", 1), &[]).await.unwrap();
    assert!(inserted.new_for.is_empty());
}

async fn every_users_unacknowledged_oldest_first_with_their_total(s: &dyn Store) {
    assert_eq!(s.unacknowledged(10).await.unwrap().total, 0);
    s.insert(&note("late", "t", 30), &["u1".into()])
        .await
        .unwrap();
    s.insert(&note("early", "t", 10), &["u2".into(), "u1".into()])
        .await
        .unwrap();
    s.insert(&note("middle", "t", 20), &["u3".into()])
        .await
        .unwrap();
    s.acknowledge("middle", "u3", 40).await.unwrap();
    let open = s.unacknowledged(10).await.unwrap();
    assert_eq!(open.total, 3, "two recipients of early, one of late");
    let rows: Vec<(String, String)> = open
        .oldest
        .iter()
        .map(|u| (u.notification.id.clone(), u.recipient.user_id.clone()))
        .collect();
    let expected = [("early", "u2"), ("early", "u1"), ("late", "u1")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, u)| (n.to_string(), u.to_string()))
        .collect();
    assert_eq!(rows, expected, "oldest first, then in insertion order");
    let page = s.unacknowledged(1).await.unwrap();
    assert_eq!(
        (page.total, page.oldest.len()),
        (3, 1),
        "the total is not the page"
    );
}

fn completion(id: &str, level: u32, owner: &str, at: Millis, then: StepOutcome) -> Completion {
    Completion {
        notification_id: id.into(),
        level,
        owner: owner.into(),
        at,
        add_users: vec![],
        add_role: None,
        audit: vec![],
        then,
    }
}

async fn levels(s: &dyn Store, now: Millis, owner: &str) -> Vec<(u32, bool, u32)> {
    s.claim_steps(now, owner, now + 1000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.level, c.fired, c.attempts))
        .collect()
}

async fn escalation_steps_fire_once_in_order_and_are_taken_over_after_a_lease(s: &dyn Store) {
    let steps = [(1, 100), (2, 200), (3, 300)];
    s.insert_scheduled(&note("n", "t", 0), &["u".into()], &steps)
        .await
        .unwrap();
    assert_eq!(s.next_step_due().await.unwrap(), Some(100));
    assert!(levels(s, 50, "a").await.is_empty(), "nothing is due early");
    // Levels 2 and 3 are due too, but wait for level 1.
    assert_eq!(levels(s, 250, "a").await, [(1, false, 0)]);
    assert!(levels(s, 250, "b").await.is_empty(), "a claim is held");
    assert_eq!(s.next_claim_end(250).await.unwrap(), Some(1250));
    assert_eq!(s.next_claim_end(1250).await.unwrap(), None);
    let b = completion("n", 1, "b", 260, StepOutcome::Done);
    assert!(
        !s.complete_step(&b).await.unwrap(),
        "only the claimer completes"
    );
    let fired = completion("n", 1, "a", 260, StepOutcome::Fired);
    assert!(s.complete_step(&fired).await.unwrap());
    assert!(levels(s, 300, "b").await.is_empty());
    // `a` died holding the fired step: past its lease, `b` takes it over,
    // fired (so `b` only tells the sockets), and `a` can no longer complete it.
    assert_eq!(levels(s, 1250, "b").await, [(1, true, 0)]);
    assert!(s
        .complete_step(&completion("n", 1, "b", 1251, StepOutcome::Done))
        .await
        .unwrap());
    assert!(!s
        .complete_step(&completion("n", 1, "a", 1252, StepOutcome::Done))
        .await
        .unwrap());
    assert_eq!(levels(s, 1300, "b").await, [(2, false, 0)]);
    let mut escalate = completion("n", 2, "b", 1301, StepOutcome::Done);
    escalate.add_users = vec!["x".into()];
    escalate.add_role = Some("attending".into());
    escalate.audit = vec![Entry::new(Kind::Escalated, 1301).notification("n").level(2)];
    assert!(s.complete_step(&escalate).await.unwrap());
    let x = s.user_notification("n", "x").await.unwrap().unwrap();
    assert_eq!(x.recipient.escalation_level, Some(2));
    assert_eq!(x.recipient.delivered_at, None);
    let u = s.user_notification("n", "u").await.unwrap().unwrap();
    assert_eq!(u.recipient.escalation_level, None);
    assert_eq!(s.open_roles().await.unwrap(), ["attending"]);
    // A webhook that failed is retried later and no longer holds back
    // the levels after it.
    assert_eq!(levels(s, 1400, "b").await, [(3, false, 0)]);
    let retry = completion("n", 3, "b", 1401, StepOutcome::RetryAt(5000));
    assert!(s.complete_step(&retry).await.unwrap());
    assert!(levels(s, 1500, "c").await.is_empty());
    assert_eq!(s.next_step_due().await.unwrap(), Some(5000));
    assert_eq!(levels(s, 5000, "c").await, [(3, false, 1)]);
    assert!(s
        .complete_step(&completion("n", 3, "c", 5001, StepOutcome::Done))
        .await
        .unwrap());
    assert_eq!(s.next_step_due().await.unwrap(), None);
}

async fn closing_ends_escalation_and_the_escalated_recipients_catch_up(s: &dyn Store) {
    let steps = [(1, 100), (2, 200)];
    s.insert_scheduled(&note("n", "t", 0), &["u".into()], &steps)
        .await
        .unwrap();
    assert_eq!(levels(s, 100, "a").await, [(1, false, 0)]);
    let mut to_role = completion("n", 1, "a", 101, StepOutcome::Done);
    to_role.add_role = Some("attending".into());
    assert!(s.complete_step(&to_role).await.unwrap());
    // A member of the role joins on connect, once; other roles do not.
    assert_eq!(s.join_role("y", "attending", None, 150).await.unwrap(), 1);
    assert_eq!(s.join_role("y", "attending", None, 151).await.unwrap(), 0);
    assert_eq!(s.join_role("z", "resident", None, 152).await.unwrap(), 0);
    assert_eq!(
        s.join_role("w", "attending", Some("other"), 153)
            .await
            .unwrap(),
        0
    );
    let y = s
        .list("y", StateFilter::Unacknowledged, 0, 10)
        .await
        .unwrap();
    assert_eq!(ids(y), ["n"]);
    // Claimed, then closed by the escalation recipient: the claim cannot
    // complete, nothing more is due, and the role is no longer open.
    assert_eq!(levels(s, 200, "a").await, [(2, false, 0)]);
    let source = Source {
        socket_id: Some("s1".into()),
        remote: Some("10.0.0.7:5000".into()),
    };
    let ack = s
        .acknowledge_from("n", "y", 210, &source)
        .await
        .unwrap()
        .unwrap();
    let closed = ack.closed.unwrap();
    assert_eq!((closed.at, closed.by.as_str()), (210, "y"));
    assert_eq!(closed.users, ["u", "y"]);
    assert_eq!(closed.roles, ["attending"]);
    assert!(!s
        .complete_step(&completion("n", 2, "a", 211, StepOutcome::Done))
        .await
        .unwrap());
    assert!(levels(s, 10_000, "b").await.is_empty());
    assert_eq!(s.next_step_due().await.unwrap(), None);
    assert!(s.open_roles().await.unwrap().is_empty());
    assert_eq!(s.join_role("v", "attending", None, 300).await.unwrap(), 0);
    // The original recipient still has it to acknowledge; a second
    // acknowledgement closes nothing.
    let u = s
        .list("u", StateFilter::Unacknowledged, 0, 10)
        .await
        .unwrap();
    assert_eq!(ids(u), ["n"]);
    let second = s.acknowledge("n", "u", 220).await.unwrap().unwrap();
    assert!(second.first && second.closed.is_none());
}

async fn chain_of(s: &dyn Store) -> Vec<trail::Record> {
    s.audit_page(0, 0, Millis::MAX, 1000).await.unwrap()
}

async fn the_audit_trail_is_one_verifiable_chain_with_each_timeline(s: &dyn Store) {
    s.insert(&note("n", "t", 1), &["u".into()]).await.unwrap();
    s.insert(&note("m", "t", 2), &["u".into()]).await.unwrap();
    s.record(
        Entry::new(Kind::Delivered, 3)
            .notification("n")
            .user("u")
            .socket("s1"),
    );
    s.record(Entry::new(Kind::ConnectionRefused, 4).detail(json!({"reason": "token_expired"})));
    let source = Source {
        socket_id: Some("s1".into()),
        remote: Some("10.0.0.7:5000".into()),
    };
    // The queued records commit before a later acknowledgement.
    s.acknowledge_from("n", "u", 5, &source)
        .await
        .unwrap()
        .unwrap();
    let timeline: Vec<_> = s
        .timeline("n")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect();
    let kinds: Vec<_> = timeline.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Created,
            Kind::Delivered,
            Kind::Acknowledged,
            Kind::Closed
        ]
    );
    assert_eq!(timeline[1].socket_id.as_deref(), Some("s1"));
    assert_eq!(timeline[2].user_id.as_deref(), Some("u"));
    assert_eq!(timeline[2].detail, Some(json!({"remote": "10.0.0.7:5000"})));
    let all = chain_of(s).await;
    assert_eq!(all.len(), 6);
    let anchor = s.audit_anchor().await.unwrap();
    assert_eq!(trail::verify(&mut Chain::from(anchor), &all), Ok(6));
    // A period is a window of the same chain.
    let window = s.audit_page(0, 3, 5, 1000).await.unwrap();
    let kinds: Vec<_> = window.iter().map(|r| r.entry.kind).collect();
    assert_eq!(kinds, [Kind::Delivered, Kind::ConnectionRefused]);
    let after = s.audit_page(all[3].seq, 0, Millis::MAX, 1).await.unwrap();
    assert_eq!(after[0].seq, all[4].seq);
}

async fn retention_keeps_what_remains_of_the_chain_verifiable(s: &dyn Store) {
    s.insert(&note("old", "t", 1), &["u".into()]).await.unwrap();
    s.acknowledge("old", "u", 2).await.unwrap();
    s.insert(&note("new", "t", 1000), &["u".into()])
        .await
        .unwrap();
    s.purge(500, 500).await.unwrap();
    let anchor = s.audit_anchor().await.unwrap();
    assert_eq!(anchor.seq, 3, "created, acknowledged, closed went");
    let rest = chain_of(s).await;
    let kinds: Vec<_> = rest.iter().map(|r| r.entry.kind).collect();
    assert_eq!(kinds, [Kind::Created, Kind::Purged]);
    assert_eq!(trail::verify(&mut Chain::from(anchor), &rest), Ok(2));
    assert!(s.timeline("old").await.unwrap().is_empty());
}

async fn the_report_reads_severity_and_closing_of_each_notification(s: &dyn Store) {
    let critical = |id: &str, at| {
        Notification::from_body(
            json!({"id": id, "severity": "critical"}),
            || unreachable!(),
            at,
        )
        .unwrap()
    };
    s.insert(&critical("a", 10), &["u".into()]).await.unwrap();
    s.insert(&critical("b", 20), &["u".into()]).await.unwrap();
    s.insert(&note("c", "t", 30), &["u".into()]).await.unwrap();
    s.insert(&note("late", "t", 100), &["u".into()])
        .await
        .unwrap();
    s.acknowledge("a", "u", 40).await.unwrap();
    let mut rows = s.report_rows(0, 100).await.unwrap();
    rows.sort_by_key(|r| r.created_at);
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.severity.as_deref(), r.created_at, r.closed_at))
        .collect();
    assert_eq!(
        got,
        [
            (Some("critical"), 10, Some(40)),
            (Some("critical"), 20, None),
            (None, 30, None)
        ]
    );
}

async fn escalations_read_the_fired_level_and_the_next_step_of_each_id(s: &dyn Store) {
    let steps = [(1, 100), (2, 200), (3, 300)];
    s.insert_scheduled(&note("n", "t", 0), &["u".into()], &steps)
        .await
        .unwrap();
    s.insert_scheduled(&note("m", "t", 0), &["u".into()], &[(1, 5000)])
        .await
        .unwrap();
    s.insert(&note("plain", "t", 0), &["u".into()])
        .await
        .unwrap();
    let ask = |ids: &[&str]| ids.iter().map(|i| i.to_string()).collect::<Vec<_>>();
    let all = ask(&["n", "m", "plain", "unknown"]);
    let got = s.escalations(&all).await.unwrap();
    let at = |fired, next| Escalation {
        fired,
        next,
        closed_at: None,
    };
    assert_eq!(got.len(), 3, "an unknown id is left out");
    assert_eq!(got["n"], at(0, Some((1, 100))));
    assert_eq!(got["m"], at(0, Some((1, 5000))));
    assert_eq!(got["plain"], at(0, None), "nothing to escalate");

    // Level 1 reminded: its record counts, and level 2 is next.
    assert_eq!(levels(s, 100, "a").await, [(1, false, 0)]);
    let mut remind = completion("n", 1, "a", 101, StepOutcome::Done);
    remind.audit = vec![Entry::new(Kind::Reminded, 101).notification("n").level(1)];
    assert!(s.complete_step(&remind).await.unwrap());
    assert_eq!(
        s.escalations(&ask(&["n"])).await.unwrap()["n"],
        at(1, Some((2, 200)))
    );

    // Level 2 fired (its durable part committed, sockets being told): it is
    // no longer next, though its row remains until done.
    assert_eq!(levels(s, 200, "a").await, [(2, false, 0)]);
    let mut escalate = completion("n", 2, "a", 201, StepOutcome::Fired);
    escalate.audit = vec![Entry::new(Kind::Escalated, 201).notification("n").level(2)];
    assert!(s.complete_step(&escalate).await.unwrap());
    assert_eq!(
        s.escalations(&ask(&["n"])).await.unwrap()["n"],
        at(2, Some((3, 300)))
    );
    assert!(s
        .complete_step(&completion("n", 2, "a", 202, StepOutcome::Done))
        .await
        .unwrap());

    // A failing webhook is not fired; it is next at its retry time.
    assert_eq!(levels(s, 300, "a").await, [(3, false, 0)]);
    let mut failed = completion("n", 3, "a", 301, StepOutcome::RetryAt(900));
    failed.audit = vec![Entry::new(Kind::WebhookFailed, 301)
        .notification("n")
        .level(3)];
    assert!(s.complete_step(&failed).await.unwrap());
    assert_eq!(
        s.escalations(&ask(&["n"])).await.unwrap()["n"],
        at(2, Some((3, 900)))
    );

    // Closing removes what was left; the fired level stands.
    s.acknowledge("n", "u", 400).await.unwrap();
    let closed = s.escalations(&ask(&["n", "m"])).await.unwrap();
    assert_eq!(
        closed["n"],
        Escalation {
            fired: 2,
            next: None,
            closed_at: Some(400)
        }
    );
    assert_eq!(
        closed["m"],
        at(0, Some((1, 5000))),
        "only the asked-for ids"
    );
    assert!(s.escalations(&[]).await.unwrap().is_empty());
}
