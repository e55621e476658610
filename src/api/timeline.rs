//! `GET /api/v1/notifications/{id}/timeline`: what happened to one
//! notification, from its audit records, oldest first.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::path_ids::PathIds;
use crate::hub::Hub;
use crate::trail::timeline;

pub async fn get(
    State(hub): State<Arc<Hub>>,
    PathIds(id): PathIds<String>,
) -> Result<Json<Value>, ApiError> {
    let records = hub
        .timeline(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("notification {id} not found")))?;
    let events: Vec<Value> = timeline::events(&records);
    Ok(Json(json!({ "events": events })))
}
