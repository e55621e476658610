//! The read models' contract: the dashboard's unacknowledged and escalations, the report's rows.

use super::*;
use std::sync::Arc;

pub(super) async fn every_users_unacknowledged_oldest_first_with_their_total(s: &dyn Store) {
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

pub(super) async fn the_report_reads_severity_and_closing_of_each_notification(s: &dyn Store) {
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

pub(super) async fn escalations_read_the_fired_level_and_the_next_step_of_each_id(s: &dyn Store) {
    let steps = [(1, 100), (2, 200), (3, 300)];
    s.insert_scheduled(&Arc::new(note("n", "t", 0)), &["u".into()], &steps)
        .await
        .unwrap();
    s.insert_scheduled(&Arc::new(note("m", "t", 0)), &["u".into()], &[(1, 5000)])
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
