//! Routes the four client events through one guard: the socket must be
//! authenticated, within its rate budget, and every outcome is answered
//! (callback or `error` event) and counted.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::extract::{SocketRef, State, TryData};

use super::events;
use super::reply::{ClientError, Reply};
use crate::connections::{Conn, Handle};
use crate::hub::Hub;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    Activity,
    Acknowledge,
    ExtendSession,
    RefreshToken,
}

impl ClientEvent {
    pub const ALL: [ClientEvent; 4] = [
        Self::Activity,
        Self::Acknowledge,
        Self::ExtendSession,
        Self::RefreshToken,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Activity => "activity",
            Self::Acknowledge => "acknowledge_notification",
            Self::ExtendSession => "extend_session",
            Self::RefreshToken => "refresh_token",
        }
    }
}

/// Longest a client event waits for its socket's connect handler.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Registers every client event handler on a just-authenticated socket,
/// before its CONNECT reply is sent (so no early event is dropped).
pub fn register(s: &SocketRef) {
    for event in ClientEvent::ALL {
        s.on(
            event.name(),
            move |s: SocketRef,
                  TryData(data): TryData<Value>,
                  reply: Reply,
                  State(hub): State<Arc<Hub>>| async move {
                handle(&hub, s, event, data.unwrap_or(Value::Null), reply).await;
            },
        );
    }
    s.on_disconnect(|s: SocketRef, State(hub): State<Arc<Hub>>| async move {
        hub.detach(s.id);
    });
}

async fn handle(hub: &Hub, socket: SocketRef, event: ClientEvent, data: Value, reply: Reply) {
    let Some(conn) = socket.extensions.get::<Arc<Conn>>() else {
        return;
    };
    // Events the client sent right after CONNECT wait for `connected` and
    // the socket's attachment (a few microseconds at most).
    conn.settled(SETTLE_LIMIT).await;
    let limits = hub.config.rate_limit;
    let result = if conn.allow_event(hub.now(), limits.per_second, limits.burst) {
        let h = Handle {
            conn,
            socket: socket.clone(),
        };
        match event {
            ClientEvent::Activity => events::activity(hub, &h).await,
            ClientEvent::Acknowledge => events::acknowledge(hub, &h, &data).await,
            ClientEvent::ExtendSession => events::extend_session(hub, &h, &data).await,
            ClientEvent::RefreshToken => events::refresh_token(hub, &h, &data).await,
        }
    } else {
        Err(ClientError::RateLimited)
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    metrics::counter!("herald_client_events_total", "event" => event.name(), "result" => outcome)
        .increment(1);
    match result {
        Ok(body) => reply.ok(body),
        Err(e) => reply.refuse(&socket, event.name(), &e),
    }
}
