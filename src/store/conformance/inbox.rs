//! The inbox's contract: first bodies, acknowledgements, listings, delivery marks, purges.

use super::*;

pub(super) async fn first_body_stands_and_recipients_are_idempotent(s: &dyn Store) {
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
    assert_eq!(b.notification.body()["title"], "first");
    let (stored, recipients) = s.notification("n1").await.unwrap().unwrap();
    assert_eq!(stored.body()["title"], "first");
    assert_eq!(stored.created_at, 1);
    let users: Vec<_> = recipients.iter().map(|r| r.user_id.as_str()).collect();
    assert_eq!(users, ["u1", "u2"], "in the order they were added");
}

/// Whom a closing tells: the recipients in inbox order (the order they
/// were added), not by name.
pub(super) async fn a_closing_names_the_recipients_in_inbox_order(s: &dyn Store) {
    s.insert(&note("n", "t", 1), &["zed".into(), "amy".into()])
        .await
        .unwrap();
    s.insert(&note("n", "t", 2), &["bob".into()]).await.unwrap();
    let closed = s.acknowledge("n", "amy", 3).await.unwrap().unwrap().closed;
    assert_eq!(closed.unwrap().users, ["zed", "amy", "bob"]);
}

pub(super) async fn acknowledgement_is_per_recipient_and_first_time_stands(s: &dyn Store) {
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

/// Several users' first pages read together are each user's own listing
/// from the start, in the order asked, a user asked twice answered twice.
pub(super) async fn first_pages_are_each_users_listing_in_the_order_asked(s: &dyn Store) {
    for i in 0..4 {
        s.insert(&note(&format!("a{i}"), "t", i), &["a".into()])
            .await
            .unwrap();
    }
    s.insert(&note("b0", "t", 9), &["b".into(), "a".into()])
        .await
        .unwrap();
    s.acknowledge("a1", "a", 100).await.unwrap();
    let users: Vec<String> = ["b", "nobody", "a", "b"].map(String::from).to_vec();
    let pages = s
        .first_pages(&users, StateFilter::Unacknowledged, 3)
        .await
        .unwrap();
    let pages: Vec<Vec<String>> = pages.into_iter().map(ids).collect();
    assert_eq!(
        pages,
        [vec!["b0"], vec![], vec!["a0", "a2", "a3"], vec!["b0"]]
    );
    assert_eq!(
        ids(s
            .list("a", StateFilter::Unacknowledged, 0, 3)
            .await
            .unwrap()),
        pages[2]
    );
    assert!(s
        .first_pages(&[], StateFilter::Unacknowledged, 3)
        .await
        .unwrap()
        .is_empty());
}

pub(super) async fn lists_filter_by_state_oldest_first_and_page(s: &dyn Store) {
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

pub(super) async fn a_first_delivery_mark_stands_and_precedes_a_later_acknowledgement(
    s: &dyn Store,
) {
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

pub(super) async fn purge_respects_both_retentions(s: &dyn Store) {
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
    assert_eq!(again.notification.body()["title"], "again");
}

pub(super) async fn concurrent_writes_are_each_answered(s: &dyn Store) {
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

pub(super) async fn the_stored_notification_is_the_one_answered(s: &dyn Store) {
    // A float whose nearest double a fast parser can miss by one unit, and
    // keys out of alphabetical order: the answer (the notification as
    // received) and every later read (parsed from the stored text) agree.
    let body =
        serde_json::from_str(r#"{"zeta":1,"id":"lab-1","alpha":2,"value":914.90173876894448}"#)
            .unwrap();
    let n = Notification::from_body(body, || unreachable!(), 1).unwrap();
    let answered = s.insert(&n, &["u".into()]).await.unwrap().notification;
    let (stored, _) = s.notification("lab-1").await.unwrap().unwrap();
    assert_eq!(stored.body(), answered.body());
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

pub(super) async fn unknown_ids_and_users_read_as_absent(s: &dyn Store) {
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
