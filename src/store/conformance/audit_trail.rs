//! The audit trail's contract: one verifiable chain, each notification's
//! timeline (its records show at once, sealed or not), retention's anchor;
//! and, for an engine several nodes share, one chain whatever writes at once.

use super::*;

async fn chain_of(s: &dyn Store) -> Vec<trail::Record> {
    s.audit_page(0, 0, Millis::MAX, 1000).await.unwrap()
}

/// The head a checkpoint signs: the newest sealed record's place and hash.
async fn assert_head_is_last(s: &dyn Store, all: &[trail::Record]) {
    let last = all.last().expect("a chain with records");
    let head = s.audit_head().await.unwrap();
    assert_eq!(
        (head.seq, head.hash.as_str()),
        (last.seq, last.hash.as_str())
    );
}

pub(super) async fn the_audit_trail_is_one_verifiable_chain_with_each_timeline(s: &dyn Store) {
    assert_eq!(s.audit_head().await.unwrap(), Chain::default());
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
    let timeline: Vec<_> = s.timeline("n").await.unwrap().into_iter().collect();
    let kinds: Vec<_> = timeline.iter().map(|e| e.kind).collect();
    // The acknowledgement closed the notification: one record says both.
    assert_eq!(kinds, [Kind::Created, Kind::Delivered, Kind::Acknowledged]);
    assert_eq!(timeline[1].socket_id.as_deref(), Some("s1"));
    assert_eq!(timeline[2].user_id.as_deref(), Some("u"));
    assert_eq!(
        timeline[2].detail,
        Some(json!({"remote": "10.0.0.7:5000", "closed": true}))
    );
    s.seal_audit().await.unwrap();
    assert_eq!(s.unsealed().await.unwrap().count, 0);
    // Sealing moves the records; the timeline reads the same.
    assert_eq!(s.timeline("n").await.unwrap(), timeline);
    let all = chain_of(s).await;
    assert_eq!(all.len(), 5);
    let anchor = s.audit_anchor().await.unwrap();
    assert_eq!(trail::verify(&mut Chain::from(anchor), &all), Ok(5));
    assert_head_is_last(s, &all).await;
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
    assert_eq!(
        anchor.seq, 2,
        "created and the closing acknowledgement went"
    );
    let rest = chain_of(s).await;
    let kinds: Vec<_> = rest.iter().map(|r| r.entry.kind).collect();
    assert_eq!(kinds, [Kind::Created, Kind::Purged]);
    assert_eq!(trail::verify(&mut Chain::from(anchor), &rest), Ok(2));
    assert_head_is_last(s, &rest).await;
    assert!(s.timeline("old").await.unwrap().is_empty());
}

/// A period's records, whatever hours they span and in whatever order
/// their times came: a record made late with an early time (a retention
/// record names the time it purged before) is found in its period, and a
/// period with no records reads none.
pub(super) async fn a_period_holds_every_record_of_its_time_across_hours(s: &dyn Store) {
    const HOUR: Millis = 3_600_000;
    let times = [HOUR - 1, HOUR, 3 * HOUR + 5, HOUR + 7, 10 * HOUR];
    for (i, at) in times.iter().enumerate() {
        s.record(Entry::new(Kind::ConnectionRefused, *at).detail(json!({ "i": i })));
    }
    // An awaited write commits the queued records first.
    s.insert(&note("n", "t", 10 * HOUR + 1), &["u".into()])
        .await
        .unwrap();
    s.seal_audit().await.unwrap();
    let at_of = |page: Vec<trail::Record>| -> Vec<Millis> {
        page.into_iter().map(|r| r.entry.at).collect()
    };
    let period = |from, to| s.audit_page(0, from, to, 1000);
    assert_eq!(at_of(period(0, HOUR).await.unwrap()), [HOUR - 1]);
    assert_eq!(
        at_of(period(HOUR, 2 * HOUR).await.unwrap()),
        [HOUR, HOUR + 7]
    );
    assert_eq!(
        at_of(period(HOUR - 1, 3 * HOUR + 6).await.unwrap()),
        [HOUR - 1, HOUR, 3 * HOUR + 5, HOUR + 7]
    );
    assert!(period(4 * HOUR, 10 * HOUR).await.unwrap().is_empty());
    assert!(period(20 * HOUR, 30 * HOUR).await.unwrap().is_empty());
    // Paged: each page after the last record of the one before.
    let first = s.audit_page(0, HOUR, 4 * HOUR, 1).await.unwrap();
    let second = s
        .audit_page(first[0].seq, HOUR, 4 * HOUR, 10)
        .await
        .unwrap();
    assert_eq!(at_of(first), [HOUR]);
    assert_eq!(at_of(second), [3 * HOUR + 5, HOUR + 7]);
}

