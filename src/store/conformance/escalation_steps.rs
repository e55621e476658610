//! The escalation steps' contract: claimed once, fired in order, taken over after a lease, ended by closing.

use super::*;
use std::sync::Arc;

pub(super) async fn escalation_steps_fire_once_in_order_and_are_taken_over_after_a_lease(
    s: &dyn Store,
) {
    let steps = [(1, 100), (2, 200), (3, 300)];
    s.insert_scheduled(&Arc::new(note("n", "t", 0)), &["u".into()], &steps)
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

pub(super) async fn closing_ends_escalation_and_the_escalated_recipients_catch_up(s: &dyn Store) {
    let steps = [(1, 100), (2, 200)];
    s.insert_scheduled(&Arc::new(note("n", "t", 0)), &["u".into()], &steps)
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
