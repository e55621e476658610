//! The session records' contract: the first expiry and the first owner stand until purged.

use super::*;

pub(super) async fn an_expired_session_keeps_its_first_time_until_purged(s: &dyn Store) {
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

pub(super) async fn a_session_belongs_to_its_first_user_until_purged(s: &dyn Store) {
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

pub(super) async fn claims_written_together_answer_each_owner_in_order(s: &dyn Store) {
    assert_eq!(s.claim_session("old", "alice", 10).await.unwrap(), "alice");
    let claims = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(s, u)| (s.to_string(), u.to_string()))
            .collect()
    };
    let owners = s
        .claim_sessions(
            &claims(&[
                ("new", "bob"),
                ("old", "mallory"),
                ("twice", "carol"),
                ("twice", "dave"),
                ("new", "bob"),
            ]),
            20,
        )
        .await
        .unwrap();
    assert_eq!(owners, ["bob", "alice", "carol", "carol", "bob"]);
    assert_eq!(s.claim_session("twice", "dave", 30).await.unwrap(), "carol");
    assert!(s.claim_sessions(&[], 40).await.unwrap().is_empty());
}