/// Two nodes of one shared store writing at once, each recording as it
/// goes: once sealed, one chain that verifies and holds every record
/// exactly once, and each notification's timeline in the order it happened.
pub(super) async fn two_nodes_writing_at_once_leave_one_chain_with_each_record_once(
    a: &dyn Store,
    b: &dyn Store,
) {
    const N: usize = 40;
    let users: Vec<String> = vec!["u".into(), "v".into()];
    let notes: Vec<_> = (0..N)
        .map(|i| note(&format!("n{i}"), "t", i as Millis))
        .collect();
    // Both nodes store each notification at once: one `created` each.
    futures::future::join_all(notes.iter().map(|n| async {
        let (x, y) = tokio::join!(a.insert(n, &users), b.insert(n, &users));
        x.unwrap();
        y.unwrap();
    }))
    .await;
    for (i, n) in notes.iter().enumerate() {
        for (s, socket) in [(a, "sa"), (b, "sb")] {
            s.record(
                Entry::new(Kind::Delivered, 100 + i as Millis)
                    .notification(&n.id)
                    .user("u")
                    .socket(socket),
            );
        }
    }
    // Two recipients acknowledge at once on two nodes: both are first for
    // themselves, and the notification closes once.
    let races = futures::future::join_all(notes.iter().map(|n| async {
        tokio::join!(
            a.acknowledge(&n.id, "u", 1000),
            b.acknowledge(&n.id, "v", 1001)
        )
    }))
    .await;
    for (n, (x, y)) in notes.iter().zip(races) {
        let (x, y) = (x.unwrap().unwrap(), y.unwrap().unwrap());
        assert!(x.first && y.first, "{}", n.id);
        assert!(
            x.closed.is_some() != y.closed.is_some(),
            "{}: closed once",
            n.id
        );
    }
    // Sealing from both nodes at once as well.
    let (x, y) = tokio::join!(a.seal_audit(), b.seal_audit());
    x.unwrap();
    y.unwrap();
    assert_eq!(a.unsealed().await.unwrap().count, 0);
    let chain = a.audit_page(0, 0, Millis::MAX, 10_000).await.unwrap();
    let anchor = a.audit_anchor().await.unwrap();
    // N created, 2N delivered, 2N acknowledged (N of them closing).
    assert_eq!(
        trail::verify(&mut Chain::from(anchor), &chain),
        Ok(5 * N as u64)
    );
    let mut seen = std::collections::HashSet::new();
    for r in &chain {
        let e = &r.entry;
        let key = (
            e.kind,
            e.notification_id.clone(),
            e.user_id.clone(),
            e.socket_id.clone(),
        );
        assert!(seen.insert(key.clone()), "{key:?} is in the chain twice");
    }
    for n in &notes {
        let entries = b.timeline(&n.id).await.unwrap();
        let kinds: Vec<Kind> = entries.iter().map(|e| e.kind).collect();
        let closing = entries
            .iter()
            .filter(|e| e.detail.as_ref().is_some_and(|d| d["closed"] == true))
            .count();
        assert_eq!(closing, 1, "{}: one acknowledgement closed it", n.id);
        assert_eq!(kinds.len(), 5, "{}: {kinds:?}", n.id);
        assert_eq!(kinds[0], Kind::Created, "{}: {kinds:?}", n.id);
    }
}

pub(super) async fn a_hand_over_to_several_sockets_is_one_record_and_its_mark(s: &dyn Store) {
    s.insert(&note("n", "t", 1), &["u".into()]).await.unwrap();
    s.delivered("n", "u", 3, &["s1".into(), "s2".into()]);
    // The queued mark and record commit before a later acknowledgement.
    s.acknowledge("n", "u", 5).await.unwrap().unwrap();
    let (_, recipients) = s.notification("n").await.unwrap().unwrap();
    assert_eq!(recipients[0].delivered_at, Some(3), "the delivery mark");
    let records = s.timeline("n").await.unwrap();
    let delivered: Vec<_> = records
        .iter()
        .filter(|e| e.kind == Kind::Delivered)
        .collect();
    assert_eq!(delivered.len(), 1, "one record for both sockets");
    assert_eq!(delivered[0].user_id.as_deref(), Some("u"));
    assert_eq!(delivered[0].socket_id, None);
    assert_eq!(delivered[0].detail, Some(json!({"sockets": ["s1", "s2"]})));
    let events = trail::timeline::events(&records);
    let sockets: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "delivered")
        .map(|e| (e["socketId"].as_str(), e["at"].as_str()))
        .collect();
    assert_eq!(
        sockets,
        [
            (Some("s1"), Some("1970-01-01T00:00:00.003Z")),
            (Some("s2"), Some("1970-01-01T00:00:00.003Z"))
        ],
        "the timeline shows each socket and when"
    );
    s.seal_audit().await.unwrap();
    let all = chain_of(s).await;
    let anchor = s.audit_anchor().await.unwrap();
    assert_eq!(trail::verify(&mut Chain::from(anchor), &all), Ok(3));
}
