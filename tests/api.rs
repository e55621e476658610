//! The backend API against a real server: authentication, validation,
//! durable notifications and their states, events and reserved names.

mod common;

use common::{TestServer, API_KEY};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn refuses_missing_and_wrong_api_keys_and_changes_nothing() {
    let s = TestServer::start().await;
    let url = format!("{}/api/v1/users/u1/notifications", s.base);
    let none = s
        .http
        .post(&url)
        .json(&json!({"id": "n1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = s
        .http
        .post(&url)
        .bearer_auth(format!("{API_KEY}x"))
        .json(&json!({"id": "n1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let (status, _) = s.get("/api/v1/notifications/n1").await;
    assert_eq!(status, 404, "nothing was stored");
    s.stop().await;
}

/// A backend that posts a large body with a wrong key, without waiting for
/// `100 Continue` (as Node's fetch does), reads its 401: the server reads
/// the body it refuses before answering, so the connection is not reset
/// under the client while it is still sending.
#[tokio::test]
async fn a_refused_large_body_still_gets_its_401() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start().await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let body = format!("{{\"title\":\"{}\"}}", "x".repeat(3_000_000));
    for _ in 0..20 {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v1/users/u1/notifications HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer wrong-key\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(body.as_bytes()).await.unwrap();
        let mut answer = vec![0; 12];
        tcp.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 401");
    }
    s.stop().await;
}

#[tokio::test]
async fn stores_fills_and_keeps_unknown_fields_idempotently() {
    let s = TestServer::start().await;
    let (status, body) = s
        .post(
            "/api/v1/users/u1/notifications",
            json!({"type": "critical_finding", "extra": {"a": 1}}),
        )
        .await;
    assert_eq!(status, 202);
    let id = body["notification"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["notification"]["extra"], json!({"a": 1}));
    assert!(body["notification"]["createdAt"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(body["deliveredTo"], 0);

    let (status, first) = s
        .post(
            "/api/v1/users/u1/notifications",
            json!({"id": "n-1", "title": "first"}),
        )
        .await;
    assert_eq!(status, 202);
    let (status, again) = s
        .post(
            "/api/v1/users/u1/notifications",
            json!({"id": "n-1", "title": "second"}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(again["deliveredTo"], 0);
    assert_eq!(
        again["notification"], first["notification"],
        "the first body stands"
    );

    let (status, one) = s.get(&format!("/api/v1/users/u1/notifications/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["state"], "pending");
    assert_eq!(one["deliveredAt"], serde_json::Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_400_with_an_error_code() {
    let s = TestServer::start().await;
    for (path, body, code) in [
        (
            "/api/v1/users/u1/notifications",
            json!({"id": "a/b"}),
            "invalid_notification",
        ),
        (
            "/api/v1/users/u1/notifications",
            json!({"id": "x".repeat(129)}),
            "invalid_notification",
        ),
        (
            "/api/v1/users/u1/notifications",
            json!([1, 2]),
            "invalid_notification",
        ),
        (
            "/api/v1/notifications",
            json!({"userIds": [], "notification": {}}),
            "invalid_payload",
        ),
        (
            "/api/v1/notifications",
            json!({"userIds": "u1", "notification": {}}),
            "invalid_payload",
        ),
        (
            "/api/v1/roles/r/events",
            json!({"event": "connected", "data": 1}),
            "invalid_request",
        ),
        ("/api/v1/events", json!({"event": 5}), "invalid_payload"),
        (
            "/api/v1/users/u1/session-warning",
            json!({"sessionId": "s", "timeRemaining": "soon"}),
            "invalid_payload",
        ),
    ] {
        let (status, res) = s.post(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}");
        assert_eq!(res["error"]["code"], code, "{path} {body}: {res}");
        assert!(res["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let raw = s
        .http
        .post(format!("{}/api/v1/users/u1/notifications", s.base))
        .bearer_auth(API_KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
    let (_, list) = s.get("/api/v1/users/u1/notifications").await;
    assert_eq!(
        list["notifications"].as_array().unwrap().len(),
        0,
        "nothing was stored"
    );
    s.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let s = TestServer::start().await;
    let big = json!({"blob": "x".repeat(1_100_000)});
    let (status, body) = s.post("/api/v1/users/u1/notifications", big).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
    s.stop().await;
}

#[tokio::test]
async fn broadcast_shares_one_id_with_per_recipient_state() {
    let s = TestServer::start().await;
    let (status, body) = s
        .post(
            "/api/v1/notifications",
            json!({"userIds": ["a", "b", 42, "a"], "notification": {"title": "t"}}),
        )
        .await;
    assert_eq!(status, 202);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "duplicates collapse: {body}");
    let id = results[0]["notificationId"].as_str().unwrap();
    assert!(results.iter().all(|r| r["notificationId"] == id));
    assert_eq!(results[2]["userId"], "42");
    let (status, n) = s.get(&format!("/api/v1/notifications/{id}")).await;
    assert_eq!(status, 200);
    let states: Vec<_> = n["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].clone())
        .collect();
    assert_eq!(states, vec![json!("pending"); 3]);
    s.stop().await;
}

#[tokio::test]
async fn lists_filter_by_state_and_reject_unknown_states() {
    let s = TestServer::start().await;
    for i in 0..3 {
        s.post(
            "/api/v1/users/u1/notifications",
            json!({"id": format!("n{i}")}),
        )
        .await;
    }
    let (status, all) = s
        .get("/api/v1/users/u1/notifications?state=unacknowledged")
        .await;
    assert_eq!(status, 200);
    let ids: Vec<_> = all["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["notification"]["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("n0"), json!("n1"), json!("n2")]);
    let (status, page) = s.get("/api/v1/users/u1/notifications?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(page["notifications"].as_array().unwrap().len(), 2);
    let after = page["nextAfter"].as_i64().unwrap();
    let (_, rest) = s
        .get(&format!("/api/v1/users/u1/notifications?after={after}"))
        .await;
    assert_eq!(rest["notifications"][0]["notification"]["id"], "n2");
    let (status, bad) = s.get("/api/v1/users/u1/notifications?state=seen").await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["code"], "invalid_query");
    s.stop().await;
}

#[tokio::test]
async fn ops_endpoints_need_no_key() {
    let s = TestServer::start().await;
    for (path, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/api/v1/openapi.json", 200),
    ] {
        let res = s
            .http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{path}");
    }
    let (status, users) = s.api(Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, 200);
    assert_eq!(users, json!({"count": 0, "users": []}));
    s.stop().await;
}

#[tokio::test]
async fn session_routes_404_for_unknown_sessions() {
    let s = TestServer::start().await;
    for (m, p) in [
        (Method::GET, "/api/v1/sessions/nope"),
        (Method::POST, "/api/v1/sessions/nope/activity"),
        (Method::POST, "/api/v1/sessions/nope/extend"),
        (Method::DELETE, "/api/v1/sessions/nope"),
    ] {
        let (status, body) = s.api(m, p, None).await;
        assert_eq!(status, 404, "{p}: {body}");
    }
    s.stop().await;
}

#[tokio::test]
async fn malformed_queries_get_a_json_400() {
    let s = TestServer::start().await;
    for path in [
        "/api/v1/users/u1/notifications?after=soon",
        "/api/v1/users/u1/notifications?limit=-1",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["code"], "invalid_query", "{path}: {body}");
    }
    s.stop().await;
}

#[tokio::test]
async fn session_expiry_for_the_wrong_user_changes_nothing() {
    let s = TestServer::start().await;
    let token = s.token("u1", "s1", "radiologist", 3_600_000);
    let (_c, _) = s.connect_ok(&token).await;
    let (status, body) = s
        .post(
            "/api/v1/users/u2/session-expired",
            json!({"sessionId": "s1"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = s.get("/api/v1/sessions/s1").await;
    assert_eq!(status, 200, "s1 is still alive");
    assert!(s.connect(&token).await.is_ok());
    s.stop().await;
}

#[tokio::test]
async fn over_rate_api_keys_get_429_and_nothing_changes() {
    let s = TestServer::start_with(|f| {
        f.api_rate_limit.per_second = Some(1);
        f.api_rate_limit.burst = Some(2);
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (status, _) = s
            .post(
                "/api/v1/users/u1/notifications",
                json!({"id": format!("n{i}")}),
            )
            .await;
        statuses.push(status);
    }
    assert_eq!(statuses, [202, 202, 429]);
    let (status, body) = s.get("/api/v1/users/u1/notifications").await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "rate_limited");
    s.clock.advance(1000);
    let (_, list) = s.get("/api/v1/users/u1/notifications").await;
    assert_eq!(
        list["notifications"].as_array().unwrap().len(),
        2,
        "the refused call stored nothing"
    );
    s.stop().await;
}

/// Every route the OpenAPI document lists is answered by the running app
/// (not the router's bare 404 or a 405), whatever its parameters: the
/// document and the app as assembled agree, nesting and key check included.
/// (The other direction, every served route documented, is a unit test
/// over the routers' endpoint lists in `src/http/ops.rs`.)
/// `method path` with the API key and an empty JSON object for a body: the
/// request a route probe sends, whatever the route takes.
async fn probe(s: &TestServer, method: Method, path: &str) -> reqwest::Response {
    s.http
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(API_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let s = TestServer::start().await;
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../docs/openapi.json")).unwrap();
    let mut probed = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        // Each {param} gets a value of its own name: a valid id nobody has.
        let path: String = template
            .split('/')
            .map(
                |seg| match seg.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) => format!("probe-{name}"),
                    None => seg.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = probe(&s, m, &path).await;
            let status = res.status().as_u16();
            // A live stream (the dashboard's) never ends: its head is enough.
            let streaming = res
                .headers()
                .get("content-type")
                .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
            let body = if streaming {
                String::from("(stream)")
            } else {
                res.text().await.unwrap()
            };
            assert_ne!(status, 405, "{method} {template}: method not routed");
            assert!(
                !(status == 404 && body.is_empty()),
                "{method} {template}: no route (the router's empty 404)"
            );
            probed += 1;
        }
    }
    assert!(probed >= 23, "probed {probed} operations");
}

#[tokio::test]
async fn the_path_segments_dot_and_dot_dot_are_no_notification_ids() {
    let s = TestServer::start().await;
    for id in [".", ".."] {
        let (status, res) = s
            .post("/api/v1/users/u1/notifications", json!({"id": id}))
            .await;
        assert_eq!(
            (status, res["error"]["code"].clone()),
            (400, json!("invalid_notification")),
            "{id:?}"
        );
        let (status, res) = s
            .post(
                "/api/v1/notifications",
                json!({"userIds": ["u1"], "notification": {"id": id}}),
            )
            .await;
        assert_eq!(
            (status, res["error"]["code"].clone()),
            (400, json!("invalid_notification")),
            "{id:?}"
        );
    }
    // Refused means unchanged: nothing was stored for the user.
    let (_, listed) = s.get("/api/v1/users/u1/notifications").await;
    assert_eq!(listed["notifications"], json!([]), "{listed}");
    // Dots elsewhere in an id stay allowed.
    let (status, _) = s
        .post("/api/v1/users/u1/notifications", json!({"id": "..."}))
        .await;
    assert_eq!(status, 202);
    s.stop().await;
}

/// Each route of the OpenAPI document with a path id, the template's
/// `{param}`s filled in: the one at `at` with `value`, the others with a
/// valid id nobody has.
fn path_ids_probes(value: &str) -> Vec<(Method, String, String)> {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../docs/openapi.json")).unwrap();
    let mut probes = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let segments: Vec<&str> = template.split('/').collect();
        let params: Vec<usize> = (0..segments.len())
            .filter(|&i| segments[i].starts_with('{'))
            .collect();
        for &at in &params {
            let path: Vec<String> = segments
                .iter()
                .enumerate()
                .map(|(i, seg)| match i {
                    _ if i == at => value.to_string(),
                    _ if params.contains(&i) => "probe".to_string(),
                    _ => seg.to_string(),
                })
                .collect();
            for method in ["get", "post", "delete"] {
                if item.get(method).is_some() {
                    let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                    probes.push((
                        m,
                        path.join("/"),
                        format!("{method} {template} {}", segments[at]),
                    ));
                }
            }
        }
    }
    probes
}

/// Every path id on every route, of the API and the dashboard, gets the
/// documented `400 invalid_id` for a NUL, a control character, an id over
/// 256 bytes or one that is not UTF-8: before the store sees it, so that
/// PostgreSQL (which refuses a NUL in text) does not answer a store outage.
async fn every_path_id_is_checked_before_the_store(s: &TestServer) {
    let long = "x".repeat(257);
    let mut probed = 0;
    for bad in [
        "a%00b",
        "%00",
        "a%01b",
        "%7F",
        "%C2%85",
        long.as_str(),
        "%FF",
    ] {
        for (method, path, what) in path_ids_probes(bad) {
            let res = probe(s, method, &path).await;
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            assert_eq!(
                (status, &body["error"]["code"]),
                (400, &json!("invalid_id")),
                "{what} = {bad:?}: {body}"
            );
            probed += 1;
        }
    }
    assert!(probed >= 7 * 20, "probed {probed}");
}

#[tokio::test]
async fn every_path_id_is_checked_on_sqlite() {
    let s = TestServer::start().await;
    every_path_id_is_checked_before_the_store(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn every_path_id_is_checked_on_postgresql() {
    let db = common::cluster::fresh_database().await;
    let s = TestServer::start_with(|f| f.database_url = Some(db)).await;
    every_path_id_is_checked_before_the_store(&s).await;
    s.stop().await;
}
