//! Several nodes acting as one: real Herald nodes in one test process on a
//! private redis-server and a fresh PostgreSQL database, with raw
//! Socket.IO clients (the e2e suites drive three processes with the
//! official clients).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::cluster::{fresh_database, node, Redis};
use common::{EioClient, Incoming, TestServer};
use herald::clock::{Clock, ManualClock, SystemClock};
use herald::cluster::RedisLink;
use herald::connections::table::Sockets;
use herald::presence::{Presence, RedisPresence};
use serde_json::json;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(SystemClock.now_ms() / 1000 * 1000))
}

async fn two_nodes(redis: &Redis) -> (TestServer, TestServer, Vec<tempfile::TempDir>) {
    let db = fresh_database().await;
    let c = clock();
    let dirs = vec![tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = node("node-a", redis, &db, c.clone(), dirs[0].path(), |_| {}).await;
    let b = node("node-b", redis, &db, c, dirs[1].path(), |_| {}).await;
    (a, b, dirs)
}

/// Waits until `node` counts `n` sockets of `user` cluster-wide: a socket
/// is registered a Redis round trip after its `connected` event.
async fn registered(node: &TestServer, user: &str, n: i64) {
    let path = format!("/api/v1/users/{user}");
    eventually_named("registration", 5, || async {
        node.get(&path).await.1["connections"] == n
    })
    .await;
}

/// Polls `check` until it holds (at most `secs`).
async fn eventually<F, Fut>(secs: u64, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_named("condition", secs, check).await
}

async fn eventually_named<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} not met within {secs}s");
}

/// A node takes no API call before it has joined the cluster: the first
/// one, made the moment it has started, already reaches a socket on
/// another node (a node serving at once stored it and told no one).
#[tokio::test]
async fn a_node_just_started_already_delivers_to_the_other_nodes() {
    let redis = Redis::start().await;
    let db = fresh_database().await;
    let c = clock();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = node("node-a", &redis, &db, c.clone(), dirs[0].path(), |_| {}).await;
    let t = a.token("u1", "s1", "radiologist", 600_000);
    let (mut on_a, _) = a.connect_ok(&t).await;
    registered(&a, "u1", 1).await;

    let url = redis.url();
    let b = TestServer::start_with_clock(dirs[1].path(), c, move |f| {
        f.cluster.redis_url = Some(url);
        f.database_url = Some(db.to_string());
        f.cluster.node_id = Some("node-b".into());
    })
    .await;
    let (status, body) = b
        .post("/api/v1/users/u1/notifications", json!({"id": "n1"}))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["deliveredTo"], 1, "{body}");
    assert!(body.get("partial").is_none(), "{body}");
    let n1 = on_a.expect_event("critical_notification").await;
    assert_eq!(n1["id"], "n1");
    assert!(n1.get("redelivered").is_none(), "{n1}");
}

