//! Notification routes: send to a user, broadcast to many, and read back
//! delivery and acknowledgement state.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::{path_id, ApiError, Body, Params};
use super::path_ids::PathIds;
use super::views;
use crate::hub::Hub;
use crate::notification::{Notification, StateFilter};

/// Most recipients one broadcast may name.
pub const MAX_RECIPIENTS: usize = 10_000;

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

/// The answer to a send: serialised straight from the notification, not
/// through a copy of it as a `Value`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    notification: Notification,
    delivered_to: usize,
    /// Present (true) only when some node could not be reached.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
}

pub async fn send_to_user(
    State(hub): State<Arc<Hub>>,
    PathIds(user): PathIds<String>,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let sent = hub.send_notification_to_user(&user, body).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Sent {
            notification: sent.notification,
            delivered_to: sent.delivered_to,
            partial: sent.partial,
        }),
    ))
}

/// A user id in a broadcast list: a string, or an integer made a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum UserId {
    Text(String),
    Number(u64),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Broadcast {
    user_ids: Vec<UserId>,
    notification: Value,
}

pub async fn broadcast(State(hub): State<Arc<Hub>>, Body(b): Body<Broadcast>) -> Answer {
    if b.user_ids.is_empty() || b.user_ids.len() > MAX_RECIPIENTS {
        return Err(ApiError::bad_request(
            "invalid_payload",
            format!("userIds must hold 1 to {MAX_RECIPIENTS} ids"),
        ));
    }
    let users: Vec<String> = b
        .user_ids
        .into_iter()
        .map(|u| match u {
            UserId::Text(s) => s,
            UserId::Number(n) => n.to_string(),
        })
        .collect();
    for u in &users {
        path_id("userIds[]", u)?;
    }
    let sent = hub.broadcast_notification(&users, b.notification).await?;
    let results: Vec<Value> = sent
        .results
        .iter()
        .map(|d| json!({ "userId": d.user_id, "notificationId": d.notification_id, "deliveredTo": d.delivered_to }))
        .collect();
    let mut answer = json!({ "results": results });
    views::mark_partial(&mut answer, sent.partial);
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

pub async fn get(
    State(hub): State<Arc<Hub>>,
    PathIds(id): PathIds<String>,
) -> Result<Json<Value>, ApiError> {
    let (notification, recipients) = hub
        .notification(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("notification {id} not found")))?;
    let recipients: Vec<Value> = recipients.iter().map(views::recipient).collect();
    Ok(Json(
        json!({ "notification": notification, "recipients": recipients }),
    ))
}

pub async fn get_for_user(
    State(hub): State<Arc<Hub>>,
    PathIds((user, id)): PathIds<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let found = hub.user_notification(&id, &user).await?.ok_or_else(|| {
        ApiError::not_found(format!("notification {id} not found for user {user}"))
    })?;
    Ok(Json(views::user_notification(&found)))
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

/// Largest page of a user's notifications.
const MAX_PAGE: u32 = 1000;

pub async fn list_for_user(
    State(hub): State<Arc<Hub>>,
    PathIds(user): PathIds<String>,
    Params(q): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = match q.state.as_deref() {
        None | Some("") => StateFilter::All,
        Some(s) => StateFilter::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                "state must be one of unacknowledged, pending, delivered, acknowledged, all",
            )
        })?,
    };
    let limit = q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let page = hub
        .user_notifications(&user, filter, q.after.unwrap_or(0), limit)
        .await?;
    let next = (page.len() as u32 == limit)
        .then(|| page.last().map(|u| u.seq))
        .flatten();
    let notifications: Vec<Value> = page.iter().map(views::user_notification).collect();
    Ok(Json(
        json!({ "notifications": notifications, "nextAfter": next }),
    ))
}
