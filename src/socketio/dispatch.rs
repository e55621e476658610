//! Routes the client events through one guard: the socket must be
//! authenticated, within its rate budget, and every outcome is answered
//! (callback or `error` event) and counted.

use std::sync::{Arc, OnceLock};

use serde_json::Value;
use socketioxide::extract::{Event, SocketRef, State, TryData};
use socketioxide::socket::DisconnectReason;

use super::events;
use super::lane::Lane;
use super::reply::{ClientError, Reply};
use crate::connections::connection::{Conn, Handle};
use crate::hub::Hub;
use crate::observe::prometheus;
use crate::protocol;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    Activity,
    Acknowledge,
    ExtendSession,
    RefreshToken,
    PresenceSubscribe,
    PresenceUnsubscribe,
    JoinRoom,
    LeaveRoom,
    Typing,
    CallInvite,
    CallAnswer,
    WebrtcSignal,
    CallEnd,
}

impl ClientEvent {
    pub const ALL: [ClientEvent; 13] = [
        Self::Activity,
        Self::Acknowledge,
        Self::ExtendSession,
        Self::RefreshToken,
        Self::PresenceSubscribe,
        Self::PresenceUnsubscribe,
        Self::JoinRoom,
        Self::LeaveRoom,
        Self::Typing,
        Self::CallInvite,
        Self::CallAnswer,
        Self::WebrtcSignal,
        Self::CallEnd,
    ];

    /// Whether the socket's events of this kind must act in the order the
    /// client sent them: a candidate after its offer; a `typing false`
    /// after the `typing true` before it (else the room is told the user
    /// is typing until that goes stale, 5 s after they stopped); and room
    /// membership with them, so that a typing sent right after a join finds
    /// the socket in the room, and a join right after a leave leaves it in.
    pub fn keeps_order(self) -> bool {
        matches!(
            self,
            Self::WebrtcSignal | Self::Typing | Self::JoinRoom | Self::LeaveRoom
        )
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Activity => protocol::ACTIVITY,
            Self::Acknowledge => protocol::ACKNOWLEDGE_NOTIFICATION,
            Self::ExtendSession => protocol::EXTEND_SESSION,
            Self::RefreshToken => protocol::REFRESH_TOKEN,
            Self::PresenceSubscribe => protocol::PRESENCE_SUBSCRIBE,
            Self::PresenceUnsubscribe => protocol::PRESENCE_UNSUBSCRIBE,
            Self::JoinRoom => protocol::JOIN_ROOM,
            Self::LeaveRoom => protocol::LEAVE_ROOM,
            Self::Typing => protocol::TYPING,
            Self::CallInvite => protocol::CALL_INVITE,
            Self::CallAnswer => protocol::CALL_ANSWER,
            Self::WebrtcSignal => protocol::WEBRTC_SIGNAL,
            Self::CallEnd => protocol::CALL_END,
        }
    }
}

/// Longest a client event waits for its socket's connect handler.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Registers the client event handler on a just-authenticated socket,
/// before its CONNECT reply is sent (so no early event is dropped).
///
/// One fallback handler that dispatches by name, rather than one handler
/// per event: socketioxide keeps a map of a socket's handlers for the
/// socket's life (about 0.5 KiB per socket for four). Events of other names
/// are ignored, as they were without a handler.
///
/// The handler's body runs as each event is received (socketioxide calls
/// it there and spawns the future it returns): a `webrtc_signal`, a
/// `typing`, a `join_room` or a `leave_room` takes its place in the
/// socket's [`Lane`] there, in the client's order. The lane is made on the
/// first such event: most sockets never place a call or enter a room.
pub fn register(s: &SocketRef, conn: Arc<Conn>) {
    // The handler is cloned for each event: what it keeps is shared.
    let lane: Arc<OnceLock<Arc<Lane>>> = Arc::default();
    s.on_fallback(
        move |s: SocketRef,
              Event(name): Event,
              TryData(data): TryData<Value>,
              reply: Reply,
              State(hub): State<Arc<Hub>>| {
            let event = ClientEvent::from_name(&name);
            let place = event.is_some_and(ClientEvent::keeps_order).then(|| {
                let lane = lane.get_or_init(Arc::default).clone();
                let ticket = lane.ticket();
                (lane, ticket)
            });
            async move {
                let Some(event) = event else {
                    prometheus::client_event("other", "ignored");
                    return;
                };
                let _turn = match &place {
                    Some((lane, ticket)) => Some(lane.turn(*ticket).await),
                    None => None,
                };
                handle(&hub, s, conn, event, data.unwrap_or(Value::Null), reply).await
            }
        },
    );
    s.on_disconnect(
        |s: SocketRef, reason: DisconnectReason, State(hub): State<Arc<Hub>>| async move {
            prometheus::disconnected(disconnect_label(reason));
            // Closed before its connect handler ran: events waiting for that
            // handler go on (and find the socket gone), and its place under
            // the cap is free again.
            if let Some(conn) = hub.authenticated().take(s.id) {
                hub.release_place(&conn.user_id, &conn.role, conn.sid).await;
                conn.settle();
            }
            hub.detach(s.id).await;
        },
    );
}

/// A disconnect reason as a metric label.
fn disconnect_label(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport_close",
        DisconnectReason::MultipleHttpPollingError => "multiple_polling",
        DisconnectReason::PacketParsingError => "packet_parsing",
        DisconnectReason::TransportError => "transport_error",
        DisconnectReason::HeartbeatTimeout => "heartbeat_timeout",
        DisconnectReason::ClientNSDisconnect => "client_disconnect",
        DisconnectReason::ServerNSDisconnect => "server_disconnect",
        DisconnectReason::ClosingServer => "server_closing",
    }
}

async fn handle(
    hub: &Hub,
    socket: SocketRef,
    conn: Arc<Conn>,
    event: ClientEvent,
    data: Value,
    reply: Reply,
) {
    // Events the client sent right after CONNECT wait for `connected` and
    // the socket's attachment (a few microseconds at most).
    conn.settled(SETTLE_LIMIT).await;
    let limits = hub.config().rate_limit;
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
            ClientEvent::PresenceSubscribe => events::presence_subscribe(hub, &h, &data).await,
            ClientEvent::PresenceUnsubscribe => events::presence_unsubscribe(hub, &h, &data),
            ClientEvent::JoinRoom => events::join_room(hub, &h, &data).await,
            ClientEvent::LeaveRoom => events::leave_room(hub, &h, &data).await,
            ClientEvent::Typing => events::typing(hub, &h, &data).await,
            ClientEvent::CallInvite => events::call_invite(hub, &h, &data).await,
            ClientEvent::CallAnswer => events::call_answer(hub, &h, &data).await,
            ClientEvent::WebrtcSignal => events::webrtc_signal(hub, &h, &data).await,
            ClientEvent::CallEnd => events::call_end(hub, &h, &data).await,
        }
    } else {
        Err(ClientError::RateLimited)
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    prometheus::client_event(event.name(), outcome);
    match result {
        Ok(body) => reply.ok(body),
        Err(e) => reply.refuse(&socket, event.name(), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_found_by_its_name_and_nothing_else() {
        for event in ClientEvent::ALL {
            assert_eq!(ClientEvent::from_name(event.name()), Some(event));
        }
        assert_eq!(ClientEvent::from_name("Activity"), None);
        assert_eq!(ClientEvent::from_name("connected"), None);
        assert_eq!(ClientEvent::from_name(""), None);
    }
}
