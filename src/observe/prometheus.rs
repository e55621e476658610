//! Herald's Prometheus metrics: the catalogue of every name with its help
//! text ([`METRICS`]), the process-wide recorder with its histogram
//! buckets, and one function per thing measured, so that each name and
//! label set is written here once and every label takes values from a
//! fixed set (an event name chosen by an API caller is `custom`, not itself).
//! No other module names a metric: they call these functions.
//!
//! `docs/operations.md` explains each metric; a test holds the recorded
//! names and the Grafana dashboard to [`METRICS`].

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::clock::Millis;

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

use Kind::{Counter, Gauge, Histogram};

/// Every metric Herald exports, as Prometheus shows it (a histogram's
/// `_bucket`, `_sum` and `_count` series share its name), with its kind and
/// the `# HELP` text a scrape shows.
pub const METRICS: &[(&str, Kind, &str)] = &[
    (
        "herald_build_info",
        Gauge,
        "Always 1; the label is the running version.",
    ),
    (
        "herald_connected_sockets",
        Gauge,
        "Authenticated sockets on this node, by transport.",
    ),
    (
        "herald_connected_users",
        Gauge,
        "Distinct users with a socket on this node.",
    ),
    (
        "herald_active_sessions",
        Gauge,
        "Live sessions with a running idle clock.",
    ),
    (
        "herald_notifications_pending",
        Gauge,
        "Recipients who have not acknowledged their notification yet (store-wide).",
    ),
    (
        "herald_connections_accepted_total",
        Counter,
        "Sockets that authenticated and connected.",
    ),
    (
        "herald_escalation_steps_total",
        Counter,
        "Escalation steps this node fired, by action (renotify, to_role, to_users, webhook).",
    ),
    (
        "herald_escalation_webhooks_total",
        Counter,
        "Escalation webhook attempts, by result (sent or failed).",
    ),
    (
        "herald_audit_checkpoints_total",
        Counter,
        "Signed checkpoints of the audit chain's head, by result (made, or failed: the store could not be read).",
    ),
    (
        "herald_audit_checkpoint_witness_total",
        Counter,
        "Checkpoints handed to an outside witness, by witness (file, webhook) and result (sent, failed: retried or lost, dropped: too many waiting).",
    ),
    (
        "herald_notifications_closed_total",
        Counter,
        "Notifications closed by their first acknowledgement.",
    ),
    (
        "herald_auth_refused_total",
        Counter,
        "Refused connections, by reason.",
    ),
    (
        "herald_origin_refused_total",
        Counter,
        "Socket.IO requests refused for their Origin.",
    ),
    (
        "herald_disconnects_total",
        Counter,
        "Sockets that left, by reason.",
    ),
    (
        "herald_client_events_total",
        Counter,
        "Client events handled, by event and result.",
    ),
    (
        "herald_server_events_total",
        Counter,
        "Events handed to sockets, one per socket, by event (custom: named by an API caller).",
    ),
    (
        "herald_notifications_total",
        Counter,
        "Accepted send and broadcast calls.",
    ),
    (
        "herald_notification_recipients_total",
        Counter,
        "New notification recipients stored.",
    ),
    (
        "herald_deliveries_total",
        Counter,
        "Messages handed to sockets, by kind (live, catch_up, event).",
    ),
    (
        "herald_acknowledgements_total",
        Counter,
        "First acknowledgements per recipient.",
    ),
    (
        "herald_notification_delivery_seconds",
        Histogram,
        "From a notification's creation to its first hand-over to one of the recipient's sockets.",
    ),
    (
        "herald_notification_acknowledge_seconds",
        Histogram,
        "From a notification's creation to the recipient's first acknowledgement.",
    ),
    (
        "herald_http_requests_total",
        Counter,
        "HTTP requests other than Socket.IO, by method, route template and status.",
    ),
    (
        "herald_http_request_duration_seconds",
        Histogram,
        "HTTP request latency, by method and route template.",
    ),
    (
        "herald_api_unauthorized_total",
        Counter,
        "API requests refused with 401.",
    ),
    (
        "herald_api_rate_limited_total",
        Counter,
        "API requests refused with 429.",
    ),
    (
        "herald_session_warnings_total",
        Counter,
        "Session timeout warnings sent.",
    ),
    (
        "herald_session_expiries_total",
        Counter,
        "Sessions expired, by cause.",
    ),
    (
        "herald_audit_events_total",
        Counter,
        "Audit events, by event.",
    ),
    (
        "herald_store_operation_seconds",
        Histogram,
        "Store call latency, by operation.",
    ),
    (
        "herald_store_errors_total",
        Counter,
        "Store calls that failed, by operation.",
    ),
    (
        "herald_store_batch_size",
        Histogram,
        "SQLite writes per group commit.",
    ),
    (
        "herald_log_lines_dropped_total",
        Counter,
        "Log lines dropped because the log output refused them (a full disk); the requests that logged them were answered.",
    ),
    (
        "herald_store_marks_dropped_total",
        Counter,
        "Delivery marks dropped (the notification then reads pending).",
    ),
    (
        "herald_store_marks_spilled_total",
        Counter,
        "SQLite delivery marks that found the writer's queue full and joined its next batch.",
    ),
    (
        "herald_store_saturated_total",
        Counter,
        "PostgreSQL store calls refused at once because their queue was full (answered 503).",
    ),
    (
        "herald_store_ready",
        Gauge,
        "1 when the last readiness probe committed a write, else 0.",
    ),
    (
        "herald_connections_refused_total",
        Counter,
        "New TCP connections past limits.max_connections, by reason.",
    ),
    (
        "herald_slow_consumers_dropped_total",
        Counter,
        "Sockets dropped because their waiting notifications passed socket.max_queued_bytes.",
    ),
    (
        "herald_deliveries_queued_total",
        Counter,
        "Live notifications that met a full send buffer and waited in the socket's backlog.",
    ),
    (
        "herald_admin_unauthorized_total",
        Counter,
        "Dashboard API requests refused with 401 (a wrong or missing admin key).",
    ),
    (
        "herald_redis_command_seconds",
        Histogram,
        "Redis call latency (cluster mode).",
    ),
    (
        "herald_redis_errors_total",
        Counter,
        "Redis calls that failed or timed out (cluster mode).",
    ),
];

