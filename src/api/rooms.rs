//! Study-room routes: who is in a room, an event to it, and the backend's
//! grants of a room to a user (and their revocation, which also takes the
//! user's sockets out of the room on every node).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, Body};
use super::events::EventBody;
use super::path_ids::PathIds;
use super::views;
use crate::hub::Hub;
use crate::rooms::{members_view, valid_room, MAX_ROOM_LEN};

/// A room name from the path, by the contract's rule.
fn checked(room: &str) -> Result<(), ApiError> {
    if valid_room(room) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_room",
            format!("room must be 1 to {MAX_ROOM_LEN} characters of A-Z a-z 0-9 . _ : -"),
        ))
    }
}

/// `GET /api/v1/rooms/{room}`: `{ room, members }`, on every node.
pub async fn get(
    State(hub): State<Arc<Hub>>,
    PathIds(room): PathIds<String>,
) -> Result<Json<Value>, ApiError> {
    checked(&room)?;
    let view = hub.room(&room).await?;
    let mut answer = json!({ "room": room, "members": members_view(&view.value) });
    views::mark_partial(&mut answer, view.partial);
    Ok(Json(answer))
}

/// `POST /api/v1/rooms/{room}/events { event, data }`: 202 `{ deliveredTo }`.
pub async fn event(
    State(hub): State<Arc<Hub>>,
    PathIds(room): PathIds<String>,
    Body(b): Body<EventBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    checked(&room)?;
    let reach = hub.send_event_to_room(&room, b.event(), b.data()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(views::reach("deliveredTo", &reach)),
    ))
}

/// `PUT /api/v1/rooms/{room}/members/{userId}`: 201 when granted now, 200
/// when the grant was held already.
pub async fn grant(
    State(hub): State<Arc<Hub>>,
    PathIds((room, user)): PathIds<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    checked(&room)?;
    let new = hub.grant_room(&room, &user).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "room": room, "userId": user, "granted": true })),
    ))
}

/// `DELETE /api/v1/rooms/{room}/members/{userId}`: `{ room, userId,
/// revoked, removedSockets }` (`revoked`: whether a grant was held).
pub async fn revoke(
    State(hub): State<Arc<Hub>>,
    PathIds((room, user)): PathIds<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    checked(&room)?;
    let (held, reach) = hub.revoke_room(&room, &user).await?;
    let mut answer = json!({
        "room": room,
        "userId": user,
        "revoked": held,
        "removedSockets": reach.total(),
    });
    views::mark_partial(&mut answer, reach.partial);
    Ok(Json(answer))
}
