//! Typing indicators over a raw socket against a real server, on the
//! server's manual clock: a stop sent right after a start reaches the room
//! as a stop, and a join, a typing and a leave sent together act in the
//! client's order.

mod common;

use common::TestServer;
use serde_json::json;

const HOUR: i64 = 3_600_000;
const ROOM: &str = "study:1.2.840.113619.2.5";

/// The `isTyping` of the next `typing` the reader hears.
async fn heard(reader: &mut common::EioClient) -> bool {
    let typing = reader.expect_event("typing").await;
    assert_eq!(typing["room"], ROOM);
    assert_eq!(typing["userId"], "u1");
    typing["isTyping"].as_bool().expect("isTyping is a boolean")
}

/// Grants `u1` (the writer) and `u2` (the reader) the room and connects
/// each; neither has joined yet.
async fn two_members(s: &TestServer) -> (common::EioClient, common::EioClient) {
    for user in ["u1", "u2"] {
        let path = format!("/api/v1/rooms/{ROOM}/members/{user}");
        let (status, _) = s.api(reqwest::Method::PUT, &path, None).await;
        assert_eq!(status, 201, "granted {user}");
    }
    let (writer, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let (reader, _) = s
        .connect_ok(&s.token("u2", "s2", "radiologist", HOUR))
        .await;
    (writer, reader)
}

// A keystroke and then the draft losing focus: `typing true` and `typing
// false` leave the client together. Socket.IO runs each event in a task of
// its own, and the later one may run first; the room would then be told
// `true` last and keep the user typing until it went stale (5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_right_after_a_start_is_told_as_a_stop() {
    let s = TestServer::start().await;
    let (mut writer, mut reader) = two_members(&s).await;
    for c in [&mut writer, &mut reader] {
        assert_eq!(
            c.call("join_room", Some(json!({ "room": ROOM }))).await["ok"],
            true
        );
    }
    for round in 0..20 {
        writer
            .emit("typing", Some(json!({ "room": ROOM, "isTyping": true })))
            .await;
        writer
            .emit("typing", Some(json!({ "room": ROOM, "isTyping": false })))
            .await;
        assert!(heard(&mut reader).await, "round {round}: the start first");
        // The stop came inside the throttle's second: told when it ends.
        s.clock.advance(1_000);
        s.hub.run_due().await;
        assert!(!heard(&mut reader).await, "round {round}: then the stop");
        // The next round starts with the throttle over and nothing held.
        s.clock.advance(1_000);
        s.hub.run_due().await;
    }
    s.stop().await;
}

// A viewer opening a study and typing at once, closing it, opening it again:
// `join_room`, `typing` and `leave_room` leave the client together. Were
// they run in any order, the typing could act before the join (refused: not
// a member yet) and a join could act before the leave sent ahead of it
// (the user left out of the room they reopened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_typing_and_leave_act_in_the_order_sent() {
    let s = TestServer::start().await;
    let (mut writer, mut reader) = two_members(&s).await;
    let room = Some(json!({ "room": ROOM }));
    assert_eq!(reader.call("join_room", room.clone()).await["ok"], true);
    for round in 0..20 {
        writer.emit("join_room", room.clone()).await;
        writer
            .emit("typing", Some(json!({ "room": ROOM, "isTyping": true })))
            .await;
        writer.emit("leave_room", room.clone()).await;
        assert!(
            heard(&mut reader).await,
            "round {round}: typing, once joined"
        );
        assert!(!heard(&mut reader).await, "round {round}: the leave's stop");
        s.clock.advance(1_000);
        s.hub.run_due().await;
    }
    s.stop().await;
}
