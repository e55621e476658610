//! Time-driven behaviour with an injected clock and real sockets: token
//! expiry and refresh, idle warnings and automatic logoff across tabs,
//! backend-driven expiry, and durability across a restart.

mod common;

use common::{Incoming, TestServer};
use serde_json::json;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

async fn expect_disconnect(c: &mut common::EioClient) {
    loop {
        match c.next().await {
            Incoming::Disconnect | Incoming::Closed => return,
            Incoming::Event(n, _) if n != "session_expired" && n != "error" => continue,
            other => panic!("wanted a disconnect, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_socket_never_outlives_its_token() {
    let s = TestServer::start().await;
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", 10_000))
        .await;
    s.clock.advance(9_999);
    s.hub.run_due().await;
    assert!(c.silent_for(200).await);
    s.clock.advance(1);
    s.hub.run_due().await;
    let err = c.expect_event("error").await;
    assert_eq!(err["event"], "token");
    assert_eq!(err["code"], "token_expired");
    expect_disconnect(&mut c).await;
    s.stop().await;
}

#[tokio::test]
async fn refresh_moves_the_expiry_for_the_same_user_and_session_only() {
    let s = TestServer::start().await;
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", 10_000))
        .await;
    let foreign = c
        .call(
            "refresh_token",
            Some(json!({"token": s.token("u2", "s1", "radiologist", HOUR)})),
        )
        .await;
    assert_eq!(foreign["error"]["code"], "forbidden");
    let other_session = c
        .call(
            "refresh_token",
            Some(json!({"token": s.token("u1", "s9", "radiologist", HOUR)})),
        )
        .await;
    assert_eq!(other_session["error"]["code"], "forbidden");
    let ok = c
        .call(
            "refresh_token",
            Some(json!({"token": s.token("u1", "s1", "radiologist", HOUR)})),
        )
        .await;
    assert_eq!(ok["ok"], true);
    assert!(ok["expiresAt"].as_str().unwrap().ends_with('Z'));
    s.clock.advance(30_000);
    s.hub.run_due().await;
    assert_eq!(
        c.call("activity", None).await["ok"],
        true,
        "still connected past the old exp"
    );
    s.stop().await;
}

#[tokio::test]
async fn idle_sessions_are_warned_once_then_logged_off_in_every_tab() {
    let s = TestServer::start().await;
    let token = s.token("u1", "s1", "radiologist", 2 * HOUR);
    let (mut tab1, _) = s.connect_ok(&token).await;
    let (mut tab2, _) = s.connect_ok(&token).await;

    s.clock.advance(10 * MIN);
    s.hub.run_due().await;
    for tab in [&mut tab1, &mut tab2] {
        let w = tab.expect_event("session_timeout_warning").await;
        assert_eq!(w["sessionId"], "s1");
        assert_eq!(w["timeRemaining"], 5 * MIN);
    }
    // Activity in one tab keeps the whole session alive.
    assert_eq!(tab2.call("activity", None).await["ok"], true);
    s.clock.advance(5 * MIN);
    s.hub.run_due().await;
    assert!(
        tab1.silent_for(200).await,
        "no expiry after activity, no second warning yet"
    );

    s.clock.advance(5 * MIN);
    s.hub.run_due().await;
    tab1.expect_event("session_timeout_warning").await;
    s.clock.advance(5 * MIN);
    s.hub.run_due().await;
    for tab in [&mut tab1, &mut tab2] {
        assert_eq!(tab.expect_event("session_expired").await["sessionId"], "s1");
        expect_disconnect(tab).await;
    }
    assert_eq!(
        s.connect(&token).await.err().unwrap(),
        "Authentication failed"
    );
    s.stop().await;
}

#[tokio::test]
async fn extension_closes_the_warning_in_every_tab() {
    let s = TestServer::start().await;
    let token = s.token("u1", "s1", "radiologist", 2 * HOUR);
    let (mut tab1, _) = s.connect_ok(&token).await;
    let (mut tab2, _) = s.connect_ok(&token).await;
    let res = tab1
        .call("extend_session", Some(json!({"sessionId": "s1"})))
        .await;
    assert_eq!(res["ok"], true);
    assert_eq!(res["sessionId"], "s1");
    let ev = tab2.expect_event("session_extended").await;
    assert_eq!(ev["extendedAt"], res["extendedAt"]);
    let (status, view) = s.get("/api/v1/sessions/s1").await;
    assert_eq!(status, 200);
    assert_eq!(view["userId"], "u1");
    assert_eq!(view["sockets"].as_array().unwrap().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn backend_expiry_is_final_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), |_| {}).await;
    let token = s.token("u1", "s1", "radiologist", 2 * HOUR);
    let (mut tab, _) = s.connect_ok(&token).await;
    let (mut other, _) = s
        .connect_ok(&s.token("u1", "s2", "radiologist", 2 * HOUR))
        .await;
    let (status, res) = s
        .post(
            "/api/v1/users/u1/session-expired",
            json!({"sessionId": "s1"}),
        )
        .await;
    assert_eq!((status, res), (202, json!({"deliveredTo": 1})));
    assert_eq!(tab.expect_event("session_expired").await["sessionId"], "s1");
    expect_disconnect(&mut tab).await;
    assert_eq!(
        other.call("activity", None).await["ok"],
        true,
        "another session of the user stays"
    );
    s.post("/api/v1/users/u1/notifications", json!({"id": "kept"}))
        .await;
    s.stop().await;

    let s = TestServer::start_in(dir.path(), |_| {}).await;
    assert_eq!(
        s.connect(&token).await.err().unwrap(),
        "Authentication failed"
    );
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s3", "radiologist", HOUR))
        .await;
    let n = c.expect_event("critical_notification").await;
    assert_eq!(
        (n["id"].clone(), n["redelivered"].clone()),
        (json!("kept"), json!(true))
    );
    s.stop().await;
}

#[tokio::test]
async fn backend_warning_and_activity_routes() {
    let s = TestServer::start().await;
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let (status, r) = s
        .post(
            "/api/v1/users/u1/session-warning",
            json!({"sessionId": "s1", "timeRemaining": 60000}),
        )
        .await;
    assert_eq!((status, r["deliveredTo"].clone()), (202, json!(1)));
    let w = c.expect_event("session_timeout_warning").await;
    assert_eq!(w["timeRemaining"], 60000);
    let (_, r) = s
        .post(
            "/api/v1/users/u2/session-warning",
            json!({"sessionId": "s1", "timeRemaining": 1}),
        )
        .await;
    assert_eq!(
        r["deliveredTo"], 0,
        "a session is warned only for its own user"
    );

    s.clock.advance(14 * MIN);
    let (status, _) = s
        .api(reqwest::Method::POST, "/api/v1/sessions/s1/activity", None)
        .await;
    assert_eq!(status, 200);
    s.clock.advance(2 * MIN);
    s.hub.run_due().await;
    assert_eq!(
        c.call("activity", None).await["ok"],
        true,
        "backend activity kept it alive"
    );

    let (status, r) = s
        .api(reqwest::Method::DELETE, "/api/v1/sessions/s1", None)
        .await;
    assert_eq!((status, r["disconnected"].clone()), (200, json!(1)));
    c.expect_event("session_expired").await;
    let (status, r) = s
        .api(reqwest::Method::POST, "/api/v1/sessions/s1/extend", None)
        .await;
    assert_eq!(
        (status, r["error"]["code"].clone()),
        (409, json!("session_expired"))
    );
    s.stop().await;
}

#[tokio::test]
async fn a_session_belongs_to_its_first_user_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), |_| {}).await;
    let (mut victim, _) = s
        .connect_ok(&s.token("victim", "shared", "radiologist", HOUR))
        .await;
    let intruder = s.token("mallory", "shared", "radiologist", HOUR);
    assert_eq!(
        s.connect(&intruder).await.err().unwrap(),
        "Authentication failed"
    );
    let (_, listed) = s.get("/api/v1/users/mallory").await;
    assert_eq!(listed["connections"], 0, "the refused socket is nowhere");
    let (_, sessions) = s.get("/api/v1/users/victim/sessions").await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(victim.call("activity", None).await["ok"], true);
    // The owner's own second tab is welcome.
    s.connect_ok(&s.token("victim", "shared", "radiologist", HOUR))
        .await;
    s.stop().await;

    // Restarted on the same store: the owner is remembered, not re-claimed
    // by whoever connects first.
    let s = TestServer::start_in(dir.path(), |_| {}).await;
    assert_eq!(
        s.connect(&intruder).await.err().unwrap(),
        "Authentication failed"
    );
    s.connect_ok(&s.token("victim", "shared", "radiologist", HOUR))
        .await;
    s.stop().await;
}
