//! Calls on the injectable clock: an invitation nobody accepts ends for
//! everyone once `webrtc.ring_timeout` passes, an accepted call never
//! does, and the ringing sockets of a call whose inviter's node went
//! silent end on their own node after a grace; no test sleeps through a
//! timeout.

mod common;

use common::{EioClient, TestServer};
use herald::broker::{Message, Target};
use herald::calls::{CallNews, Peer, RING_GRACE_MS};
use serde_json::json;

const DAY: i64 = 24 * 60 * 60 * 1000;
const RING: i64 = 20_000;

async fn server() -> TestServer {
    TestServer::start_with(|f| f.webrtc.ring_timeout = Some("20s".into())).await
}

async fn connect(s: &TestServer, user: &str) -> (EioClient, String) {
    let token = s.token(user, &format!("{user}-session"), "radiologist", DAY);
    let (c, connected) = s.connect_ok(&token).await;
    let sid = connected["socketId"].as_str().unwrap().to_string();
    (c, sid)
}

/// Runs the deadlines due now, then asks `c` for `activity`: the events
/// it was sent before that answer (so before the deadlines ran, or by them).
async fn run_due_seen_by(s: &TestServer, c: &mut EioClient) -> Vec<String> {
    s.hub.run_due().await;
    let (seen, answer) = c.call_seeing("activity", None).await;
    assert_eq!(answer, json!({ "ok": true }));
    seen
}

async fn invite(c: &mut EioClient, user: &str) -> String {
    let answer = c
        .call(
            "call_invite",
            Some(json!({ "to": { "userId": user }, "media": ["audio"] })),
        )
        .await;
    assert_eq!(answer["ok"], true, "{answer}");
    answer["callId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_call_nobody_accepts_ends_for_everyone_at_the_ring_timeout() {
    let s = server().await;
    let (mut ann, _) = connect(&s, "ann").await;
    let (mut ben1, _) = connect(&s, "ben").await;
    let (mut ben2, _) = connect(&s, "ben").await;
    let call_id = invite(&mut ann, "ben").await;
    for ben in [&mut ben1, &mut ben2] {
        assert_eq!(
            ben.expect_event("call_incoming").await["callId"],
            call_id.as_str()
        );
    }
    // A decline is no accept: the other tab still rings.
    let declined = ben2
        .call(
            "call_answer",
            Some(json!({ "callId": call_id, "accept": false })),
        )
        .await;
    assert_eq!(declined["ok"], true, "{declined}");

    s.clock.advance(RING - 1);
    assert_eq!(run_due_seen_by(&s, &mut ann).await, ["call_answer"]);
    assert!(run_due_seen_by(&s, &mut ben1).await.is_empty());

    s.clock.advance(1);
    s.hub.run_due().await;
    let ended = json!({ "callId": call_id, "by": "ann", "reason": "timeout" });
    assert_eq!(ann.expect_event("call_ended").await, ended);
    assert_eq!(ben1.expect_event("call_ended").await, ended);
    assert!(
        run_due_seen_by(&s, &mut ben2).await.is_empty(),
        "the tab that declined is out of the call"
    );
    // Over: a late accept finds no call, and the caller can call again.
    let late = ben1
        .call(
            "call_answer",
            Some(json!({ "callId": call_id, "accept": true })),
        )
        .await;
    assert_eq!(late["error"]["code"], "not_found", "{late}");
    invite(&mut ann, "ben").await;
    s.stop().await;
}

#[tokio::test]
async fn an_accepted_call_outlives_the_ring_timeout() {
    let s = server().await;
    let (mut ann, ann_sid) = connect(&s, "ann").await;
    let (mut ben, _) = connect(&s, "ben").await;
    let call_id = invite(&mut ann, "ben").await;
    ben.expect_event("call_incoming").await;
    s.clock.advance(RING - 1);
    let accepted = ben
        .call(
            "call_answer",
            Some(json!({ "callId": call_id, "accept": true })),
        )
        .await;
    assert_eq!(accepted["ok"], true, "{accepted}");
    ann.expect_event("call_answer").await;

    s.clock.advance(10 * RING);
    assert!(run_due_seen_by(&s, &mut ann).await.is_empty());
    assert!(run_due_seen_by(&s, &mut ben).await.is_empty());
    // Still a call: a signal passes.
    let signal =
        json!({ "callId": call_id, "to": ann_sid, "type": "offer", "payload": { "sdp": "v=0" } });
    assert_eq!(ben.call("webrtc_signal", Some(signal)).await["ok"], true);
    assert_eq!(
        ann.expect_event("webrtc_signal").await["payload"],
        json!({ "sdp": "v=0" })
    );
    s.stop().await;
}

#[tokio::test]
async fn a_ringing_socket_whose_callers_node_went_silent_stops_ringing_after_a_grace() {
    let s = server().await;
    let (mut ben, _) = connect(&s, "ben").await;
    // Another node's socket invites ben, and that node dies: no end, no
    // answer ever comes from it.
    let news = CallNews::Invite {
        call_id: "call-from-afar".into(),
        from: Peer {
            user_id: "zed".into(),
            socket_id: "a-socket-elsewhere".into(),
        },
        media: vec!["audio".into()],
    };
    let reach = s
        .hub
        .broker()
        .deliver(&Target::user("ben"), &Message::Call(news))
        .await;
    assert_eq!(reach.total(), 1);
    assert_eq!(
        ben.expect_event("call_incoming").await["from"]["userId"],
        "zed"
    );

    s.clock.advance(RING);
    assert!(
        run_due_seen_by(&s, &mut ben).await.is_empty(),
        "the caller's node ends it first"
    );
    s.clock.advance(RING_GRACE_MS);
    s.hub.run_due().await;
    assert_eq!(
        ben.expect_event("call_ended").await,
        json!({ "callId": "call-from-afar", "by": "zed", "reason": "timeout" })
    );
    let late = ben
        .call(
            "call_answer",
            Some(json!({ "callId": "call-from-afar", "accept": true })),
        )
        .await;
    assert_eq!(late["error"]["code"], "not_found", "{late}");
    s.stop().await;
}
