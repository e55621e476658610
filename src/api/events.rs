//! Plain event routes: to a role, to a user, to everyone.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, Body};
use super::path_ids::PathIds;
use super::views;
use crate::broker::Reach;
use crate::hub::Hub;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    event: String,
    #[serde(default, deserialize_with = "present")]
    data: Option<Value>,
}

impl EventBody {
    pub fn event(&self) -> &str {
        &self.event
    }

    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }
}

/// Keeps an explicit `null` as `Some(Null)`; only an absent field is `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

fn accepted(reach: Reach) -> Answer {
    Ok((
        StatusCode::ACCEPTED,
        Json(views::reach("deliveredTo", &reach)),
    ))
}

pub async fn to_role(
    State(hub): State<Arc<Hub>>,
    PathIds(role): PathIds<String>,
    Body(b): Body<EventBody>,
) -> Answer {
    accepted(
        hub.broadcast_to_role(&role, &b.event, b.data.as_ref())
            .await?,
    )
}

pub async fn to_user(
    State(hub): State<Arc<Hub>>,
    PathIds(user): PathIds<String>,
    Body(b): Body<EventBody>,
) -> Answer {
    accepted(
        hub.send_event_to_user(&user, &b.event, b.data.as_ref())
            .await?,
    )
}

pub async fn to_all(State(hub): State<Arc<Hub>>, Body(b): Body<EventBody>) -> Answer {
    accepted(hub.broadcast_to_all(&b.event, b.data.as_ref()).await?)
}
