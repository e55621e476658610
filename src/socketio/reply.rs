//! Answers to client events: through the Socket.IO acknowledgement callback
//! when the client gave one, else as an `error` event for refusals.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::{json, Value};
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::{FromMessageParts, Value as PacketValue};
use socketioxide::socket::Socket;

use crate::protocol;

/// A refused client event, with the contract's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    InvalidPayload(String),
    Forbidden(String),
    NotFound(String),
    TokenInvalid(String),
    RateLimited,
    Internal,
}

impl ClientError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPayload(_) => "invalid_payload",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::TokenInvalid(_) => "token_invalid",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal_error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::InvalidPayload(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::TokenInvalid(m) => m.clone(),
            Self::RateLimited => "too many events; slow down".into(),
            Self::Internal => "the server could not complete the request; try again".into(),
        }
    }
}

/// The way back to the client for one event.
pub struct Reply {
    ack: AckSender,
    has_ack: bool,
}

impl FromMessageParts<LocalAdapter> for Reply {
    type Error = Infallible;
    fn from_message_parts(
        s: &Arc<Socket<LocalAdapter>>,
        v: &mut PacketValue,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let ack = AckSender::from_message_parts(s, v, ack_id)?;
        Ok(Self {
            ack,
            has_ack: ack_id.is_some(),
        })
    }
}

impl Reply {
    pub fn ok(self, body: Value) {
        let _ = self.ack.send(&(body,));
    }

    pub fn refuse(self, socket: &SocketRef, event: &str, error: &ClientError) {
        let error_body = json!({ "code": error.code(), "message": error.message() });
        if self.has_ack {
            let _ = self
                .ack
                .send(&(json!({ "ok": false, "error": error_body }),));
        } else {
            let payload =
                json!({ "event": event, "code": error.code(), "message": error.message() });
            if socket.emit(protocol::ERROR, &(payload,)).is_ok() {
                crate::observe::prometheus::server_event(protocol::ERROR, 1);
            }
        }
    }
}