/// Machine latencies: the API, the store, Redis (half a millisecond to 10 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// From a notification's creation to its first hand-over: milliseconds
/// when the user is connected, up to hours when the catch-up brings it.
const DELIVERY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
    86400.0,
];

/// From a notification's creation to a person's acknowledgement.
const ACKNOWLEDGE_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 86400.0,
];

/// Writes per group commit (the writer takes at most 512).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process-wide recorder, installed on first use (every server in the
/// process shares it, as tests run several).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            (
                Matcher::Suffix("_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            ),
            (
                Matcher::Suffix("_operation_seconds".into()),
                LATENCY_BUCKETS,
            ),
            (Matcher::Suffix("_command_seconds".into()), LATENCY_BUCKETS),
            (
                Matcher::Full("herald_notification_delivery_seconds".into()),
                DELIVERY_BUCKETS,
            ),
            (
                Matcher::Full("herald_notification_acknowledge_seconds".into()),
                ACKNOWLEDGE_BUCKETS,
            ),
            (
                Matcher::Full("herald_store_batch_size".into()),
                BATCH_BUCKETS,
            ),
        ];
        let builder = buckets
            .into_iter()
            .fold(PrometheusBuilder::new(), |b, (m, v)| {
                b.set_buckets_for_metric(m, v)
                    .expect("bucket lists are not empty")
            });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        for (name, kind, help) in METRICS {
            match kind {
                Counter => metrics::describe_counter!(*name, *help),
                Gauge => metrics::describe_gauge!(*name, *help),
                Histogram => metrics::describe_histogram!(*name, *help),
            }
        }
        gauge!("herald_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

/// What a scrape reads from the node's state rather than from counters.
pub struct Snapshot {
    pub websocket: usize,
    pub polling: usize,
    pub users: usize,
    pub active_sessions: usize,
    /// Unacknowledged recipients in the store; `None` when it did not answer.
    pub pending: Option<u64>,
}

/// The Prometheus text for a scrape.
pub fn render(now: Snapshot) -> String {
    let h = handle();
    gauge!("herald_connected_sockets", "transport" => "websocket").set(now.websocket as f64);
    gauge!("herald_connected_sockets", "transport" => "polling").set(now.polling as f64);
    gauge!("herald_connected_users").set(now.users as f64);
    gauge!("herald_active_sessions").set(now.active_sessions as f64);
    if let Some(n) = now.pending {
        gauge!("herald_notifications_pending").set(n as f64);
    }
    h.render()
}

fn seconds_between(from: Millis, to: Millis) -> f64 {
    (to - from).max(0) as f64 / 1000.0
}

pub fn connection_accepted() {
    counter!("herald_connections_accepted_total").increment(1);
}

/// A connect was refused: `reason` is one of the auth refusal reasons.
#[inline]
pub fn auth_refused(reason: &'static str) {
    counter!("herald_auth_refused_total", "reason" => reason).increment(1);
}

/// An event of the security log (`audit.rs`), by its fixed name.
#[inline]
pub fn audit_event(event: &'static str) {
    counter!("herald_audit_events_total", "event" => event).increment(1);
}

/// A Socket.IO request was refused for its `Origin`.
#[inline]
pub fn origin_refused() {
    counter!("herald_origin_refused_total").increment(1);
}

/// A new TCP connection past `limits.max_connections`: `reason` is
/// `max_connections` (closed) or `health_only` (kept for health checks).
#[inline]
pub fn connection_refused(reason: &'static str) {
    counter!("herald_connections_refused_total", "reason" => reason).increment(1);
}

/// A socket left, for one of socketioxide's reasons (a fixed set).
pub fn disconnected(reason: &'static str) {
    counter!("herald_disconnects_total", "reason" => reason).increment(1);
}

/// A client event handled: `event` is one of the client events' names or `other`,
/// `result` is `ok` or an error code.
pub fn client_event(event: &'static str, result: &'static str) {
    counter!("herald_client_events_total", "event" => event, "result" => result).increment(1);
}

/// `sockets` sockets were handed the event `name`.
pub fn server_event(name: &str, sockets: usize) {
    if sockets == 0 {
        return;
    }
    // Herald's own events are reserved names; any other name came from an
    // API caller.
    let label = crate::protocol::RESERVED_EVENTS
        .into_iter()
        .find(|e| *e == name)
        .unwrap_or("custom");
    counter!("herald_server_events_total", "event" => label).increment(sockets as u64);
}

/// This node fired an escalation step of this action.
pub fn escalation_step(action: &'static str) {
    counter!("herald_escalation_steps_total", "action" => action).increment(1);
}

/// One webhook attempt ended.
pub fn webhook_attempt(sent: bool) {
    let result = if sent { "sent" } else { "failed" };
    counter!("herald_escalation_webhooks_total", "result" => result).increment(1);
}

/// A checkpoint was made (or the head could not be read).
pub fn audit_checkpoint(made: bool) {
    let result = if made { "made" } else { "failed" };
    counter!("herald_audit_checkpoints_total", "result" => result).increment(1);
}

/// A checkpoint reached a witness (`sent`), did not (`failed`), or was
/// given up (`dropped`).
pub fn checkpoint_witness(witness: &'static str, result: &'static str) {
    counter!("herald_audit_checkpoint_witness_total", "witness" => witness, "result" => result)
        .increment(1);
}

/// A notification was closed.
pub fn notification_closed() {
    counter!("herald_notifications_closed_total").increment(1);
}

/// An accepted send or broadcast that stored `new_recipients` new ones.
pub fn notification_accepted(new_recipients: usize) {
    counter!("herald_notifications_total").increment(1);
    counter!("herald_notification_recipients_total").increment(new_recipients as u64);
}

/// `sockets` sockets took a notification (`kind`: `live` or `catch_up`).
pub fn delivered(kind: &'static str, sockets: usize) {
    counter!("herald_deliveries_total", "kind" => kind).increment(sockets as u64);
}

/// `sockets` sockets took a plain event.
pub fn event_delivered(sockets: usize) {
    delivered("event", sockets);
}

/// A live notification met a full send buffer and joined the socket's
/// backlog.
#[inline]
pub fn delivery_queued() {
    counter!("herald_deliveries_queued_total").increment(1);
}

/// A socket was dropped because its waiting notifications passed
/// `socket.max_queued_bytes`.
#[inline]
pub fn slow_consumer_dropped() {
    counter!("herald_slow_consumers_dropped_total").increment(1);
}

/// A recipient's first hand-over of a notification created at `created`.
pub fn first_delivery(created: Millis, now: Millis) {
    histogram!("herald_notification_delivery_seconds").record(seconds_between(created, now));
}

/// A recipient's first acknowledgement of a notification created at `created`.
pub fn acknowledged(created: Millis, at: Millis) {
    counter!("herald_acknowledgements_total").increment(1);
    histogram!("herald_notification_acknowledge_seconds").record(seconds_between(created, at));
}

/// An HTTP request answered (not Socket.IO): `route` is a route template
/// or `unmatched`.
pub fn http_request(method: &'static str, route: &'static str, status: u16, took: Duration) {
    counter!("herald_http_requests_total", "method" => method, "route" => route, "status" => status.to_string())
        .increment(1);
    histogram!("herald_http_request_duration_seconds", "method" => method, "route" => route)
        .record(took.as_secs_f64());
}

/// An API request refused with `401`.
#[inline]
pub fn api_unauthorized() {
    counter!("herald_api_unauthorized_total").increment(1);
}

/// An API request refused with `429`.
#[inline]
pub fn api_rate_limited() {
    counter!("herald_api_rate_limited_total").increment(1);
}

/// A dashboard API request refused with `401`.
#[inline]
pub fn admin_unauthorized() {
    counter!("herald_admin_unauthorized_total").increment(1);
}

pub fn session_warned() {
    counter!("herald_session_warnings_total").increment(1);
}

/// A session expired: `cause` is `idle_timeout`, `api`, `logout` or `other`.
pub fn session_expired(cause: &str) {
    let cause = ["idle_timeout", "api", "logout"]
        .into_iter()
        .find(|c| *c == cause)
        .unwrap_or("other");
    counter!("herald_session_expiries_total", "cause" => cause).increment(1);
}

/// A readiness probe ended: `ready` when it committed a write.
#[inline]
pub fn store_ready(ready: bool) {
    gauge!("herald_store_ready").set(if ready { 1.0 } else { 0.0 });
}

/// The SQLite writer committed a group of `writes`.
#[inline]
pub fn store_batch(writes: usize) {
    histogram!("herald_store_batch_size").record(writes as f64);
}

/// A delivery mark or audit record found the writer's queue full and
/// waits for its next batch.
#[inline]
pub fn marks_spilled() {
    counter!("herald_store_marks_spilled_total").increment(1);
}

/// A store call found its kind's queue full and was refused at once.
#[inline]
pub fn store_saturated() {
    counter!("herald_store_saturated_total").increment(1);
}

/// `count` delivery marks or audit records were dropped.
#[inline]
pub fn marks_dropped(count: u64) {
    counter!("herald_store_marks_dropped_total").increment(count);
}

/// A log line was dropped: its output refused it.
pub fn log_line_dropped() {
    counter!("herald_log_lines_dropped_total").increment(1);
}

/// A store call took `took`, and failed when `failed`.
pub fn store_call(operation: &'static str, took: Duration, failed: bool) {
    histogram!("herald_store_operation_seconds", "operation" => operation)
        .record(took.as_secs_f64());
    if failed {
        counter!("herald_store_errors_total", "operation" => operation).increment(1);
    }
}

/// A Redis call took `took`, and failed when `failed`.
pub fn redis_call(took: Duration, failed: bool) {
    histogram!("herald_redis_command_seconds").record(took.as_secs_f64());
    if failed {
        counter!("herald_redis_errors_total").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn is_listed(name: &str) -> bool {
        METRICS.iter().any(|(n, _, _)| *n == name)
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        for (name, kind, help) in METRICS {
            assert!(name.starts_with("herald_"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                "{name}"
            );
            assert_eq!(
                name.ends_with("_total"),
                *kind == Counter,
                "{name}: _total is for counters"
            );
            if name.contains("duration") || name.contains("latency") || name.ends_with("_seconds") {
                assert!(
                    name.ends_with("_seconds") && *kind == Histogram,
                    "{name}: durations are _seconds histograms"
                );
            }
            assert!(help.ends_with('.'), "{name}: help is a sentence");
        }
        let mut sorted: Vec<_> = METRICS.iter().map(|m| m.0).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), METRICS.len(), "a name is listed twice");
    }

    #[test]
    fn a_scrape_describes_what_it_shows() {
        let h = handle();
        acknowledged(1_000, 61_000);
        let text = h.render();
        assert!(
            text.contains(
                "# HELP herald_notification_acknowledge_seconds From a notification's creation"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE herald_notification_acknowledge_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("herald_notification_acknowledge_seconds_bucket{le=\"60\"}"),
            "{text}"
        );
    }

    #[test]
    fn event_names_from_callers_share_one_label() {
        // The recorder is process-wide (installed by the first `handle`);
        // this test reads only its own series.
        let h = handle();
        server_event("session_extended", 2);
        server_event("study_ready_for_test", 3);
        server_event("another_callers_name", 0);
        let text = h.render();
        assert!(
            text.contains("herald_server_events_total{event=\"custom\"}"),
            "{text}"
        );
        assert!(!text.contains("study_ready_for_test"));
        assert!(!text.contains("another_callers_name"));
    }

    /// Every `herald_...` name in `text`, a histogram's series
    /// (`_bucket`, `_sum`, `_count`) under the histogram's name.
    fn names_in(text: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut rest = text;
        while let Some(at) = rest.find("herald_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| is_listed(b)))
                .map_or(name.clone(), str::to_string);
            found.insert(base);
        }
        found
    }

    fn unknown(found: BTreeSet<String>) -> Vec<String> {
        found.into_iter().filter(|n| !is_listed(n)).collect()
    }

    #[test]
    fn the_grafana_dashboard_queries_only_metrics_herald_exports() {
        let text = include_str!("../../docs/grafana/herald.json");
        let dashboard: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut exprs = String::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                exprs.push_str(target["expr"].as_str().unwrap());
                exprs.push('\n');
            }
        }
        let queried = names_in(&exprs);
        assert!(queried.len() > 20, "{queried:?}");
        assert_eq!(unknown(queried), Vec::<String>::new());
        assert_eq!(
            unknown(names_in(text)),
            Vec::<String>::new(),
            "variables too"
        );
    }

    #[test]
    fn every_metric_recorded_in_the_source_is_listed() {
        let mut found = BTreeSet::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for macro_call in ["counter!(\"", "gauge!(\"", "histogram!(\""] {
                        for (at, _) in text.match_indices(macro_call) {
                            let start = at + macro_call.len();
                            let name = text[start..].split('"').next().unwrap_or_default();
                            found.extend(names_in(name));
                        }
                    }
                }
            }
        }
        assert!(found.contains("herald_store_batch_size"), "{found:?}");
        assert_eq!(unknown(found), Vec::<String>::new());
    }

    #[test]
    fn durations_are_seconds_and_never_negative() {
        assert_eq!(seconds_between(1_000, 3_500), 2.5);
        assert_eq!(seconds_between(5_000, 4_000), 0.0, "a clock step back");
    }
}