#[tokio::test]
async fn a_notification_reaches_each_socket_once_whichever_node_holds_it() {
    let redis = Redis::start().await;
    let (a, b, _dirs) = two_nodes(&redis).await;
    let t = a.token("u1", "s1", "radiologist", 600_000);
    a.post("/api/v1/users/u1/notifications", json!({"id": "n0"}))
        .await;
    let (mut on_a, _) = a.connect_ok(&t).await;
    let (mut on_b, _) = b.connect_ok(&t).await;
    // Each socket has read its catch-up once n0 arrives: what follows is live.
    for c in [&mut on_a, &mut on_b] {
        let n0 = c.expect_event("critical_notification").await;
        assert_eq!(n0["redelivered"], true, "{n0}");
    }
    registered(&a, "u1", 2).await;

    let (status, body) = a
        .post(
            "/api/v1/users/u1/notifications",
            json!({"id": "n1", "severity": "critical"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["deliveredTo"], 2, "{body}");
    assert!(body.get("partial").is_none(), "{body}");
    assert_eq!(on_a.expect_event("critical_notification").await["id"], "n1");
    assert_eq!(on_b.expect_event("critical_notification").await["id"], "n1");

    // Who is connected, asked on either node, counts both.
    let (_, users) = b.get("/api/v1/users/u1").await;
    assert_eq!(users["connections"], 2, "{users}");
    let (_, sessions) = a.get("/api/v1/users/u1/sessions").await;
    let mut nodes: Vec<String> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["node"].as_str().unwrap().to_string())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["node-a", "node-b"], "{sessions}");

    // An acknowledgement on B is heard on A.
    let ack = on_b
        .call(
            "acknowledge_notification",
            Some(json!({"notificationId": "n1"})),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let heard = on_a.expect_event("notification_acknowledged").await;
    assert_eq!(heard["notificationId"], "n1");

    // A broadcast from B: one notification, counted per user across nodes.
    let t2 = a.token("u2", "s2", "radiologist", 600_000);
    b.post("/api/v1/users/u2/notifications", json!({"id": "n0"}))
        .await;
    let (mut u2, _) = a.connect_ok(&t2).await;
    // The socket has been registered and has read its catch-up once n0
    // arrives: n2 from now on is live (before, its catch-up would take it).
    let n0 = u2.expect_event("critical_notification").await;
    assert_eq!(
        (n0["id"].as_str(), n0["redelivered"].as_bool()),
        (Some("n0"), Some(true))
    );
    eventually(5, || async {
        b.get("/api/v1/users/u2").await.1["connections"] == 1
    })
    .await;
    let (status, body) = b
        .post(
            "/api/v1/notifications",
            json!({"userIds": ["u1", "u2", "u3"], "notification": {"id": "n2"}}),
        )
        .await;
    assert_eq!(status, 202);
    let counts: Vec<i64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["deliveredTo"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [2, 1, 0], "{body}");
    assert_eq!(u2.expect_event("critical_notification").await["id"], "n2");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn role_events_and_disconnects_act_on_every_node() {
    let redis = Redis::start().await;
    let (a, b, _dirs) = two_nodes(&redis).await;
    let (mut r1, _) = a
        .connect_ok(&a.token("u1", "s1", "radiologist", 600_000))
        .await;
    let (mut r2, _) = b
        .connect_ok(&a.token("u2", "s2", "radiologist", 600_000))
        .await;
    let (_t, _) = b
        .connect_ok(&a.token("u3", "s3", "technologist", 600_000))
        .await;
    for u in ["u1", "u2", "u3"] {
        registered(&a, u, 1).await;
    }
    let (status, body) = a
        .post(
            "/api/v1/roles/radiologist/events",
            json!({"event": "study_ready", "data": {"x": 1}}),
        )
        .await;
    assert_eq!(
        (status, body["deliveredTo"].as_i64()),
        (202, Some(2)),
        "{body}"
    );
    assert_eq!(r1.expect_event("study_ready").await["x"], 1);
    assert_eq!(r2.expect_event("study_ready").await["x"], 1);
    let (_, all) = b.post("/api/v1/events", json!({"event": "hello"})).await;
    assert_eq!(all["deliveredTo"], 3, "{all}");

    let (_, users) = a.get("/api/v1/users").await;
    assert_eq!(users["users"], json!(["u1", "u2", "u3"]), "{users}");
    let (status, gone) = a
        .api(
            reqwest::Method::DELETE,
            "/api/v1/users/u2/connections",
            None,
        )
        .await;
    assert_eq!(
        (status, gone["disconnected"].as_i64()),
        (200, Some(1)),
        "{gone}"
    );
    loop {
        match r2.next().await {
            Incoming::Disconnect | Incoming::Closed => break,
            _ => continue,
        }
    }
    let (_, user) = a.get("/api/v1/users/u2").await;
    assert_eq!(user["connections"], 0, "{user}");
    a.stop().await;
    b.stop().await;
}

/// Two nodes on one Redis and database and a manual clock, with a 60 s idle
/// period and a 20 s warning, and session s1 of u1 with a socket on each.
struct SharedSession {
    c: Arc<ManualClock>,
    a: TestServer,
    b: TestServer,
    token: String,
    on_a: EioClient,
    on_b: EioClient,
    _redis: Redis,
    _dirs: Vec<tempfile::TempDir>,
}

async fn shared_session() -> SharedSession {
    let redis = Redis::start().await;
    let db = fresh_database().await;
    let c = clock();
    let dirs = vec![tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let timeouts = |f: &mut herald::config::FileConfig| {
        f.session.idle_timeout = Some("60s".into());
        f.session.warning_before = Some("20s".into());
    };
    let a = node("node-a", &redis, &db, c.clone(), dirs[0].path(), timeouts).await;
    let b = node("node-b", &redis, &db, c.clone(), dirs[1].path(), timeouts).await;
    let token = a.token("u1", "s1", "radiologist", 3_600_000);
    let (on_a, _) = a.connect_ok(&token).await;
    let (on_b, _) = b.connect_ok(&token).await;
    registered(&a, "u1", 2).await;
    SharedSession {
        c,
        a,
        b,
        token,
        on_a,
        on_b,
        _redis: redis,
        _dirs: dirs,
    }
}

#[tokio::test]
async fn one_idle_clock_per_session_across_nodes() {
    let SharedSession {
        c,
        a,
        b,
        token: t,
        mut on_a,
        mut on_b,
        // held to the end: the nodes' Redis and data directories
        _redis,
        _dirs,
    } = shared_session().await;

    // Activity on A at 30 s keeps B's socket alive past the first deadline.
    c.advance(30_000);
    assert_eq!(on_a.call("activity", None).await["ok"], true);
    c.advance(20_000);
    a.hub.run_due().await;
    b.hub.run_due().await;
    let (_, s) = b.get("/api/v1/sessions/s1").await;
    assert_eq!(
        s["warned"], false,
        "activity on A moved the shared clock: {s}"
    );

    // Then idle: one warning per socket, whichever node claims it.
    c.advance(20_000);
    b.hub.run_due().await;
    a.hub.run_due().await;
    assert_eq!(
        on_a.expect_event("session_timeout_warning").await["sessionId"],
        "s1"
    );
    assert_eq!(
        on_b.expect_event("session_timeout_warning").await["sessionId"],
        "s1"
    );
    c.advance(20_000);
    a.hub.run_due().await;
    b.hub.run_due().await;
    assert_eq!(
        on_a.expect_event("session_expired").await["sessionId"],
        "s1"
    );
    assert_eq!(
        on_b.expect_event("session_expired").await["sessionId"],
        "s1"
    );
    // Refused on every node from now on.
    assert_eq!(
        b.connect(&t).await.err().as_deref(),
        Some("Authentication failed")
    );
    assert_eq!(
        a.connect(&t).await.err().as_deref(),
        Some("Authentication failed")
    );
    a.stop().await;
    b.stop().await;
}

/// Activity moves the shared clock without moving its deadline (the claim
/// finds the deadline early and reschedules it), except after a warning,
/// when the deadline is the expiry: activity then brings the next warning
/// back, one idle period from the activity.
#[tokio::test]
async fn activity_after_a_warning_puts_off_the_expiry_and_warns_again() {
    let SharedSession {
        c,
        a,
        b,
        token: _,
        mut on_a,
        mut on_b,
        // held to the end: the nodes' Redis and data directories
        _redis,
        _dirs,
    } = shared_session().await;

    // Activity at 10 s, before any warning: the deadline stays at 40 s, and
    // the claim there finds it early.
    c.advance(10_000);
    assert_eq!(on_b.call("activity", None).await["ok"], true);
    c.advance(30_000);
    a.hub.run_due().await;
    b.hub.run_due().await;
    let (_, s) = a.get("/api/v1/sessions/s1").await;
    assert_eq!(s["warned"], false, "no warning 30 s after activity: {s}");
    // Warned at 50 s (idle since 10 s).
    c.advance(10_000);
    a.hub.run_due().await;
    b.hub.run_due().await;
    on_a.expect_event("session_timeout_warning").await;
    on_b.expect_event("session_timeout_warning").await;

    // Activity at 55 s on A: the expiry due at 70 s is off.
    c.advance(5_000);
    assert_eq!(on_a.call("activity", None).await["ok"], true);
    c.advance(15_000);
    a.hub.run_due().await;
    b.hub.run_due().await;
    let (status, s) = b.get("/api/v1/sessions/s1").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["warned"], false, "not expired at 70 s: {s}");
    // Warned again at 95 s, expired at 115 s.
    c.advance(25_000);
    b.hub.run_due().await;
    a.hub.run_due().await;
    on_a.expect_event("session_timeout_warning").await;
    on_b.expect_event("session_timeout_warning").await;
    c.advance(20_000);
    a.hub.run_due().await;
    b.hub.run_due().await;
    on_a.expect_event("session_expired").await;
    on_b.expect_event("session_expired").await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_dead_node_leaves_every_answer_and_its_users_are_caught_up_elsewhere() {
    let redis = Redis::start().await;
    let db = fresh_database().await;
    let (ca, cb) = (clock(), clock());
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node("node-a", &redis, &db, ca.clone(), da.path(), |_| {}).await;
    let b = node("node-b", &redis, &db, cb.clone(), db_.path(), |_| {}).await;
    let t = a.token("u1", "s1", "radiologist", 3_600_000);
    let (_on_b, _) = b.connect_ok(&t).await;
    registered(&a, "u1", 1).await;
    // B stops beating: its clock stands still while A's moves on.
    b.crash();
    ca.advance(3_000);
    no_sockets_left(&a, "u1").await;
    // A notification for the user is stored, and caught up on A.
    let (status, _) = a
        .post("/api/v1/users/u1/notifications", json!({"id": "n9"}))
        .await;
    assert_eq!(status, 202);
    let (mut again, _) = a
        .connect_ok(&a.token("u1", "s1", "radiologist", 3_600_000))
        .await;
    let n = again.expect_event("critical_notification").await;
    assert_eq!(
        (n["id"].as_str(), n["redelivered"].as_bool()),
        (Some("n9"), Some(true))
    );
    a.stop().await;
}

#[tokio::test]
async fn a_redis_outage_leaves_local_delivery_and_the_node_rejoins() {
    let mut redis = Redis::start().await;
    let (a, b, _dirs) = two_nodes(&redis).await;
    let (mut on_a, _) = a
        .connect_ok(&a.token("u1", "s1", "radiologist", 600_000))
        .await;
    let (mut on_b, _) = b
        .connect_ok(&a.token("u2", "s2", "radiologist", 600_000))
        .await;
    registered(&a, "u2", 1).await;
    let (_, s2) = b.get("/api/v1/sessions/s2").await;
    let idle_since = s2["lastActivity"].clone();
    redis.stop();
    eventually_named("redis seen down", 5, || async { !a.hub.redis_up() }).await;
    let (status, ready) = a.get("/readyz").await;
    assert_eq!(
        (status, ready["redis"].as_str()),
        (200, Some("degraded")),
        "{ready}"
    );
    let (status, body) = a
        .post("/api/v1/users/u1/notifications", json!({"id": "local"}))
        .await;
    assert_eq!(
        (status, body["deliveredTo"].as_i64()),
        (202, Some(1)),
        "{body}"
    );
    assert_eq!(body["partial"], true, "{body}");
    assert_eq!(
        on_a.expect_event("critical_notification").await["id"],
        "local"
    );
    // The node still answers for its own sockets, marked partial.
    let (_, users) = a.get("/api/v1/users").await;
    assert_eq!(
        (users["users"].clone(), users["partial"].clone()),
        (json!(["u1"]), json!(true)),
        "{users}"
    );
    let (_, u1) = a.get("/api/v1/users/u1").await;
    assert_eq!(
        (u1["connections"].as_i64(), u1["partial"].as_bool()),
        (Some(1), Some(true)),
        "{u1}"
    );
    let (status, s1) = a.get("/api/v1/sessions/s1").await;
    assert_eq!(
        (status, s1["userId"].as_str(), s1["partial"].as_bool()),
        (200, Some("u1"), Some(true)),
        "{s1}"
    );
    assert_eq!(s1["sockets"].as_array().map(Vec::len), Some(1), "{s1}");
    // Stored on A for a socket on B while they cannot talk: B's rejoin
    // catch-up brings it, which also says the rejoin is complete.
    let (_, missed) = a
        .post("/api/v1/users/u2/notifications", json!({"id": "missed"}))
        .await;
    assert_eq!(missed["deliveredTo"], 0, "{missed}");

    // Back: both nodes rejoin on their own and cross-node delivery returns.
    // Idle through the outage (less than the node timeout, so no node
    // takes the other for dead).
    b.clock.advance(1_000);
    redis.resume().await;
    eventually_named("both up again", 5, || async {
        a.hub.redis_up() && b.hub.redis_up()
    })
    .await;
    eventually_named("b rewritten, answered whole", 5, || async {
        let (_, u) = a.get("/api/v1/users/u2").await;
        u["connections"] == 1 && u.get("partial").is_none()
    })
    .await;
    let missed = on_b.expect_event("critical_notification").await;
    assert_eq!(
        (missed["id"].as_str(), missed["redelivered"].as_bool()),
        (Some("missed"), Some(true))
    );
    // Redis came back empty: the session's clock is rewritten from its
    // socket's last activity, not restarted by the outage. (A rewrite that
    // a loaded machine slows past the request timeout is redone by the
    // next rejoin.)
    eventually_named("s2's clock rewritten", 5, || async {
        a.get("/api/v1/sessions/s2").await.0 == 200
    })
    .await;
    let (_, s2) = a.get("/api/v1/sessions/s2").await;
    assert_eq!(s2["lastActivity"], idle_since, "{s2}");
    // Within the node timeout a cross-node send is whole again (a Redis
    // call slowed past the request timeout on a loaded machine may still
    // make one answer partial while the link settles).
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut k = 0;
    let body = loop {
        k += 1;
        let (_, body) = a
            .post(
                "/api/v1/users/u2/notifications",
                json!({"id": format!("across-{k}")}),
            )
            .await;
        if body.get("partial").is_none() || tokio::time::Instant::now() > until {
            break body;
        }
    };
    assert!(body.get("partial").is_none(), "{body}");
    assert_eq!(body["deliveredTo"], 1, "{body}");
    let wanted = format!("across-{k}");
    loop {
        let n = on_b.expect_event("critical_notification").await;
        if n["id"] == wanted.as_str() {
            assert!(n.get("redelivered").is_none(), "live, not caught up: {n}");
            break;
        }
    }
    a.stop().await;
    b.stop().await;
}

/// `watcher` subscribes to `users`' presence; each is offline, never seen.
async fn subscribe(watcher: &mut common::EioClient, users: &[&str]) {
    let answer = watcher
        .call("presence_subscribe", Some(json!({ "userIds": users })))
        .await;
    assert_eq!(answer["ok"], true, "{answer}");
    for (i, user) in users.iter().enumerate() {
        let p = &answer["presence"][i];
        assert_eq!(
            (p["userId"].as_str(), p["status"].as_str(), &p["since"]),
            (Some(*user), Some("offline"), &serde_json::Value::Null),
            "{answer}"
        );
    }
}

/// The next `presence` event `watcher` gets is `user` going `status`.
async fn expect_presence(watcher: &mut common::EioClient, user: &str, status: &str) {
    let p = watcher.expect_event("presence").await;
    assert_eq!(
        (p["userId"].as_str(), p["status"].as_str()),
        (Some(user), Some(status)),
        "{p}"
    );
}

/// Waits until no node counts a socket of `user`.
async fn no_sockets_left(node: &TestServer, user: &str) {
    let path = format!("/api/v1/users/{user}");
    eventually(5, || async { node.get(&path).await.1["connections"] == 0 }).await;
}

#[tokio::test]
async fn presence_is_announced_once_and_a_reload_is_not() {
    let redis = Redis::start().await;
    let db = fresh_database().await;
    let c = clock();
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let grace = |f: &mut herald::config::FileConfig| f.presence.grace = Some("5s".into());
    let a = node("node-a", &redis, &db, c.clone(), da.path(), grace).await;
    let b = node("node-b", &redis, &db, c.clone(), db_.path(), grace).await;
    let (mut watcher, _) = a
        .connect_ok(&a.token("w", "sw", "radiologist", 600_000))
        .await;
    subscribe(&mut watcher, &["u1"]).await;
    registered(&b, "w", 1).await;
    let t = a.token("u1", "s1", "radiologist", 600_000);
    let (first, _) = b.connect_ok(&t).await;
    expect_presence(&mut watcher, "u1", "online").await;
    // A reload: gone and back within the grace.
    drop(first);
    no_sockets_left(&a, "u1").await;
    let (second, _) = a.connect_ok(&t).await;
    c.advance(6_000);
    a.hub.run_due().await;
    b.hub.run_due().await;
    let (_, presence) = b.get("/api/v1/presence?userIds=u1,nobody").await;
    assert_eq!(presence["presence"][0]["status"], "online", "{presence}");
    assert_eq!(
        presence["presence"][1]["since"],
        serde_json::Value::Null,
        "{presence}"
    );
    // Gone for good: offline once the grace passes, announced once.
    drop(second);
    no_sockets_left(&a, "u1").await;
    c.advance(6_000);
    b.hub.run_due().await;
    a.hub.run_due().await;
    expect_presence(&mut watcher, "u1", "offline").await;
    // The reload sent nothing between the two: the next event is ours.
    b.post(
        "/api/v1/roles/radiologist/events",
        json!({"event": "marker"}),
    )
    .await;
    let (name, _) = watcher.next_event().await.unwrap();
    assert_eq!(name, "marker");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn an_offline_change_claimed_by_a_node_that_died_is_announced_by_another() {
    let redis = Redis::start().await;
    let db = fresh_database().await;
    let c = clock();
    let dir = tempfile::tempdir().unwrap();
    // Reaping is kept out of the way of the clock jumps below.
    let settings = |f: &mut herald::config::FileConfig| {
        f.presence.grace = Some("5s".into());
        f.cluster.node_timeout = Some("60s".into());
    };
    let a = node("node-a", &redis, &db, c.clone(), dir.path(), settings).await;
    let (mut watcher, _) = a
        .connect_ok(&a.token("w", "sw", "radiologist", 600_000))
        .await;
    subscribe(&mut watcher, &["u1"]).await;
    let (u1, _) = a
        .connect_ok(&a.token("u1", "s1", "radiologist", 600_000))
        .await;
    expect_presence(&mut watcher, "u1", "online").await;
    drop(u1);
    no_sockets_left(&a, "u1").await;

    // Another node, whose clock is past the grace, claims the change and
    // dies before announcing it.
    let link = RedisLink::new(
        &redis.url(),
        Arc::from("node-ghost"),
        Duration::from_secs(1),
    )
    .unwrap();
    let (inbox, _messages) = tokio::sync::mpsc::unbounded_channel();
    let supervisor = tokio::spawn(link.clone().supervise(inbox));
    eventually_named("ghost up", 5, || async { link.is_up() }).await;
    let ghost = RedisPresence::new(link, Arc::new(Sockets::default()));
    let claimed = ghost.due_offline(c.now_ms() + 6_000).await;
    assert_eq!(
        claimed
            .iter()
            .map(|ch| ch.user_id.as_str())
            .collect::<Vec<_>>(),
        ["u1"]
    );
    supervisor.abort();

    // Past the claim's lease, the live node announces it, once.
    c.advance(17_000);
    a.hub.run_due().await;
    expect_presence(&mut watcher, "u1", "offline").await;
    a.hub.run_due().await;
    a.post(
        "/api/v1/roles/radiologist/events",
        json!({"event": "marker"}),
    )
    .await;
    let (name, _) = watcher.next_event().await.unwrap();
    assert_eq!(name, "marker", "announced once");
    a.stop().await;
}

/// The next `presence_batch` `watcher` gets, as (user, status) pairs.
async fn expect_batch(watcher: &mut common::EioClient) -> Vec<(String, String)> {
    let batch = watcher.expect_event("presence_batch").await;
    batch["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{batch}"))
        .iter()
        .map(|c| {
            assert!(c["at"].is_string(), "{c}");
            (
                c["userId"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_role_audience_hears_each_nodes_changes_in_one_batch_a_window() {
    let redis = Redis::start().await;
    let db = fresh_database().await;
    let c = clock();
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let settings = |f: &mut herald::config::FileConfig| {
        f.presence.grace = Some("5s".into());
        f.presence.audience = Some("role".into());
        f.presence.batch_window = Some("1s".into());
        f.cluster.node_timeout = Some("60s".into());
    };
    let a = node("node-a", &redis, &db, c.clone(), da.path(), settings).await;
    let b = node("node-b", &redis, &db, c.clone(), db_.path(), settings).await;
    // A subscriber on node a, of a role of its own: each `presence` it gets
    // says node a has heard that change (and put it in its batch).
    let (mut spy, _) = a
        .connect_ok(&a.token("spy", "sspy", "observer", 600_000))
        .await;
    subscribe(&mut spy, &["w", "u1", "u2"]).await;
    let (mut watcher, _) = a
        .connect_ok(&a.token("w", "sw", "radiologist", 600_000))
        .await;
    let (mut stranger, _) = b
        .connect_ok(&b.token("x", "sx", "technologist", 600_000))
        .await;
    // Two users come online, one on each node, inside the window the
    // watcher's own coming online opened.
    let (u1, _) = b
        .connect_ok(&b.token("u1", "s1", "radiologist", 600_000))
        .await;
    let (_u2, _) = a
        .connect_ok(&a.token("u2", "s2", "radiologist", 600_000))
        .await;
    let mut online = Vec::new();
    for _ in 0..3 {
        let p = spy.expect_event("presence").await;
        assert_eq!(p["status"], "online", "{p}");
        online.push(p["userId"].as_str().unwrap_or_default().to_string());
    }
    online.sort();
    assert_eq!(online, ["u1", "u2", "w"]);
    assert!(
        watcher.silent_for(100).await,
        "nothing before the window closes"
    );
    c.advance(1_000);
    a.hub.run_due().await;
    let mut heard = expect_batch(&mut watcher).await;
    heard.sort();
    assert_eq!(
        heard,
        [("u1", "online"), ("u2", "online"), ("w", "online")]
            .map(|(u, s)| (u.to_string(), s.to_string())),
    );

    // u1 leaves for good (offline after the grace, claimed by one node)
    // and is back within the next window: a flap, nothing to tell.
    drop(u1);
    no_sockets_left(&a, "u1").await;
    c.advance(6_000);
    a.hub.run_due().await;
    b.hub.run_due().await;
    expect_presence(&mut spy, "u1", "offline").await;
    let (_back, _) = b
        .connect_ok(&b.token("u1", "s1b", "radiologist", 600_000))
        .await;
    expect_presence(&mut spy, "u1", "online").await;
    c.advance(1_000);
    a.hub.run_due().await;
    b.hub.run_due().await;
    a.post(
        "/api/v1/roles/radiologist/events",
        json!({"event": "marker"}),
    )
    .await;
    let (name, _) = watcher.next_event().await.unwrap();
    assert_eq!(name, "marker", "the flap sent no batch");
    // Another role's socket heard none of the radiologists' changes (its
    // own online change opened a window of its role).
    b.post(
        "/api/v1/roles/technologist/events",
        json!({"event": "marker"}),
    )
    .await;
    loop {
        let (name, args) = stranger.next_event().await.unwrap();
        if name == "marker" {
            break;
        }
        assert_eq!(name, "presence_batch");
        assert!(!args[0].to_string().contains("\"u1\""), "{args:?}");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_socket_cap_and_session_owners_hold_across_nodes() {
    let redis = Redis::start().await;
    let db = fresh_database().await;
    let c = clock();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let cap = |f: &mut herald::config::FileConfig| f.limits.sockets_per_user = Some(2);
    let a = node("node-a", &redis, &db, c.clone(), dirs[0].path(), cap).await;
    let b = node("node-b", &redis, &db, c, dirs[1].path(), cap).await;
    let (_on_a, _) = a
        .connect_ok(&a.token("u1", "s1", "radiologist", 600_000))
        .await;
    let (_on_b, _) = b
        .connect_ok(&b.token("u1", "s1", "radiologist", 600_000))
        .await;
    registered(&a, "u1", 2).await;
    assert_eq!(
        a.connect(&a.token("u1", "s2", "radiologist", 600_000))
            .await
            .err()
            .unwrap(),
        "Authentication failed",
        "the cap counts the other node's socket"
    );
    // s1 was first used by u1 on node a: u2 cannot take it on node b.
    assert_eq!(
        b.connect(&b.token("u2", "s1", "radiologist", 600_000))
            .await
            .err()
            .unwrap(),
        "Authentication failed"
    );
    b.connect_ok(&b.token("u2", "s3", "radiologist", 600_000))
        .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn simultaneous_polling_connects_on_two_nodes_stop_exactly_at_the_cap() {
    const CAP: usize = 20;
    let redis = Redis::start().await;
    let db = fresh_database().await;
    let c = clock();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let cap = |f: &mut herald::config::FileConfig| f.limits.sockets_per_user = Some(CAP);
    let a = node("node-a", &redis, &db, c.clone(), dirs[0].path(), cap).await;
    let b = node("node-b", &redis, &db, c, dirs[1].path(), cap).await;
    let token = a.token("u1", "s1", "radiologist", 600_000);
    let (accepted, refusals) = common::polling_storm(&[&a, &b], &token, 3 * CAP).await;
    assert_eq!(
        accepted, CAP,
        "accepted past the cap; refusals: {refusals:?}"
    );
    assert_eq!(refusals, vec!["Authentication failed".to_string()]);
    registered(&a, "u1", CAP as i64).await;
    assert_eq!(a.hub.local_sockets() + b.hub.local_sockets(), CAP);
}

#[tokio::test]
async fn a_place_taken_by_a_node_that_died_mid_connect_goes_with_the_node() {
    use herald::registry::{Joined, Joining, RedisRegistry, Registry};
    use socketioxide::socket::Sid;
    let redis = Redis::start().await;
    // A node that takes a place under the cap and dies before its socket
    // attaches: the place is the socket's entry, reaped with the node.
    let ghost_link = RedisLink::new(
        &redis.url(),
        Arc::from("node-ghost"),
        Duration::from_secs(1),
    )
    .unwrap();
    let live_link =
        RedisLink::new(&redis.url(), Arc::from("node-live"), Duration::from_secs(1)).unwrap();
    let mut supervisors = Vec::new();
    for link in [&ghost_link, &live_link] {
        let (inbox, messages) = tokio::sync::mpsc::unbounded_channel();
        supervisors.push((tokio::spawn(link.clone().supervise(inbox)), messages));
        eventually_named("link up", 5, || async { link.is_up() }).await;
    }
    let here = || Arc::new(Sockets::default());
    let ghost = RedisRegistry::new(ghost_link, here(), 5_000);
    let live = RedisRegistry::new(live_link, here(), 5_000);
    let now = SystemClock.now_ms();
    let joining = |sid: Sid, session: &'static str, at: i64| Joining {
        sid,
        user: "u1",
        session,
        role: "r",
        cap: 1,
        now: at,
        idle: 900_000,
        warn: 60_000,
    };
    let held = Joined::Held { clock: true };
    ghost.beat(now, 10_000).await.unwrap();
    assert_eq!(ghost.join(&joining(Sid::new(), "s1", now)).await, held);
    assert_eq!(
        live.join(&joining(Sid::new(), "s2", now)).await,
        Joined::Full,
        "the ghost's place counts on every node"
    );
    assert_eq!(live.user_socket_count("u1").await.value, 1);
    // The ghost stops beating: the first live beat past the node timeout
    // reaps it, its place with it.
    let later = now + 10_001;
    live.beat(later, 10_000).await.unwrap();
    let taken = Sid::new();
    assert_eq!(live.join(&joining(taken, "s2", later)).await, held);
    // A refused connect gives its place back at once.
    live.release("u1", "r", taken, later).await;
    assert_eq!(live.user_socket_count("u1").await.value, 0);
    assert_eq!(live.join(&joining(Sid::new(), "s2", later)).await, held);
    for (s, _) in supervisors {
        s.abort();
    }
}

/// Arrays and objects in turn, `levels` deep (the outermost counting 1).
fn nested(levels: usize) -> serde_json::Value {
    (0..levels).fold(json!("leaf"), |inner, i| {
        if i.is_multiple_of(2) {
            json!({ "k": inner })
        } else {
            json!([inner])
        }
    })
}

/// The API's documented depth limit (docs/api.md, `body_too_deep`).
const MAX_BODY_DEPTH: usize = 100;

/// A notification and an event nested as deep as the API accepts cross to
/// a socket on the other node intact; one level more is refused by the
/// node it is sent to, with the documented 400, rather than accepted there
/// and dropped by the other nodes (whose reader stops at 127 levels, two of
/// them the nodes' envelope).
#[tokio::test]
async fn the_deepest_body_the_api_accepts_reaches_the_other_node() {
    let redis = Redis::start().await;
    let (a, b, _dirs) = two_nodes(&redis).await;
    let (mut on_b, _) = b
        .connect_ok(&b.token("u1", "s1", "radiologist", 600_000))
        .await;
    registered(&a, "u1", 1).await;
    // The body is the top level: its field holds one level fewer.
    let inner = nested(MAX_BODY_DEPTH - 1);
    let (status, res) = a
        .post(
            "/api/v1/users/u1/notifications",
            json!({"id": "deep", "x": inner}),
        )
        .await;
    assert_eq!(status, 202, "{res}");
    let n = on_b.expect_event("critical_notification").await;
    assert_eq!((&n["id"], &n["x"]), (&json!("deep"), &inner));
    let (status, res) = a
        .post(
            "/api/v1/users/u1/events",
            json!({"event": "deep", "data": inner}),
        )
        .await;
    assert_eq!(status, 202, "{res}");
    assert_eq!(on_b.expect_event("deep").await, inner);

    // One level more: refused where it is sent, nothing stored or sent.
    let deeper = nested(MAX_BODY_DEPTH);
    for (path, body) in [
        (
            "/api/v1/users/u1/notifications",
            json!({"id": "too-deep", "x": deeper}),
        ),
        (
            "/api/v1/notifications",
            json!({"userIds": ["u1"], "notification": {"id": "too-deep", "x": inner}}),
        ),
        (
            "/api/v1/users/u1/events",
            json!({"event": "too_deep", "data": deeper}),
        ),
    ] {
        let (status, res) = a.post(path, body).await;
        assert_eq!(
            (status, &res["error"]["code"]),
            (400, &json!("body_too_deep")),
            "{path}: {res}"
        );
    }
    let (_, res) = a
        .post("/api/v1/users/u1/events", json!({"event": "marker"}))
        .await;
    assert_eq!(res["deliveredTo"], 1, "{res}");
    loop {
        let (name, _) = on_b.next_event().await.expect("an event");
        assert!(
            !["critical_notification", "too_deep"].contains(&name.as_str()),
            "a refused body was delivered: {name}"
        );
        if name == "marker" {
            break;
        }
    }
    let (_, listed) = a.get("/api/v1/users/u1/notifications").await;
    let ids: Vec<&serde_json::Value> = listed["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["notification"]["id"])
        .collect();
    assert_eq!(ids, [&json!("deep")], "{listed}");
}

/// A session ended while its node could not reach Redis (the store
/// recorded the expiry, Redis kept the clock) is refused once the node
/// rejoins: the rejoin's record of expired sessions deletes their clocks,
/// as every expiry does, because a session's activity reads the expired
/// sessions only when it has no clock.
#[tokio::test]
async fn a_session_ended_while_redis_kept_its_clock_is_refused_after_the_rejoin() {
    use herald::config::{SessionConfig, SessionTimeouts};
    use herald::session::{RedisSessions, SessionClocks, SessionKey, Touch};
    let redis = Redis::start().await;
    let link = RedisLink::new(&redis.url(), Arc::from("node-a"), Duration::from_secs(1)).unwrap();
    let (inbox, _messages) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(link.clone().supervise(inbox));
    eventually_named("link up", 5, || async { link.is_up() }).await;
    let timeouts = SessionTimeouts {
        idle_timeout: Duration::from_secs(60),
        warning_before: Duration::from_secs(20),
    };
    let clocks = RedisSessions::new(
        link,
        SessionConfig {
            default: timeouts,
            roles: Default::default(),
        },
    );
    let (s1, u1, role): (Arc<str>, Arc<str>, Arc<str>) =
        (Arc::from("s1"), Arc::from("u1"), Arc::from("radiologist"));
    let key = SessionKey::new(&s1, &u1, &role);
    let now = SystemClock.now_ms();
    assert_eq!(clocks.start(&key, now).await, Touch::Active);
    // The store says s1 expired; Redis still has its clock. The rejoin:
    clocks.rejoin(&[], &["s1".to_string()], now + 1_000).await;
    assert_eq!(clocks.start(&key, now + 2_000).await, Touch::Expired);
    assert_eq!(
        clocks.touch_id("s1", now + 2_000).await,
        Some(Touch::Expired)
    );
    assert!(clocks.snapshot("s1").await.is_none(), "no clock left");
}
