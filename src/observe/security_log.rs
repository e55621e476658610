//! The security audit trail: one structured line per security event under
//! the `herald::audit` target, and a counter per kind. Never a token.

use std::fmt;
use std::net::SocketAddr;

use socketioxide::socket::Sid;

use crate::observe::prometheus;

/// A peer address on an audit line, `-` when unknown; formatted only when
/// the line is written.
struct Peer(Option<SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => a.fmt(f),
            None => f.write_str("-"),
        }
    }
}

pub fn connection_accepted(user: &str, session: &str, sid: Sid, remote: Option<SocketAddr>) {
    prometheus::audit_event("connection_accepted");
    prometheus::connection_accepted();
    tracing::info!(target: "herald::audit", event = "connection_accepted", user, session, %sid, remote = %Peer(remote));
}

pub fn connection_refused(reason: &'static str, remote: Option<SocketAddr>) {
    prometheus::audit_event("connection_refused");
    prometheus::auth_refused(reason);
    tracing::info!(target: "herald::audit", event = "connection_refused", reason, remote = %Peer(remote));
}

pub fn token_refreshed(user: &str, session: &str, sid: Sid) {
    prometheus::audit_event("token_refreshed");
    tracing::info!(target: "herald::audit", event = "token_refreshed", user, session, %sid);
}

pub fn token_expired(user: &str, session: &str, sid: Sid) {
    prometheus::audit_event("token_expired");
    tracing::info!(target: "herald::audit", event = "token_expired", user, session, %sid);
}

pub fn session_warned(user: &str, session: &str, time_remaining_ms: i64) {
    prometheus::audit_event("session_warned");
    prometheus::session_warned();
    tracing::info!(target: "herald::audit", event = "session_warned", user, session, time_remaining_ms);
}

pub fn session_extended(user: &str, session: &str) {
    prometheus::audit_event("session_extended");
    tracing::info!(target: "herald::audit", event = "session_extended", user, session);
}

pub fn session_expired(user: &str, session: &str, cause: &str) {
    prometheus::audit_event("session_expired");
    prometheus::session_expired(cause);
    tracing::info!(target: "herald::audit", event = "session_expired", user, session, cause);
}

pub fn user_disconnected(user: &str, reason: &str, sockets: usize) {
    prometheus::audit_event("user_disconnected");
    tracing::info!(target: "herald::audit", event = "user_disconnected", user, reason, sockets);
}
