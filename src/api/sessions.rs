//! Session routes: read a session, record activity the backend saw, extend
//! it, or log it out everywhere.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::path_ids::PathIds;
use super::views;
use crate::clock::rfc3339;
use crate::hub::Hub;

pub async fn get(
    State(hub): State<Arc<Hub>>,
    PathIds(session): PathIds<String>,
) -> Result<Json<Value>, ApiError> {
    let view = hub
        .session_view(&session)
        .await
        .ok_or_else(|| ApiError::not_found(format!("session {session} not found")))?;
    let s = &view.snapshot;
    let sockets: Vec<Value> = view.sockets.iter().map(views::connection).collect();
    let mut answer = json!({
        "sessionId": s.session_id,
        "userId": s.user_id,
        "role": s.role,
        "lastActivity": rfc3339(s.last_activity),
        "expiresAt": rfc3339(s.expires_at),
        "warned": s.warned,
        "sockets": sockets,
    });
    views::mark_partial(&mut answer, view.partial);
    Ok(Json(answer))
}

pub async fn activity(
    State(hub): State<Arc<Hub>>,
    PathIds(session): PathIds<String>,
) -> Result<Json<Value>, ApiError> {
    let at = hub.session_activity(&session).await?;
    Ok(Json(
        json!({ "sessionId": session, "lastActivity": rfc3339(at) }),
    ))
}

pub async fn extend(
    State(hub): State<Arc<Hub>>,
    PathIds(session): PathIds<String>,
) -> Result<Json<Value>, ApiError> {
    let at = hub.extend_session(&session).await?;
    Ok(Json(
        json!({ "sessionId": session, "extendedAt": rfc3339(at) }),
    ))
}

pub async fn logout(
    State(hub): State<Arc<Hub>>,
    PathIds(session): PathIds<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let reach = hub.logout_session(&session, "logout").await?;
    let mut answer = json!({ "sessionId": session, "disconnected": reach.total() });
    views::mark_partial(&mut answer, reach.partial);
    Ok((StatusCode::OK, Json(answer)))
}
