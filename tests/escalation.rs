//! The escalation engine on an injected clock, with real sockets and a real
//! pager endpoint: each step fires at its deadline and not before, closing
//! stops the rest, steps due while no node ran fire on the next start, a
//! step claimed by a dead node fires once its lease runs out, and a refused
//! webhook is retried until it is taken; and a reminder told after the
//! socket's acknowledgement, or told again by a node that took its step
//! over, stops at the socket.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{EioClient, TestServer};
use herald::broker::{Message, Target};
use herald::clock::{Clock, Millis};
use herald::config::escalation::EscalationFile;
use herald::config::FileConfig;
use herald::store::{AuditTrail, EscalationSteps, SqliteStore, Store};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

const MIN: Millis = 60_000;
const WEBHOOK_SECRET: &str = "escalation-webhook-secret-0123456789";
const CHIEF: &str = "chief-radiologist";

/// The contract's example policy for `critical`, paging `pager`.
fn policy(f: &mut FileConfig, pager: &str) {
    f.escalation = toml::from_str::<EscalationFile>(&format!(
        r#"
        webhook_secret = "{WEBHOOK_SECRET}"
        [policies.critical]
        steps = [
          {{ after = "5m",  renotify = true }},
          {{ after = "10m", to_role = "attending" }},
          {{ after = "15m", to_users = ["{CHIEF}"] }},
          {{ after = "20m", webhook = "{pager}" }},
        ]
        "#
    ))
    .expect("escalation policy");
    // The clock runs for hours here: sessions are not what is under test.
    f.session.idle_timeout = Some("8h".into());
}

/// One POST the pager received.
#[derive(Debug)]
struct Page {
    signed: bool,
    body: Value,
}

struct Pager {
    refusals: AtomicUsize,
    pages: mpsc::UnboundedSender<Page>,
}

