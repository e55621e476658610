//! The audit trail's contract: one verifiable chain, each notification's timeline, retention's anchor.

use super::*;

async fn chain_of(s: &dyn Store) -> Vec<trail::Record> {
    s.audit_page(0, 0, Millis::MAX, 1000).await.unwrap()
}

pub(super) async fn the_audit_trail_is_one_verifiable_chain_with_each_timeline(s: &dyn Store) {
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

pub(super) async fn retention_keeps_what_remains_of_the_chain_verifiable(s: &dyn Store) {
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
