//! The operators' dashboard: the page at `/admin`, and its JSON routes
//! under `/admin/api` behind the admin key. Its actions are the backend
//! API's own handlers (the same checks, answers and audit records), with
//! `admin` as the recorded reason or cause.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::admin_gate::AdminGate;
use super::assets;
use super::overview::{overview, with_now, SharedPicture};
use super::shown;
use super::stream::stream;
use crate::api::{notifications, reports, timeline, users, views, ApiError, PathIds, MAX_BODY};
use crate::http::guard::Guard;
use crate::http::routes::{self, Endpoint};
use crate::hub::Hub;

/// The dashboard's JSON routes, documented in the OpenAPI document with
/// the backend API's.
pub fn endpoints() -> Vec<Endpoint<Arc<Hub>>> {
    vec![
        Endpoint::get("/admin/api/overview", picture),
        Endpoint::get("/admin/api/stream", stream),
        Endpoint::get("/admin/api/notifications/{id}", timeline),
        Endpoint::get("/admin/api/notifications/{id}/timeline", timeline::get),
        Endpoint::get(
            "/admin/api/reports/acknowledgement",
            reports::acknowledgement,
        ),
        Endpoint::post(
            "/admin/api/users/{user_id}/notifications",
            notifications::send_to_user,
        ),
        Endpoint::delete("/admin/api/users/{user_id}/connections", users::disconnect),
        Endpoint::delete("/admin/api/sessions/{session_id}", expire_session),
    ]
}

pub fn router(hub: Arc<Hub>) -> Router {
    let api = routes::router("/admin/api", endpoints())
        .layer(Extension(Arc::new(SharedPicture::new(hub.clone()))))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(hub.clone());
    let gate = AdminGate::new(hub);
    let guarded = Guard::new(api, move |req: &axum::extract::Request| gate.refusal(req));
    Router::new()
        .route("/admin", get(|| async { assets::ADMIN_HTML }))
        .route("/admin/", get(|| async { assets::ADMIN_HTML }))
        .route("/admin/admin.js", get(|| async { assets::ADMIN_JS }))
        .route("/admin/herald.css", get(|| async { assets::STYLE }))
        .nest_service("/admin/api", guarded)
}

async fn picture(State(hub): State<Arc<Hub>>) -> Json<Value> {
    Json(with_now(overview(&hub).await, hub.now()))
}

/// What the store knows of one notification's life: created, and for each
/// recipient delivered and acknowledged. Of the body only its kind,
/// severity and title, cut when long, as in the overview.
async fn timeline(
    State(hub): State<Arc<Hub>>,
    PathIds(id): PathIds<String>,
) -> Result<Json<Value>, ApiError> {
    let (n, recipients) = hub
        .notification(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("notification {id} not found")))?;
    let recipients: Vec<Value> = recipients.iter().map(views::recipient).collect();
    Ok(Json(json!({
        "id": n.id,
        "type": shown::field(n.body(), "type"),
        "severity": shown::field(n.body(), "severity"),
        "title": shown::field(n.body(), "title"),
        "createdAt": views::time(Some(n.created_at)),
        "recipients": recipients,
    })))
}

/// Expires a session everywhere, as the backend's logout does; the audit
/// log records `admin` as the cause.
async fn expire_session(
    State(hub): State<Arc<Hub>>,
    PathIds(session): PathIds<String>,
) -> Result<Json<Value>, ApiError> {
    let reach = hub.logout_session(&session, "admin").await?;
    Ok(Json(views::reach("disconnected", &reach)))
}
