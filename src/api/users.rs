//! User routes: who is connected, their sockets, disconnecting them, and the
//! backend-driven session warning and expiry.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{path_id, ApiError, Body, Params};
use super::path_ids::PathIds;
use super::views;
use crate::hub::Hub;

pub async fn list(State(hub): State<Arc<Hub>>) -> Json<Value> {
    let users = hub.connected_users().await;
    let mut answer = json!({ "count": users.value.len(), "users": users.value });
    views::mark_partial(&mut answer, users.partial);
    Json(answer)
}

pub async fn get(
    State(hub): State<Arc<Hub>>,
    PathIds(user): PathIds<String>,
) -> Result<Json<Value>, ApiError> {
    let n = hub.user_connections(&user).await;
    let mut answer = json!({ "userId": user, "connected": n.value > 0, "connections": n.value });
    views::mark_partial(&mut answer, n.partial);
    Ok(Json(answer))
}

pub async fn sessions(
    State(hub): State<Arc<Hub>>,
    PathIds(user): PathIds<String>,
) -> Result<Json<Value>, ApiError> {
    let listing = hub.user_sessions(&user).await;
    let sessions: Vec<Value> = listing.sockets.iter().map(views::connection).collect();
    let mut answer = json!({ "sessions": sessions });
    views::mark_partial(&mut answer, listing.partial);
    Ok(Json(answer))
}

#[derive(Deserialize)]
pub struct DisconnectQuery {
    reason: Option<String>,
}

pub async fn disconnect(
    State(hub): State<Arc<Hub>>,
    PathIds(user): PathIds<String>,
    Params(q): Params<DisconnectQuery>,
) -> Result<Json<Value>, ApiError> {
    let reason: String = q
        .reason
        .unwrap_or_else(|| "api".into())
        .chars()
        .take(200)
        .collect();
    let reach = hub.disconnect_user(&user, &reason).await;
    Ok(Json(views::reach("disconnected", &reach)))
}

/// A session id in a body: a string, or an integer made a string.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum SessionId {
    Text(String),
    Number(u64),
}

impl SessionId {
    fn into_string(self) -> String {
        match self {
            Self::Text(s) => s,
            Self::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Warning {
    session_id: SessionId,
    time_remaining: u64,
}

pub async fn session_warning(
    State(hub): State<Arc<Hub>>,
    PathIds(user): PathIds<String>,
    Body(b): Body<Warning>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let session = b.session_id.into_string();
    path_id("sessionId", &session)?;
    let reach = hub
        .send_session_timeout_warning(
            &user,
            &session,
            b.time_remaining.min(i64::MAX as u64) as i64,
        )
        .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(views::reach("deliveredTo", &reach)),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expired {
    session_id: SessionId,
}

pub async fn session_expired(
    State(hub): State<Arc<Hub>>,
    PathIds(user): PathIds<String>,
    Body(b): Body<Expired>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let session = b.session_id.into_string();
    path_id("sessionId", &session)?;
    let reach = hub.send_session_expired(&user, &session, "api").await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(views::reach("deliveredTo", &reach)),
    ))
}
