//! Herald's Prometheus metrics: the process-wide recorder with its
//! histogram buckets, and one function per thing measured, so that each
//! name and label set is written once and every label takes values from a
//! fixed set (an event name chosen by an API caller is `custom`, not itself).
//!
//! The names are listed in [`NAMES`]; `docs/operations.md` explains each and
//! a test holds the Grafana dashboard to that list.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::clock::Millis;

/// Every metric Herald exports, as Prometheus shows it (a histogram's
/// `_bucket`, `_sum` and `_count` series share its name).
pub const NAMES: &[&str] = &[
    "herald_build_info",
    "herald_connected_sockets",
    "herald_connected_users",
    "herald_active_sessions",
    "herald_notifications_pending",
    "herald_connections_accepted_total",
    "herald_auth_refused_total",
    "herald_origin_refused_total",
    "herald_disconnects_total",
    "herald_client_events_total",
    "herald_server_events_total",
    "herald_notifications_total",
    "herald_notification_recipients_total",
    "herald_deliveries_total",
    "herald_acknowledgements_total",
    "herald_notification_delivery_seconds",
    "herald_notification_acknowledge_seconds",
    "herald_http_requests_total",
    "herald_http_request_duration_seconds",
    "herald_api_unauthorized_total",
    "herald_api_rate_limited_total",
    "herald_session_warnings_total",
    "herald_session_expiries_total",
    "herald_audit_events_total",
    "herald_store_operation_seconds",
    "herald_store_errors_total",
    "herald_store_batch_size",
    "herald_store_marks_dropped_total",
    "herald_redis_command_seconds",
    "herald_redis_errors_total",
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

/// A socket left, for one of socketioxide's reasons (a fixed set).
pub fn disconnected(reason: &'static str) {
    counter!("herald_disconnects_total", "reason" => reason).increment(1);
}

/// A client event handled: `event` is one of the four names or `other`,
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
    let label = crate::hub::RESERVED_EVENTS
        .into_iter()
        .find(|e| *e == name)
        .unwrap_or("custom");
    counter!("herald_server_events_total", "event" => label).increment(sockets as u64);
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

    #[test]
    fn names_follow_prometheus_conventions() {
        for name in NAMES {
            assert!(name.starts_with("herald_"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                "{name}"
            );
        }
        let mut sorted = NAMES.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), NAMES.len(), "a name is listed twice");
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
                .find_map(|s| name.strip_suffix(s).filter(|b| NAMES.contains(b)))
                .map_or(name.clone(), str::to_string);
            found.insert(base);
        }
        found
    }

    fn unknown(found: BTreeSet<String>) -> Vec<String> {
        found
            .into_iter()
            .filter(|n| !NAMES.contains(&n.as_str()))
            .collect()
    }

    #[test]
    fn the_grafana_dashboard_queries_only_metrics_herald_exports() {
        let text = include_str!("../docs/grafana/herald.json");
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
