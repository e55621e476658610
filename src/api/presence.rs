//! The presence route: whether each of up to 1,000 users is online
//! anywhere in the cluster, since when, and with how many sockets.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{path_id, ApiError, Params};
use super::views;
use crate::hub::Hub;
use crate::presence::{PresenceInfo, MAX_USERS_PER_QUERY as MAX_USERS};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceQuery {
    user_ids: Option<String>,
}

pub async fn get(
    State(hub): State<Arc<Hub>>,
    Params(q): Params<PresenceQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut users: Vec<String> = Vec::new();
    for id in q.user_ids.as_deref().unwrap_or("").split(',') {
        let id = id.trim();
        if id.is_empty() {
            continue;
        }
        path_id("userIds[]", id)?;
        if !users.iter().any(|u| u == id) {
            users.push(id.to_string());
        }
    }
    if users.is_empty() || users.len() > MAX_USERS {
        return Err(ApiError::bad_request(
            "invalid_payload",
            format!("userIds must name 1 to {MAX_USERS} users, comma-separated"),
        ));
    }
    let view = hub.presence(&users).await;
    let presence: Vec<Value> = view.value.iter().map(PresenceInfo::view).collect();
    let mut answer = json!({ "presence": presence });
    views::mark_partial(&mut answer, view.partial);
    Ok(Json(answer))
}
