//! The four client events: validate the payload, insist on the socket's own
//! user and session, call the Hub, and shape the acknowledgement.

use serde_json::{json, Value};

use super::reply::ClientError;
use crate::clock::rfc3339;
use crate::conn::Handle;
use crate::hub::RefreshError;
use crate::hub::{Hub, HubError};
use crate::notification::valid_id;
use crate::session::Touch;

fn object(data: &Value) -> Result<&serde_json::Map<String, Value>, ClientError> {
    data.as_object()
        .ok_or_else(|| ClientError::InvalidPayload("payload must be an object".into()))
}

/// An id field: a string, or an integer (ids are strings everywhere).
fn id_field(
    obj: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<String>, ClientError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(ClientError::InvalidPayload(format!(
            "{name} must be a non-empty string"
        ))),
    }
}

fn required(obj: &serde_json::Map<String, Value>, name: &str) -> Result<String, ClientError> {
    id_field(obj, name)?.ok_or_else(|| ClientError::InvalidPayload(format!("{name} is required")))
}

fn hub_error(e: HubError) -> ClientError {
    match e {
        HubError::NotFound(m) => ClientError::NotFound(m),
        HubError::Forbidden(m) => ClientError::Forbidden(m),
        HubError::BadRequest(m) => ClientError::InvalidPayload(m),
        HubError::Invalid(e) => ClientError::InvalidPayload(e.to_string()),
        HubError::Store(e) => {
            tracing::error!(error = %e, "store failed during a client event");
            ClientError::Internal
        }
    }
}

async fn touch(hub: &Hub, h: &Handle) -> Result<(), ClientError> {
    match hub.activity(h).await {
        Touch::Active => Ok(()),
        Touch::Expired => Err(ClientError::Forbidden("session has expired".into())),
    }
}

pub async fn activity(hub: &Hub, h: &Handle) -> Result<Value, ClientError> {
    touch(hub, h).await?;
    Ok(json!({ "ok": true }))
}

pub async fn acknowledge(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let obj = object(data)?;
    let id = required(obj, "notificationId")?;
    if !valid_id(&id) {
        return Err(ClientError::InvalidPayload(
            "notificationId is not a valid id".into(),
        ));
    }
    if let Some(user) = id_field(obj, "userId")? {
        if *user != *h.conn.user_id {
            return Err(ClientError::Forbidden(
                "userId is not this socket's user".into(),
            ));
        }
    }
    touch(hub, h).await?;
    let at = hub
        .acknowledge(&h.conn.user_id, &id)
        .await
        .map_err(hub_error)?;
    Ok(json!({ "ok": true, "notificationId": id, "acknowledgedAt": rfc3339(at) }))
}

pub async fn extend_session(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let session = required(object(data)?, "sessionId")?;
    if *session != *h.conn.session_id {
        return Err(ClientError::Forbidden(
            "sessionId is not this socket's session".into(),
        ));
    }
    h.conn.touch(hub.now());
    let at = hub.extend_session(&session).await.map_err(hub_error)?;
    Ok(json!({ "ok": true, "sessionId": session, "extendedAt": rfc3339(at) }))
}

pub async fn refresh_token(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let token = match object(data)?.get("token") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        _ => {
            return Err(ClientError::InvalidPayload(
                "token must be a non-empty string".into(),
            ))
        }
    };
    touch(hub, h).await?;
    let expires_at = hub.refresh_token(h, &token).await.map_err(|e| match e {
        RefreshError::Invalid => ClientError::TokenInvalid("token does not verify".into()),
        RefreshError::Forbidden => {
            ClientError::Forbidden("token is for another user or session".into())
        }
    })?;
    Ok(json!({ "ok": true, "expiresAt": rfc3339(expires_at) }))
}
