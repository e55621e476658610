//! Operations endpoints without an API key: liveness, readiness, Prometheus
//! metrics and the OpenAPI document.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::hub::Hub;

const OPENAPI: &str = include_str!("../docs/openapi.json");

/// The process-wide metrics recorder (installed once, shared by every server in the process).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 while the store reads and commits a write; in a cluster a Redis outage is reported
/// in the body with 200, because the node still serves its own sockets.
async fn readyz(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    let r = hub.readiness().await;
    let mut body = if r.store {
        json!({ "status": "ready", "store": "ok" })
    } else {
        json!({ "status": "unavailable", "store": "unavailable" })
    };
    if let Some(up) = r.redis {
        body["redis"] = json!(if up { "ok" } else { "degraded" });
        body["node"] = json!(hub.node_id());
    }
    let status = if r.store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn metrics_text(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    metrics::gauge!("herald_connected_sockets").set(hub.local_sockets() as f64);
    metrics::gauge!("herald_active_sessions").set(hub.active_sessions().await as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/openapi.json", get(openapi))
        .with_state(hub)
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_document_is_json_and_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/api/v1/users/{userId}/notifications",
            "/api/v1/notifications",
            "/api/v1/notifications/{id}",
            "/api/v1/users/{userId}/notifications/{id}",
            "/api/v1/roles/{role}/events",
            "/api/v1/users/{userId}/events",
            "/api/v1/events",
            "/api/v1/users/{userId}/session-warning",
            "/api/v1/users/{userId}/session-expired",
            "/api/v1/users/{userId}/connections",
            "/api/v1/users",
            "/api/v1/users/{userId}",
            "/api/v1/users/{userId}/sessions",
            "/api/v1/sessions/{sessionId}",
            "/api/v1/sessions/{sessionId}/activity",
            "/api/v1/sessions/{sessionId}/extend",
            "/api/v1/presence",
        ] {
            assert!(paths.contains_key(p), "missing {p}");
        }
    }
}