async fn page(State(p): State<Arc<Pager>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let signed = headers
        .get("x-herald-signature")
        .is_some_and(|v| v.as_bytes() == format!("sha256={hex}").as_bytes());
    let _ = p.pages.send(Page {
        signed,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let refuse = p
        .refusals
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if refuse {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// A pager gateway on 127.0.0.1 that answers 500 to its first `refusals`
/// POSTs and 200 after: its URL and what it received.
async fn pager(refusals: usize) -> (String, mpsc::UnboundedReceiver<Page>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Arc::new(Pager {
        refusals: AtomicUsize::new(refusals),
        pages: tx,
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(page))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn next_page(pages: &mut mpsc::UnboundedReceiver<Page>) -> Page {
    tokio::time::timeout(Duration::from_secs(10), pages.recv())
        .await
        .expect("the pager was called")
        .expect("the pager runs")
}

/// The store of the node running on `dir`, read beside it.
async fn store(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir).await.expect("store opens")
}

/// The escalation events of notification `id`'s timeline, in order.
async fn steps(store: &SqliteStore, id: &str) -> Vec<(String, Option<u32>)> {
    let records = store.timeline(id).await.unwrap();
    herald::trail::timeline::events(&records)
        .into_iter()
        .filter_map(|e| {
            let kind = e["type"].as_str()?.to_string();
            matches!(
                kind.as_str(),
                "reminded" | "escalated" | "webhook_sent" | "webhook_failed" | "closed"
            )
            .then(|| {
                (
                    kind,
                    e["level"].as_u64().and_then(|l| u32::try_from(l).ok()),
                )
            })
        })
        .collect()
}

fn kinds(v: &[(&str, u32)]) -> Vec<(String, Option<u32>)> {
    v.iter().map(|(k, l)| (k.to_string(), Some(*l))).collect()
}

/// Waits until the timeline of `id` shows `want` (a webhook attempt is
/// recorded by its own task, after `escalate_due` returned).
async fn timeline_reaches(store: &SqliteStore, id: &str, want: &[(String, Option<u32>)]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = steps(store, id).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timeline of {id}: {got:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn connect(s: &TestServer, user: &str, role: &str) -> EioClient {
    s.connect_ok(&s.token(user, &format!("{user}-session"), role, 24 * 60 * MIN))
        .await
        .0
}

async fn send(s: &TestServer, user: &str) -> (String, Millis) {
    let sent = s
        .hub
        .send_notification_to_user(user, json!({ "severity": "critical", "title": "Critical" }))
        .await
        .unwrap();
    (sent.notification.id.clone(), sent.notification.created_at)
}

/// Moves the clock to `created + at` and runs one round.
async fn round_at(s: &TestServer, created: Millis, at: Millis) -> Option<Millis> {
    s.clock.advance(created + at - s.clock.now_ms());
    s.hub.escalate_due().await
}

#[tokio::test]
async fn every_step_fires_in_order_at_its_deadline_and_not_before() {
    let (url, mut pages) = pager(0).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), |f| policy(f, &url)).await;
    let audit = store(dir.path()).await;
    let mut doctor = connect(&s, "doctor", "radiologist").await;
    let mut member = connect(&s, "attending-1", "attending").await;
    let mut chief = connect(&s, CHIEF, "radiologist").await;
    let (id, t0) = send(&s, "doctor").await;
    assert_eq!(
        doctor.expect_event("critical_notification").await["id"],
        *id
    );

    // Each round just before a deadline fires nothing and names that deadline.
    assert_eq!(round_at(&s, t0, 5 * MIN - 1).await, Some(t0 + 5 * MIN));
    assert_eq!(steps(&audit, &id).await, vec![]);
    assert_eq!(round_at(&s, t0, 5 * MIN).await, Some(t0 + 10 * MIN));
    let reminder = doctor.expect_event("critical_notification").await;
    assert_eq!(
        (&reminder["id"], &reminder["reminder"]),
        (&json!(id), &json!(1))
    );

    assert_eq!(round_at(&s, t0, 10 * MIN - 1).await, Some(t0 + 10 * MIN));
    assert_eq!(steps(&audit, &id).await, kinds(&[("reminded", 1)]));
    assert_eq!(round_at(&s, t0, 10 * MIN).await, Some(t0 + 15 * MIN));
    let to_role = member.expect_event("critical_notification").await;
    assert_eq!(to_role["id"], *id);
    assert_eq!(
        to_role["escalation"],
        json!({ "level": 2, "reason": "unacknowledged for 10m" })
    );
    let told = doctor.expect_event("notification_escalated").await;
    assert_eq!(
        (&told["notificationId"], &told["level"], &told["to"]),
        (&json!(id), &json!(2), &json!({ "role": "attending" }))
    );

    assert_eq!(round_at(&s, t0, 15 * MIN - 1).await, Some(t0 + 15 * MIN));
    assert_eq!(round_at(&s, t0, 15 * MIN).await, Some(t0 + 20 * MIN));
    let to_user = chief.expect_event("critical_notification").await;
    assert_eq!(to_user["escalation"]["level"], 3);
    for c in [&mut doctor, &mut member] {
        let told = c.expect_event("notification_escalated").await;
        assert_eq!(
            (&told["level"], &told["to"]),
            (&json!(3), &json!({ "users": [CHIEF] }))
        );
    }

    assert_eq!(round_at(&s, t0, 20 * MIN - 1).await, Some(t0 + 20 * MIN));
    assert_eq!(
        steps(&audit, &id).await,
        kinds(&[("reminded", 1), ("escalated", 2), ("escalated", 3)])
    );
    round_at(&s, t0, 20 * MIN).await;
    let paged = next_page(&mut pages).await;
    assert!(paged.signed, "X-Herald-Signature is the body's HMAC-SHA256");
    assert_eq!(paged.body["level"], 4);
    assert_eq!(paged.body["openFor"], 20 * MIN);
    assert_eq!(paged.body["notification"]["id"], *id);
    timeline_reaches(
        &audit,
        &id,
        &kinds(&[
            ("reminded", 1),
            ("escalated", 2),
            ("escalated", 3),
            ("webhook_sent", 4),
        ]),
    )
    .await;
    assert_eq!(s.hub.escalate_due().await, None, "every step is done");

    // The added user closes it: every recipient's screen hears it.
    // No acknowledgement callback: the events may come before its answer.
    chief
        .emit(
            "acknowledge_notification",
            Some(json!({ "notificationId": id })),
        )
        .await;
    let acked = chief.expect_event("notification_acknowledged").await;
    for c in [&mut doctor, &mut member, &mut chief] {
        let closed = c.expect_event("notification_closed").await;
        assert_eq!(
            closed,
            json!({ "notificationId": id, "closedAt": acked["acknowledgedAt"], "closedBy": CHIEF })
        );
    }
    audit.close().await;
    s.stop().await;
}

#[tokio::test]
async fn closing_stops_the_later_steps() {
    let (url, mut pages) = pager(0).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), |f| policy(f, &url)).await;
    let audit = store(dir.path()).await;
    let mut doctor = connect(&s, "doctor", "radiologist").await;
    let (closing, t0) = send(&s, "doctor").await;
    round_at(&s, t0, 5 * MIN).await;
    doctor.expect_event("critical_notification").await;
    assert_eq!(
        doctor.expect_event("critical_notification").await["reminder"],
        1
    );
    doctor
        .emit(
            "acknowledge_notification",
            Some(json!({ "notificationId": closing })),
        )
        .await;
    assert_eq!(
        doctor.expect_event("notification_closed").await["closedBy"],
        "doctor"
    );

    // A second notification, left open, goes through every step: the
    // rounds that fired them had the closed one's steps due too.
    let (open, _) = send(&s, "doctor").await;
    round_at(&s, t0, 60 * MIN).await;
    next_page(&mut pages).await;
    timeline_reaches(
        &audit,
        &open,
        &kinds(&[
            ("reminded", 1),
            ("escalated", 2),
            ("escalated", 3),
            ("webhook_sent", 4),
        ]),
    )
    .await;
    assert_eq!(
        steps(&audit, &closing).await,
        vec![("reminded".into(), Some(1)), ("closed".into(), None)]
    );
    let (_, recipients) = s.hub.notification(&closing).await.unwrap().unwrap();
    let users: Vec<&str> = recipients.iter().map(|r| r.user_id.as_str()).collect();
    assert_eq!(users, ["doctor"], "nobody was added after closing");
    audit.close().await;
    s.stop().await;
}

#[tokio::test]
async fn steps_that_fell_due_while_no_node_ran_fire_on_the_first_round() {
    let (url, mut pages) = pager(0).await;
    let dir = tempfile::tempdir().unwrap();
    let first = TestServer::start_in(dir.path(), |f| policy(f, &url)).await;
    let clock = first.clock.clone();
    let (id, t0) = send(&first, "doctor").await;
    first.crash();

    clock.advance(t0 + 25 * MIN - clock.now_ms());
    let s = TestServer::start_with_clock(dir.path(), clock, |f| policy(f, &url)).await;
    s.hub.escalate_due().await;
    let paged = next_page(&mut pages).await;
    assert_eq!(paged.body["openFor"], 25 * MIN);
    let audit = store(dir.path()).await;
    timeline_reaches(
        &audit,
        &id,
        &kinds(&[
            ("reminded", 1),
            ("escalated", 2),
            ("escalated", 3),
            ("webhook_sent", 4),
        ]),
    )
    .await;
    assert_eq!(s.hub.escalate_due().await, None, "every step is done");
    // The added user finds it on connect, escalated.
    let mut chief = connect(&s, CHIEF, "radiologist").await;
    let caught = chief.expect_event("critical_notification").await;
    assert_eq!(
        (&caught["id"], &caught["redelivered"]),
        (&json!(id), &json!(true))
    );
    assert_eq!(caught["escalation"]["level"], 3);
    audit.close().await;
    s.stop().await;
}

#[tokio::test]
async fn a_step_claimed_by_a_dead_node_fires_once_its_lease_runs_out() {
    let (url, _pages) = pager(0).await;
    let dir = tempfile::tempdir().unwrap();
    let first = TestServer::start_in(dir.path(), |f| {
        policy(f, &url);
        f.cluster.node_id = Some("node-a".into());
    })
    .await;
    let clock = first.clock.clone();
    let (id, t0) = send(&first, "doctor").await;
    first.crash();

    // node-a claimed the reminder, then died before firing it.
    clock.advance(t0 + 5 * MIN - clock.now_ms());
    let lease: Millis = 30_000;
    let dead = store(dir.path()).await;
    let claimed = dead
        .claim_steps(clock.now_ms(), "node-a", clock.now_ms() + lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|c| c.level).collect::<Vec<_>>(), [1]);
    dead.close().await;

    let s = TestServer::start_with_clock(dir.path(), clock, |f| {
        policy(f, &url);
        f.cluster.node_id = Some("node-b".into());
    })
    .await;
    let audit = store(dir.path()).await;
    let mut doctor = connect(&s, "doctor", "radiologist").await;
    assert_eq!(
        doctor.expect_event("critical_notification").await["redelivered"],
        true
    );
    assert_eq!(
        round_at(&s, t0, 5 * MIN + lease - 1).await,
        Some(t0 + 5 * MIN + lease),
        "node-a's lease holds the step until it runs out"
    );
    assert_eq!(steps(&audit, &id).await, vec![]);
    assert_eq!(round_at(&s, t0, 5 * MIN + lease).await, Some(t0 + 10 * MIN));
    let reminder = doctor.expect_event("critical_notification").await;
    assert_eq!(
        (&reminder["id"], &reminder["reminder"]),
        (&json!(id), &json!(1))
    );
    s.hub.escalate_due().await;
    assert_eq!(
        steps(&audit, &id).await,
        kinds(&[("reminded", 1)]),
        "fired once"
    );
    audit.close().await;
    s.stop().await;
}

#[tokio::test]
async fn a_refused_webhook_is_retried_until_the_pager_takes_it() {
    let (url, mut pages) = pager(1).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), |f| policy(f, &url)).await;
    let audit = store(dir.path()).await;
    let (id, t0) = send(&s, "doctor").await;
    round_at(&s, t0, 20 * MIN).await;
    assert!(next_page(&mut pages).await.signed);
    let refused = kinds(&[
        ("reminded", 1),
        ("escalated", 2),
        ("escalated", 3),
        ("webhook_failed", 4),
    ]);
    timeline_reaches(&audit, &id, &refused).await;
    // The first retry waits a second; not a millisecond less.
    assert_eq!(
        round_at(&s, t0, 20 * MIN + 999).await,
        Some(t0 + 20 * MIN + 1_000)
    );
    assert_eq!(steps(&audit, &id).await, refused);
    round_at(&s, t0, 20 * MIN + 1_000).await;
    let retried = next_page(&mut pages).await;
    assert!(retried.signed);
    assert_eq!(retried.body["openFor"], 20 * MIN + 1_000);
    let mut taken = refused.clone();
    taken.push(("webhook_sent".into(), Some(4)));
    timeline_reaches(&audit, &id, &taken).await;
    audit.close().await;
    s.stop().await;
}

