//! The client events: check the payload ([`payload`]), call the Hub, and
//! shape the acknowledgement.

use serde_json::{json, Value};

use super::call_payload;
use super::payload;
use super::reply::ClientError;
use crate::clock::rfc3339;
use crate::connections::connection::Handle;
use crate::hub::RefreshError;
use crate::hub::{Hub, HubError};
use crate::presence::PresenceInfo;
use crate::rooms::members_view;
use crate::session::Touch;

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
    let id = payload::acknowledge(data, &h.conn.user_id)?;
    touch(hub, h).await?;
    let at = hub.acknowledge_from(h, &id).await.map_err(hub_error)?;
    Ok(json!({ "ok": true, "notificationId": id, "acknowledgedAt": rfc3339(at) }))
}

pub async fn extend_session(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let session = payload::extend_session(data, &h.conn.session_id)?;
    h.conn.touch(hub.now());
    let at = hub.extend_session(&session).await.map_err(hub_error)?;
    Ok(json!({ "ok": true, "sessionId": session, "extendedAt": rfc3339(at) }))
}

pub async fn refresh_token(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let token = payload::refresh_token(data)?;
    touch(hub, h).await?;
    let expires_at = hub.refresh_token(h, &token).await.map_err(|e| match e {
        RefreshError::Invalid => ClientError::TokenInvalid("token does not verify".into()),
        RefreshError::Forbidden => {
            ClientError::Forbidden("token is for another user or session".into())
        }
    })?;
    Ok(json!({ "ok": true, "expiresAt": rfc3339(expires_at) }))
}

/// Watching users' presence is not activity of the session: a screen that
/// shows who is online must not keep an idle session alive.
pub async fn presence_subscribe(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let users = payload::presence_users(data)?;
    let view = hub.presence_subscribe(h, &users).await.map_err(hub_error)?;
    let presence: Vec<Value> = view.value.iter().map(PresenceInfo::view).collect();
    let mut answer = json!({ "ok": true, "presence": presence });
    if view.partial {
        // Redis unreachable: the other nodes' sockets are not counted.
        answer["partial"] = Value::Bool(true);
    }
    Ok(answer)
}

pub fn presence_unsubscribe(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let users = payload::presence_users(data)?;
    hub.presence_unsubscribe(h, &users);
    Ok(json!({ "ok": true }))
}

/// Opening a study is the user's own doing: activity of the session.
pub async fn join_room(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let room = payload::room(data)?;
    touch(hub, h).await?;
    let view = hub.join_room(h, &room).await.map_err(hub_error)?;
    let mut answer = json!({ "ok": true, "room": room, "members": members_view(&view.value) });
    if view.partial {
        answer["partial"] = Value::Bool(true);
    }
    Ok(answer)
}

/// Not activity: a closing tab leaves its rooms on its own.
pub async fn leave_room(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let room = payload::room(data)?;
    hub.leave_room(h, &room).await.map_err(hub_error)?;
    Ok(json!({ "ok": true, "room": room }))
}

/// Typing is the user at work: activity of the session.
pub async fn typing(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let (room, is_typing) = payload::typing(data)?;
    touch(hub, h).await?;
    hub.typing(h, &room, is_typing).await.map_err(hub_error)?;
    Ok(json!({ "ok": true }))
}

/// Placing a call is the user at work: activity of the session.
pub async fn call_invite(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let (to, media) = call_payload::invite(data)?;
    touch(hub, h).await?;
    let (call_id, ice) = hub.call_invite(h, &to, media).await.map_err(hub_error)?;
    Ok(json!({ "ok": true, "callId": call_id, "iceServers": ice }))
}

/// Answering is the user at work: activity of the session.
pub async fn call_answer(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let (call_id, accept) = call_payload::answer(data)?;
    touch(hub, h).await?;
    hub.call_answer(h, &call_id, accept)
        .await
        .map_err(hub_error)?;
    Ok(json!({ "ok": true, "callId": call_id, "accept": accept }))
}

/// Not activity: the browser sends signals on its own during a call.
pub async fn webrtc_signal(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let s = call_payload::signal(data)?;
    hub.webrtc_signal(h, &s.call_id, &s.to, s.kind, s.payload)
        .await
        .map_err(hub_error)?;
    Ok(json!({ "ok": true }))
}

/// Not activity: a closing tab ends its calls on its own.
pub async fn call_end(hub: &Hub, h: &Handle, data: &Value) -> Result<Value, ClientError> {
    let call_id = call_payload::end(data)?;
    hub.call_end(h, &call_id).await.map_err(hub_error)?;
    Ok(json!({ "ok": true, "callId": call_id }))
}
