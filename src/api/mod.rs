//! The backend HTTP API under `/api/v1`: a thin translation of HTTP into Hub
//! calls, behind API-key authentication.

mod auth;
mod error;
mod events;
// The operators' dashboard serves some of these handlers too, behind its own key.
pub(crate) mod notifications;
mod presence;
mod sessions;
pub(crate) mod users;
pub(crate) mod views;

use std::sync::Arc;

use axum::extract::Request;
use axum::routing::{delete, get, post};
use axum::Router;

pub use auth::{key_index, presented, refuse};
pub use error::{path_id, ApiError, Body, MAX_BODY};

use crate::guard::Guard;
use crate::hub::Hub;

/// The authenticated `/api/v1` routes (the OpenAPI document is public and
/// mounted by the ops module).
pub fn router(hub: Arc<Hub>) -> Router {
    let routes = Router::new()
        .route("/users", get(users::list))
        .route("/users/{user_id}", get(users::get))
        .route("/users/{user_id}/sessions", get(users::sessions))
        .route("/users/{user_id}/connections", delete(users::disconnect))
        .route(
            "/users/{user_id}/session-warning",
            post(users::session_warning),
        )
        .route(
            "/users/{user_id}/session-expired",
            post(users::session_expired),
        )
        .route(
            "/users/{user_id}/notifications",
            post(notifications::send_to_user).get(notifications::list_for_user),
        )
        .route(
            "/users/{user_id}/notifications/{id}",
            get(notifications::get_for_user),
        )
        .route("/users/{user_id}/events", post(events::to_user))
        .route("/notifications", post(notifications::broadcast))
        .route("/notifications/{id}", get(notifications::get))
        .route("/roles/{role}/events", post(events::to_role))
        .route("/events", post(events::to_all))
        .route(
            "/sessions/{session_id}",
            get(sessions::get).delete(sessions::logout),
        )
        .route("/sessions/{session_id}/activity", post(sessions::activity))
        .route("/sessions/{session_id}/extend", post(sessions::extend))
        .route("/presence", get(presence::get))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(hub.clone());
    // The key check wraps the API as one service (see `crate::guard`), so
    // an unknown path under /api/v1 also needs a key before its 404.
    let gate = auth::Gate::new(hub);
    let guarded = Guard::new(routes, move |req: &Request| gate.refusal(req));
    Router::new().nest_service("/api/v1", guarded)
}