/// Another node's engine telling reminder 1 of notification `first` (its body as the
/// socket first got it), through this server's broker.
async fn tell_reminder(s: &TestServer, user: &str, first: &Value) {
    let mut again = first.clone();
    again["reminder"] = json!(1);
    let message = Message::Event {
        name: "critical_notification".into(),
        data: Some(again),
    };
    s.hub.broker().deliver(&Target::user(user), &message).await;
}

/// The next `critical_notification` `c` gets is `id` as first delivered
/// (no reminder before it).
async fn next_is(c: &mut EioClient, id: &str) {
    let next = c.expect_event("critical_notification").await;
    assert_eq!((&next["id"], &next["reminder"]), (&json!(id), &Value::Null));
}

#[tokio::test]
async fn a_reminder_told_after_the_acknowledgement_stops_at_the_socket() {
    let (url, _pages) = pager(0).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), |f| policy(f, &url)).await;
    let mut doctor = connect(&s, "doctor", "radiologist").await;
    let (id, t0) = send(&s, "doctor").await;
    let first = doctor.expect_event("critical_notification").await;

    // The partition run's history: the engine committed the reminder
    // step, then the acknowledgement closed the notification and was
    // answered, then the engine told the sockets.
    s.clock.advance(t0 + 5 * MIN - s.clock.now_ms());
    let answer = doctor
        .call(
            "acknowledge_notification",
            Some(json!({ "notificationId": id })),
        )
        .await;
    assert_eq!(answer["ok"], true);
    tell_reminder(&s, "doctor", &first).await;

    let (later, _) = send(&s, "doctor").await;
    next_is(&mut doctor, &later).await;
    s.stop().await;
}

#[tokio::test]
async fn a_step_taken_over_after_its_telling_is_told_once() {
    let (url, _pages) = pager(0).await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), |f| policy(f, &url)).await;
    let audit = store(dir.path()).await;
    let mut doctor = connect(&s, "doctor", "radiologist").await;
    let (id, t0) = send(&s, "doctor").await;
    let first = doctor.expect_event("critical_notification").await;

    assert_eq!(round_at(&s, t0, 5 * MIN).await, Some(t0 + 10 * MIN));
    let reminder = doctor.expect_event("critical_notification").await;
    assert_eq!(reminder["reminder"], 1);

    // The step's first node could not record it done (cut from the
    // store, or paused past its lease); node-a takes it over, finds it
    // fired and tells the sockets again: the socket heard it already.
    tell_reminder(&s, "doctor", &first).await;
    assert_eq!(steps(&audit, &id).await, kinds(&[("reminded", 1)]));
    let (later, _) = send(&s, "doctor").await;
    next_is(&mut doctor, &later).await;
    audit.close().await;
    s.stop().await;
}
