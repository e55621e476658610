//! The room grants' contract: granted once, revoked once, read back.

use super::*;

pub(super) async fn a_room_grant_stands_until_revoked(s: &dyn Store) {
    assert!(!s.room_granted("study:1", "u1").await.unwrap());
    assert!(s.grant_room("study:1", "u1", 10).await.unwrap());
    assert!(!s.grant_room("study:1", "u1", 20).await.unwrap(), "held");
    assert!(s.room_granted("study:1", "u1").await.unwrap());
    assert!(!s.room_granted("study:1", "u2").await.unwrap(), "per user");
    assert!(!s.room_granted("study:2", "u1").await.unwrap(), "per room");
    assert!(s.revoke_room("study:1", "u1").await.unwrap());
    assert!(
        !s.revoke_room("study:1", "u1").await.unwrap(),
        "revoked once"
    );
    assert!(!s.room_granted("study:1", "u1").await.unwrap());
    assert!(
        s.grant_room("study:1", "u1", 30).await.unwrap(),
        "granted again"
    );
}
