//! The operators' dashboard and the try-it page against a real server: the
//! admin key (its own, or the API keys), the picture of connected users
//! and waiting notifications, the actions, the live stream ending at
//! shutdown, and `/try` served only with development credentials.

mod common;

use common::{TestServer, API_KEY};
use serde_json::{json, Value};

const ADMIN_KEY: &str = "integration-test-admin-key-0123456789";

async fn admin(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = s
        .http
        .request(method, format!("{}/admin/api{path}", s.base));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_admin_api_refuses_a_wrong_key_and_accepts_the_right_one() {
    let s = TestServer::start_with(|f| f.admin_keys = Some(vec![ADMIN_KEY.into()])).await;
    let get = reqwest::Method::GET;
    for key in [None, Some("not-the-admin-key-0123456789"), Some(API_KEY)] {
        let (status, body) = admin(&s, get.clone(), "/overview", key).await;
        assert_eq!(status, 401, "{key:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    // A refused action does nothing: the session stays usable.
    let token = s.token("u1", "s1", "radiologist", 3_600_000);
    let (mut c, _) = s.connect_ok(&token).await;
    let (status, _) = admin(&s, reqwest::Method::DELETE, "/sessions/s1", Some(API_KEY)).await;
    assert_eq!(status, 401);
    let answer = c.call("activity", None).await;
    assert_eq!(answer["ok"], true, "the session is still live");

    let (status, body) = admin(&s, get.clone(), "/overview", Some(ADMIN_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(body["users"][0]["userId"], "u1");
    // The admin key is not an API key.
    let res = s
        .http
        .get(format!("{}/api/v1/users", s.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn without_admin_keys_the_api_keys_open_the_dashboard() {
    let s = TestServer::start().await;
    let (status, body) = admin(&s, reqwest::Method::GET, "/overview", Some(API_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(body["health"]["store"], "ok");
    assert_eq!(body["health"]["redis"], Value::Null, "a single node");
    s.stop().await;
}

#[tokio::test]
async fn the_picture_shows_sessions_with_their_clocks_and_waiting_notifications() {
    let s = TestServer::start_with(|f| f.session.idle_timeout = Some("10m".into())).await;
    let token = s.token("u1", "s1", "radiologist", 3_600_000);
    let (mut c, _) = s.connect_ok(&token).await;
    let (status, _) = s
        .post(
            "/api/v1/users/u1/notifications",
            json!({"id": "n1", "severity": "critical", "title": "Critical", "patientId": "p-1"}),
        )
        .await;
    assert_eq!(status, 202);
    c.expect_event("critical_notification").await;

    let (_, p) = admin(&s, reqwest::Method::GET, "/overview", Some(API_KEY)).await;
    assert_eq!(p["sockets"]["total"], 1);
    assert_eq!(p["sockets"]["byTransport"]["websocket"], 1);
    assert_eq!(p["sockets"]["byNode"][s.hub.node_id()], 1);
    let session = &p["users"][0]["sessions"][0];
    assert_eq!(session["sessionId"], "s1");
    assert_eq!(session["role"], "radiologist");
    let now = herald::clock::rfc3339(herald::clock::Clock::now_ms(&*s.clock) + 600_000);
    assert_eq!(session["expiresAt"], now.as_str(), "idle timeout from now");
    let open = &p["unacknowledged"];
    assert_eq!(open["total"], 1);
    let n = &open["notifications"][0];
    assert_eq!(
        (n["id"].as_str(), n["userId"].as_str()),
        (Some("n1"), Some("u1"))
    );
    assert_eq!(n["severity"], "critical");
    assert_eq!(n["escalationLevel"], Value::Null);
    assert!(
        n.get("patientId").is_none(),
        "no body beyond kind, severity, title"
    );

    let (status, t) = admin(&s, reqwest::Method::GET, "/notifications/n1", Some(API_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(t["recipients"][0]["userId"], "u1");
    assert!(t.get("patientId").is_none());
    let (status, _) = admin(
        &s,
        reqwest::Method::GET,
        "/notifications/nope",
        Some(API_KEY),
    )
    .await;
    assert_eq!(status, 404);

    c.call(
        "acknowledge_notification",
        Some(json!({"notificationId": "n1"})),
    )
    .await;
    let (_, p) = admin(&s, reqwest::Method::GET, "/overview", Some(API_KEY)).await;
    assert_eq!(
        p["unacknowledged"]["total"], 0,
        "acknowledged: off the list"
    );
    s.stop().await;
}

#[tokio::test]
async fn admin_actions_expire_a_session_and_disconnect_a_user() {
    let s = TestServer::start().await;
    let (mut a, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", 3_600_000))
        .await;
    let (mut b, _) = s
        .connect_ok(&s.token("u2", "s2", "radiologist", 3_600_000))
        .await;
    let (status, body) = admin(&s, reqwest::Method::DELETE, "/sessions/s1", Some(API_KEY)).await;
    assert_eq!((status, body["disconnected"].as_u64()), (200, Some(1)));
    a.expect_event("session_expired").await;
    assert!(
        s.connect(&s.token("u1", "s1", "radiologist", 3_600_000))
            .await
            .is_err(),
        "expired for good"
    );
    let (status, _) = admin(
        &s,
        reqwest::Method::DELETE,
        "/sessions/unknown",
        Some(API_KEY),
    )
    .await;
    assert_eq!(status, 404);

    let (status, body) = admin(
        &s,
        reqwest::Method::DELETE,
        "/users/u2/connections?reason=admin",
        Some(API_KEY),
    )
    .await;
    assert_eq!((status, body["disconnected"].as_u64()), (200, Some(1)));
    assert!(matches!(
        b.next().await,
        common::Incoming::Disconnect | common::Incoming::Closed
    ));
    s.stop().await;
}

#[tokio::test]
async fn the_stream_sends_the_picture_and_ends_at_shutdown() {
    let s = TestServer::start().await;
    let mut res = s
        .http
        .get(format!("{}/admin/api/stream", s.base))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        let chunk = res.chunk().await.unwrap().expect("the first picture");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.starts_with("event: overview\ndata: {"), "{seen}");
    assert!(!seen.contains("\"userId\":\"u1\""));
    // A change of the service is pushed, no reload: a socket connects.
    let (_c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", 3_600_000))
        .await;
    // The open streams share one picture until it is 900 ms old (by the
    // server's clock, which this test drives).
    s.clock.advance(1_000);
    while !seen.contains("\"userId\":\"u1\"") {
        let chunk = res.chunk().await.unwrap().expect("a new picture");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let stopping = tokio::spawn(s.stop());
    // The stream ends (rather than holding the shutdown up to its timeout).
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Ok(Some(_)) = res.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream did not end at shutdown");
    stopping.await.unwrap();
}

#[tokio::test]
async fn the_dashboard_page_is_served_with_a_strict_policy() {
    let s = TestServer::start().await;
    let res = s
        .http
        .get(format!("{}/admin", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(res.text().await.unwrap().contains("/admin/admin.js"));
    s.stop().await;
}

#[tokio::test]
async fn try_is_served_only_with_development_credentials() {
    let s = TestServer::start().await;
    for path in ["/try", "/try/socket.io.min.js"] {
        let res = s
            .http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path} with a JWT secret set");
    }
    let res = s
        .http
        .post(format!("{}/try/token", s.base))
        .json(&json!({"userId": "u1", "role": "radiologist"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    s.stop().await;

    let dev = TestServer::start_with(|f| f.jwt.secret = None).await;
    let page = dev
        .http
        .get(format!("{}/try", dev.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let client = dev
        .http
        .get(format!("{}/try/socket.io.min.js", dev.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(client.contains("Socket.IO v4.8.4"));
    let mint = |body: Value| {
        dev.http
            .post(format!("{}/try/token", dev.base))
            .header("Origin", "http://localhost:8001")
            .json(&body)
            .send()
    };
    let res = mint(json!({"userId": "u1", "role": "radiologist"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let minted: Value = res.json().await.unwrap();
    assert_eq!(
        minted["origin"]["allowed"], false,
        "localhost:8001 is not listed"
    );
    let token = minted["token"].as_str().unwrap();
    let (_, connected) = dev.connect_ok(token).await;
    assert_eq!(connected["userId"], "u1");
    for bad in [
        json!({"userId": "", "role": "r"}),
        json!({"userId": "u1"}),
        json!({"userId": "u", "role": "r", "x": 1}),
    ] {
        let res = mint(bad.clone()).await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
    }
    dev.stop().await;
}

#[tokio::test]
async fn try_token_refuses_a_request_addressed_to_an_untrusted_name() {
    // DNS rebinding: a page at http://evil.test:PORT whose name resolves to
    // 127.0.0.1 reaches the server from loopback, naming itself in `Host`
    // and `Origin`.
    let dev = TestServer::start_with(|f| f.jwt.secret = None).await;
    let port = dev.base.rsplit(':').next().unwrap().to_string();
    let mint = |host: String, origin: Option<String>| {
        let mut req = dev
            .http
            .post(format!("{}/try/token", dev.base))
            .header("Host", host)
            .json(&json!({"userId": "u1", "role": "admin"}));
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        req.send()
    };
    let evil = format!("evil.test:{port}");
    for (host, origin) in [
        (evil.clone(), Some(format!("http://{evil}"))),
        (evil.clone(), None),
        (format!("127.0.0.1:{port}"), Some(format!("http://{evil}"))),
        (format!("127.0.0.1:{port}"), Some("null".to_string())),
    ] {
        let res = mint(host.clone(), origin.clone()).await.unwrap();
        assert_eq!(res.status(), 403, "Host {host}, Origin {origin:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "untrusted_host", "{body}");
        assert!(body.get("token").is_none());
    }
    for (host, origin) in [
        (format!("127.0.0.1:{port}"), None),
        (
            format!("127.0.0.1:{port}"),
            Some(format!("http://127.0.0.1:{port}")),
        ),
        (
            format!("localhost:{port}"),
            Some(format!("http://localhost:{port}")),
        ),
        (format!("[::1]:{port}"), None),
    ] {
        let res = mint(host.clone(), origin.clone()).await.unwrap();
        assert_eq!(res.status(), 200, "Host {host}, Origin {origin:?}");
        let body: Value = res.json().await.unwrap();
        assert!(body["token"].is_string(), "{body}");
    }
    dev.stop().await;
}
