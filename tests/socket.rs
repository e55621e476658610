//! Socket.IO behaviour with a raw protocol client against a real server:
//! authentication refusals, `connected` first, live and catch-up delivery,
//! acknowledgement across tabs, refusals that keep the socket up.

mod common;

use common::{EioClient, Incoming, TestServer};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn refusals_carry_the_contract_messages() {
    let s = TestServer::start().await;
    let err = EioClient::connect(&s.ws, None).await.err().unwrap();
    assert_eq!(err, "Authentication token required");
    let err = s.connect("not.a.token").await.err().unwrap();
    assert_eq!(err, "Invalid authentication token");
    let expired = s.token("u1", "s1", "radiologist", -1000);
    assert_eq!(
        s.connect(&expired).await.err().unwrap(),
        "Invalid authentication token"
    );
    s.stop().await;
}

#[tokio::test]
async fn authenticated_sockets_are_handed_to_their_connect_handler_and_not_kept() {
    let s = TestServer::start().await;
    let (_a, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let (_b, _) = s.connect_ok(&s.token("u2", "s2", "nurse", HOUR)).await;
    assert!(s.connect("not.a.token").await.is_err());
    // `connected` is sent after the connect handler took the socket's state.
    assert_eq!(s.hub.authenticated().len(), 0);
    assert_eq!(s.hub.local_sockets(), 2);
    s.stop().await;
}

#[tokio::test]
async fn connected_comes_first_then_catch_up_oldest_first() {
    let s = TestServer::start().await;
    for i in 0..3 {
        s.post(
            "/api/v1/users/u1/notifications",
            json!({"id": format!("n{i}"), "title": i}),
        )
        .await;
    }
    let (mut c, hello) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    assert_eq!(hello["userId"], "u1");
    assert!(hello["socketId"].as_str().is_some_and(|id| !id.is_empty()));
    for i in 0..3 {
        let n = c.expect_event("critical_notification").await;
        assert_eq!(n["id"], format!("n{i}"));
        assert_eq!(n["redelivered"], true);
    }
    // Delivery marks are committed with the writer's next batch.
    let mut state = serde_json::Value::Null;
    for _ in 0..50 {
        state = s.get("/api/v1/users/u1/notifications/n0").await.1["state"].clone();
        if state == "delivered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(state, "delivered");
    s.stop().await;
}

#[tokio::test]
async fn live_notifications_reach_every_tab_of_the_user_only() {
    let s = TestServer::start().await;
    let (mut a, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let (mut b, _) = s
        .connect_ok(&s.token("u1", "s2", "radiologist", HOUR))
        .await;
    let (mut other, _) = s
        .connect_ok(&s.token("u2", "s3", "radiologist", HOUR))
        .await;
    let (status, res) = s
        .post(
            "/api/v1/users/u1/notifications",
            json!({"id": "live-1", "severity": "critical"}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(res["deliveredTo"], 2);
    for c in [&mut a, &mut b] {
        let n = c.expect_event("critical_notification").await;
        assert_eq!(n["id"], "live-1");
        assert!(
            n.get("redelivered").is_none(),
            "live deliveries carry no redelivered flag"
        );
    }
    assert!(other.silent_for(300).await);
    s.stop().await;
}

/// Two tabs of user `u1` that have both received notification `n1`.
async fn two_tabs_with_notification(s: &TestServer) -> (EioClient, EioClient) {
    let (mut a, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let (mut b, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    s.post("/api/v1/users/u1/notifications", json!({"id": "n1"}))
        .await;
    a.expect_event("critical_notification").await;
    b.expect_event("critical_notification").await;
    (a, b)
}

#[tokio::test]
async fn a_second_acknowledgement_in_the_same_millisecond_tells_no_tab_again() {
    let s = TestServer::start().await;
    let (mut a, mut b) = two_tabs_with_notification(&s).await;
    let first = a
        .call(
            "acknowledge_notification",
            Some(json!({"notificationId": "n1"})),
        )
        .await;
    assert_eq!(first["ok"], true);
    b.expect_event("notification_acknowledged").await;
    // The test clock has not moved: the second tab acknowledges in the same
    // millisecond, and is told the first time, but nobody is told again.
    let second = b
        .call(
            "acknowledge_notification",
            Some(json!({"notificationId": "n1"})),
        )
        .await;
    assert_eq!(second["acknowledgedAt"], first["acknowledgedAt"]);
    assert!(
        a.silent_for(300).await,
        "no second notification_acknowledged"
    );
    s.stop().await;
}

#[tokio::test]
async fn acknowledging_tells_every_tab_and_is_idempotent() {
    let s = TestServer::start().await;
    let (mut a, mut b) = two_tabs_with_notification(&s).await;

    let ack = a
        .call(
            "acknowledge_notification",
            Some(json!({"notificationId": "n1", "userId": "u1"})),
        )
        .await;
    assert_eq!(ack["ok"], true);
    let at = ack["acknowledgedAt"].clone();
    assert_eq!(
        b.expect_event("notification_acknowledged").await["acknowledgedAt"],
        at
    );

    s.clock.advance(5000);
    let again = b
        .call(
            "acknowledge_notification",
            Some(json!({"notificationId": "n1"})),
        )
        .await;
    assert_eq!(
        again["acknowledgedAt"], at,
        "the first acknowledgement stands"
    );

    // A new tab does not get acknowledged notifications again.
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    assert!(c.silent_for(300).await);
    s.stop().await;
}

#[tokio::test]
async fn refused_events_change_nothing_and_keep_the_socket() {
    let s = TestServer::start().await;
    s.post("/api/v1/users/u2/notifications", json!({"id": "theirs"}))
        .await;
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let cases = [
        ("acknowledge_notification", json!("n1"), "invalid_payload"),
        (
            "acknowledge_notification",
            json!({"notificationId": 5.5}),
            "invalid_payload",
        ),
        (
            "acknowledge_notification",
            json!({"notificationId": "theirs", "userId": "u2"}),
            "forbidden",
        ),
        (
            "acknowledge_notification",
            json!({"notificationId": "theirs"}),
            "not_found",
        ),
        (
            "extend_session",
            json!({"sessionId": "someone-else"}),
            "forbidden",
        ),
        ("extend_session", json!({}), "invalid_payload"),
        (
            "refresh_token",
            json!({"token": "garbage"}),
            "token_invalid",
        ),
        ("refresh_token", json!({"token": 7}), "invalid_payload"),
    ];
    for (event, data, code) in cases {
        let res = c.call(event, Some(data.clone())).await;
        assert_eq!(res["ok"], false, "{event} {data}");
        assert_eq!(res["error"]["code"], code, "{event} {data}: {res}");
    }
    // Without a callback the refusal comes as an `error` event.
    c.emit("acknowledge_notification", Some(json!(null))).await;
    let err = c.expect_event("error").await;
    assert_eq!(
        err,
        json!({"event": "acknowledge_notification", "code": "invalid_payload", "message": "payload must be an object"})
    );
    assert_eq!(
        c.call("activity", None).await,
        json!({"ok": true}),
        "socket still up"
    );
    let (_, theirs) = s.get("/api/v1/users/u2/notifications/theirs").await;
    assert_eq!(theirs["state"], "pending");
    s.stop().await;
}

#[tokio::test]
async fn over_rate_clients_are_refused_but_stay_connected() {
    let s = TestServer::start_with(|f| {
        f.rate_limit.per_second = Some(1);
        f.rate_limit.burst = Some(3);
    })
    .await;
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let r = c.call("activity", None).await;
        codes.push(r["error"]["code"].as_str().unwrap_or("ok").to_string());
    }
    assert_eq!(codes, ["ok", "ok", "ok", "rate_limited", "rate_limited"]);
    s.clock.advance(1000);
    assert_eq!(c.call("activity", None).await["ok"], true);
    s.stop().await;
}

#[tokio::test]
async fn events_api_reaches_roles_users_and_everyone() {
    let s = TestServer::start().await;
    let (mut rad, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let (mut tech, _) = s
        .connect_ok(&s.token("u2", "s2", "technologist", HOUR))
        .await;
    let (status, r) = s
        .post(
            "/api/v1/roles/radiologist/events",
            json!({"event": "worklist", "data": [1, 2]}),
        )
        .await;
    assert_eq!((status, r["deliveredTo"].clone()), (202, json!(1)));
    assert_eq!(
        rad.expect_event("worklist").await,
        json!([1, 2]),
        "an array stays one argument"
    );
    let (_, r) = s
        .post("/api/v1/users/u2/events", json!({"event": "ping_me"}))
        .await;
    assert_eq!(r["deliveredTo"], 1);
    match tech.next().await {
        Incoming::Event(name, args) => assert_eq!(
            (name.as_str(), args.len()),
            ("ping_me", 0),
            "absent data sends no argument"
        ),
        other => panic!("{other:?}"),
    }
    let (_, r) = s
        .post(
            "/api/v1/events",
            json!({"event": "maintenance", "data": {"in": 5}}),
        )
        .await;
    assert_eq!(r["deliveredTo"], 2);
    assert_eq!(tech.expect_event("maintenance").await, json!({"in": 5}));
    assert_eq!(rad.expect_event("maintenance").await, json!({"in": 5}));
    s.stop().await;
}

#[tokio::test]
async fn who_is_connected_answers_from_the_registry() {
    let s = TestServer::start().await;
    let (_a, hello) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let (_b, _) = s
        .connect_ok(&s.token("u1", "s2", "radiologist", HOUR))
        .await;
    let (_c, _) = s.connect_ok(&s.token("7", "s3", "nurse", HOUR)).await;
    let (_, users) = s.get("/api/v1/users").await;
    assert_eq!(users, json!({"count": 2, "users": ["7", "u1"]}));
    let (_, u1) = s.get("/api/v1/users/u1").await;
    assert_eq!(
        u1,
        json!({"userId": "u1", "connected": true, "connections": 2})
    );
    let (_, sessions) = s.get("/api/v1/users/u1/sessions").await;
    let first = &sessions["sessions"].as_array().unwrap()[0];
    assert_eq!(first["socketId"], hello["socketId"]);
    assert_eq!(first["transport"], "websocket");
    assert_eq!(first["role"], "radiologist");
    let peer: std::net::SocketAddr = first["remoteAddress"].as_str().unwrap().parse().unwrap();
    assert!(
        peer.ip().is_loopback() && !s.base.ends_with(&format!(":{}", peer.port())),
        "{peer}"
    );
    let (status, d) = s
        .api(
            reqwest::Method::DELETE,
            "/api/v1/users/u1/connections?reason=test",
            None,
        )
        .await;
    assert_eq!((status, d), (200, json!({"disconnected": 2})));
    let (_, u1) = s.get("/api/v1/users/u1").await;
    assert_eq!(u1["connected"], false);
    s.stop().await;
}

#[tokio::test]
async fn a_long_catch_up_is_paced_to_the_send_buffer_and_arrives_whole() {
    let s = TestServer::start_with(|f| f.socket.max_buffer_size = Some(16)).await;
    let ids: Vec<String> = (0..300).map(|i| format!("n{i:03}")).collect();
    for id in &ids {
        s.post("/api/v1/users/u1/notifications", json!({"id": id}))
            .await;
    }
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let mut got = Vec::new();
    while got.len() < ids.len() {
        let n = c.expect_event("critical_notification").await;
        got.push(n["id"].as_str().unwrap().to_string());
    }
    assert_eq!(got, ids, "every notification, once, oldest first");
    assert_eq!(
        c.call("activity", None).await["ok"],
        true,
        "the socket survived"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_sent_with_the_connect_packet_never_overtake_connected() {
    let s = TestServer::start().await;
    for _ in 0..20 {
        let token = s.token("u1", "s1", "radiologist", HOUR);
        let early = [
            r#"421["activity"]"#,
            r#"42["acknowledge_notification","bad"]"#,
        ];
        let mut c = EioClient::connect_sending(&s.ws, Some(&token), &early)
            .await
            .unwrap();
        match c.next().await {
            Incoming::Event(name, _) => assert_eq!(name, "connected", "connected must come first"),
            other => panic!("wanted connected first, got {other:?}"),
        }
        let mut got_ack = false;
        let mut got_error = false;
        while !(got_ack && got_error) {
            match c.next().await {
                Incoming::Ack(1, args) => {
                    assert_eq!(args[0], json!({"ok": true}));
                    got_ack = true;
                }
                Incoming::Event(name, args) if name == "error" => {
                    assert_eq!(args[0]["code"], "invalid_payload");
                    got_error = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    s.stop().await;
}

/// The moment between `connected` and the socket's attach, made to last:
/// the connect handler waits there (the handover's test gate) while the
/// backend sends a notification, as another node's would arrive in a
/// cluster once the socket's join has registered it. The notification is
/// held for the socket, counted, sent right after the attach (live, not
/// `redelivered`) and marked delivered only once sent; the catch-up does
/// not send it again, and the next live one comes after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notification_in_the_attach_moment_is_held_and_delivered_live() {
    let s = TestServer::start().await;
    let gate = s.hub.authenticated().hold_attaches();
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    // The client has `connected`; its socket is not in the table yet.
    assert_eq!(s.hub.local_sockets(), 0);
    let (status, res) = s
        .post("/api/v1/users/u1/notifications", json!({"id": "held"}))
        .await;
    assert_eq!(status, 202, "{res}");
    assert_eq!(
        res["deliveredTo"], 1,
        "held for the connecting socket: {res}"
    );
    let (_, state) = s.get("/api/v1/users/u1/notifications/held").await;
    assert_eq!(state["state"], "pending", "not marked before it is sent");
    gate.add_permits(1);
    let n = c.expect_event("critical_notification").await;
    assert_eq!(n["id"], "held");
    assert!(n.get("redelivered").is_none(), "live, not caught up: {n}");
    let (_, res) = s
        .post("/api/v1/users/u1/notifications", json!({"id": "after"}))
        .await;
    assert_eq!(res["deliveredTo"], 1, "{res}");
    let n = c.expect_event("critical_notification").await;
    assert_eq!(
        n["id"], "after",
        "the held one came once, the next one after it"
    );
    assert!(n.get("redelivered").is_none(), "{n}");
    let mut state = Value::Null;
    for _ in 0..50 {
        state = s.get("/api/v1/users/u1/notifications/held").await.1["state"].clone();
        if state == "delivered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(state, "delivered", "marked once sent");
    let (_, timeline) = s.get("/api/v1/notifications/held/timeline").await;
    let kinds: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(kinds.contains(&"delivered"), "{timeline}");
    assert!(!kinds.contains(&"redelivered"), "{timeline}");
    s.stop().await;
}

/// A server with a 16-packet socket buffer and a backlog bound of
/// `max_queued` bytes, and user u1 connected through a small receive
/// buffer (a client that stops reading fills the server's buffer soon).
async fn slow_reader(max_queued: usize) -> (TestServer, String, EioClient) {
    let s = TestServer::start_with(|f| {
        f.socket.max_buffer_size = Some(16);
        f.socket.max_queued_bytes = Some(max_queued);
    })
    .await;
    let token = s.token("u1", "s1", "radiologist", HOUR);
    let mut slow = EioClient::connect_small_buffer(&s.ws, &token)
        .await
        .unwrap();
    assert_eq!(slow.expect_event("connected").await["userId"], "u1");
    (s, token, slow)
}

#[tokio::test]
async fn live_notifications_that_meet_a_full_buffer_keep_their_order() {
    // A backlog bound above what this test queues (its own test is below).
    let (s, _token, mut slow) = slow_reader(64 * 1024 * 1024).await;
    // The client reads nothing while 8 MiB are sent: past what the kernel
    // buffers, so the socket's buffer fills and later ones must queue.
    const N: usize = 128;
    let pad = "p".repeat(64 * 1024);
    for i in 0..N {
        let (status, res) = s
            .post(
                "/api/v1/users/u1/notifications",
                json!({"id": format!("n{i:03}"), "pad": pad}),
            )
            .await;
        assert_eq!(
            (status, res["deliveredTo"].clone()),
            (202, json!(1)),
            "n{i}"
        );
    }
    let mut order = Vec::with_capacity(N);
    while order.len() < N {
        let n = slow.expect_event("critical_notification").await;
        order.push(n["id"].as_str().unwrap().to_string());
    }
    let sent: Vec<String> = (0..N).map(|i| format!("n{i:03}")).collect();
    assert_eq!(order, sent, "delivered in the order they were sent");
    s.stop().await;
}

#[tokio::test]
async fn a_socket_that_stops_reading_is_dropped_past_max_queued_bytes() {
    let (s, token, slow) = slow_reader(1024 * 1024).await;
    let (mut other, _) = s
        .connect_ok(&s.token("u2", "s2", "radiologist", HOUR))
        .await;
    // The slow client reads nothing; notifications of 64 KiB pile up.
    let pad = "p".repeat(64 * 1024);
    let mut sent = 0;
    let mut dropped = false;
    while sent < 400 && !dropped {
        let (status, res) = s
            .post(
                "/api/v1/users/u1/notifications",
                json!({"id": format!("n{sent:03}"), "pad": pad}),
            )
            .await;
        assert_eq!(status, 202);
        sent += 1;
        dropped = res["deliveredTo"] == 0;
    }
    assert!(dropped, "the slow socket was never dropped ({sent} sent)");
    let (_, u1) = s.get("/api/v1/users/u1").await;
    assert_eq!(u1["connections"], 0, "dropped from every answer at once");
    // Another user's delivery goes on.
    let (_, res) = s
        .post("/api/v1/users/u2/notifications", json!({"id": "other"}))
        .await;
    assert_eq!(res["deliveredTo"], 1);
    assert_eq!(
        other.expect_event("critical_notification").await["id"],
        "other"
    );
    // Nothing was lost: the next connection catches every one up.
    drop(slow);
    let (mut fresh, _) = s.connect_ok(&token).await;
    for i in 0..sent {
        let n = fresh.expect_event("critical_notification").await;
        assert_eq!(n["id"], format!("n{i:03}"));
        assert_eq!(n["redelivered"], true);
    }
    println!(
        "slow consumer: dropped at notification {sent} of 64 KiB (bound 1 MiB); \
         {sent} of {sent} caught up on reconnect, in order; lost: 0"
    );
    s.stop().await;
}
