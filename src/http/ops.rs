//! Operations endpoints without an API key: liveness, readiness, Prometheus
//! metrics and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Json, Router};
use serde_json::json;

use crate::http::routes::{self, Endpoint};
use crate::hub::Hub;
use crate::observe::prometheus;

const OPENAPI: &str = include_str!("../../docs/openapi.json");

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
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus::render(hub.metrics_snapshot().await),
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// The ops endpoints, served without an API key.
pub fn endpoints() -> Vec<Endpoint<Arc<Hub>>> {
    vec![
        Endpoint::get("/healthz", healthz),
        Endpoint::get("/readyz", readyz),
        Endpoint::get("/metrics", metrics_text),
        Endpoint::get("/api/v1/openapi.json", openapi),
    ]
}

pub fn router(hub: Arc<Hub>) -> Router {
    routes::router("", endpoints()).with_state(hub)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// `METHOD /path/{}`: a route with its parameter names left out (the
    /// router says `{user_id}` where the document says `{userId}`).
    fn normalized(method: &str, path: &str) -> String {
        let mut out = format!("{} ", method.to_ascii_uppercase());
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '{' => {
                    in_param = true;
                    out.push_str("{}");
                }
                '}' => in_param = false,
                _ if in_param => {}
                c => out.push(c),
            }
        }
        out
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_served_routes() {
        let served: BTreeSet<String> = crate::http::routes::listed(&crate::api::endpoints())
            .into_iter()
            .chain(crate::http::routes::listed(&super::endpoints()))
            .chain(crate::http::routes::listed(&crate::api::bearer_endpoints()))
            .chain(crate::http::routes::listed(&crate::web::admin::endpoints()))
            .map(|(method, path)| normalized(method.as_str(), path))
            .collect();
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let methods = ["get", "put", "post", "delete", "patch", "head", "options"];
        let documented: BTreeSet<String> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                let item = item.as_object().unwrap();
                item.keys()
                    .filter(|k| methods.contains(&k.as_str()))
                    .map(|m| normalized(m, path))
                    .collect::<Vec<_>>()
            })
            .collect();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && unserved.is_empty(),
            "served but not in docs/openapi.json: {undocumented:?}; documented but not served: {unserved:?}"
        );
        assert!(served.contains("GET /api/v1/users/{}/notifications/{}"));
    }

    #[test]
    fn parameter_names_do_not_matter_but_their_places_do() {
        assert_eq!(
            normalized("get", "/a/{userId}/b"),
            normalized("GET", "/a/{user_id}/b")
        );
        assert_ne!(normalized("get", "/a/{x}"), normalized("get", "/a/x"));
        assert_ne!(normalized("get", "/a"), normalized("post", "/a"));
    }
}
