//! The backend HTTP API under `/api/v1`: a thin translation of HTTP into Hub
//! calls, behind API-key authentication.

mod audit_export;
mod auth;
mod budget;
mod depth;
mod error;
mod events;
mod files;
// The operators' dashboard serves some of these handlers too, behind its own key.
pub(crate) mod notifications;
mod path_ids;
mod period;
mod presence;
pub(crate) mod reports;
mod rooms;
mod sessions;
pub(crate) mod timeline;
mod upload;
mod user_budget;
pub(crate) mod users;
pub(crate) mod views;

use std::sync::Arc;

use axum::extract::Request;
use axum::Router;

pub use auth::{key_index, presented, refuse};
pub use error::{path_id, ApiError, Body, MAX_BODY};
pub use path_ids::PathIds;

use crate::http::guard::Guard;
use crate::http::routes::{self, Endpoint};
use crate::hub::Hub;

pub use crate::http::routes::API_PREFIX as PREFIX;

/// Every authenticated endpoint under `/api/v1` (the OpenAPI document is
/// public and listed by the ops module).
pub fn endpoints() -> Vec<Endpoint<Arc<Hub>>> {
    vec![
        Endpoint::get("/api/v1/users", users::list),
        Endpoint::get("/api/v1/users/{user_id}", users::get),
        Endpoint::get("/api/v1/users/{user_id}/sessions", users::sessions),
        Endpoint::delete("/api/v1/users/{user_id}/connections", users::disconnect),
        Endpoint::post(
            "/api/v1/users/{user_id}/session-warning",
            users::session_warning,
        ),
        Endpoint::post(
            "/api/v1/users/{user_id}/session-expired",
            users::session_expired,
        ),
        Endpoint::post(
            "/api/v1/users/{user_id}/notifications",
            notifications::send_to_user,
        ),
        Endpoint::get(
            "/api/v1/users/{user_id}/notifications",
            notifications::list_for_user,
        ),
        Endpoint::get(
            "/api/v1/users/{user_id}/notifications/{id}",
            notifications::get_for_user,
        ),
        Endpoint::post("/api/v1/users/{user_id}/events", events::to_user),
        Endpoint::post("/api/v1/users/{user_id}/files", files::to_user).unlimited_body(),
        Endpoint::post("/api/v1/notifications", notifications::broadcast),
        Endpoint::get("/api/v1/notifications/{id}", notifications::get),
        Endpoint::get("/api/v1/notifications/{id}/timeline", timeline::get),
        Endpoint::get("/api/v1/audit", audit_export::export),
        Endpoint::get("/api/v1/reports/acknowledgement", reports::acknowledgement),
        Endpoint::post("/api/v1/roles/{role}/events", events::to_role),
        Endpoint::post("/api/v1/events", events::to_all),
        Endpoint::get("/api/v1/sessions/{session_id}", sessions::get),
        Endpoint::delete("/api/v1/sessions/{session_id}", sessions::logout),
        Endpoint::post("/api/v1/sessions/{session_id}/activity", sessions::activity),
        Endpoint::post("/api/v1/sessions/{session_id}/extend", sessions::extend),
        Endpoint::get("/api/v1/presence", presence::get),
        Endpoint::get("/api/v1/rooms/{room}", rooms::get),
        Endpoint::post("/api/v1/rooms/{room}/events", rooms::event),
        Endpoint::put("/api/v1/rooms/{room}/members/{user_id}", rooms::grant),
        Endpoint::delete("/api/v1/rooms/{room}/members/{user_id}", rooms::revoke),
    ]
}

/// The endpoints under `/api/v1` that a user's JWT opens instead of the
/// API key: sharing a file in a study room and downloading a file.
pub fn bearer_endpoints() -> Vec<Endpoint<Arc<Hub>>> {
    vec![
        Endpoint::post("/api/v1/rooms/{room}/files", files::to_room).unlimited_body(),
        Endpoint::get("/api/v1/files/{file_id}", files::download),
    ]
}

/// The authenticated `/api/v1` routes: the API key's behind its gate, and
/// the JWT's, which check their token and their user's budget themselves.
pub fn router(hub: Arc<Hub>) -> Router {
    let routes = routes::router(PREFIX, endpoints())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(hub.clone());
    // The key check wraps the API as one service (see `crate::http::guard`), so
    // an unknown path under /api/v1 also needs a key before its 404.
    let gate = auth::Gate::new(hub.clone());
    let guarded = Guard::new(routes, move |req: &Request| gate.refusal(req));
    let budget = user_budget::UserBudget::new(hub.config().files.rate_limit, hub.clock());
    routes::router("", bearer_endpoints())
        .layer(axum::Extension(budget))
        .with_state(hub)
        .nest_service(PREFIX, guarded)
}
