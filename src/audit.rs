//! The security audit trail: one structured line per security event under
//! the `herald::audit` target, and a counter per kind. Never a token.

use metrics::counter;

fn count(event: &'static str) {
    counter!("herald_audit_events_total", "event" => event).increment(1);
}

pub fn connection_accepted(user: &str, session: &str, sid: &str, remote: Option<&str>) {
    count("connection_accepted");
    tracing::info!(target: "herald::audit", event = "connection_accepted", user, session, sid, remote = remote.unwrap_or("-"));
}

pub fn connection_refused(reason: &str, remote: Option<&str>) {
    count("connection_refused");
    counter!("herald_auth_refused_total", "reason" => reason.to_string()).increment(1);
    tracing::info!(target: "herald::audit", event = "connection_refused", reason, remote = remote.unwrap_or("-"));
}

pub fn token_refreshed(user: &str, session: &str, sid: &str) {
    count("token_refreshed");
    tracing::info!(target: "herald::audit", event = "token_refreshed", user, session, sid);
}

pub fn token_expired(user: &str, session: &str, sid: &str) {
    count("token_expired");
    tracing::info!(target: "herald::audit", event = "token_expired", user, session, sid);
}

pub fn session_warned(user: &str, session: &str, time_remaining_ms: i64) {
    count("session_warned");
    tracing::info!(target: "herald::audit", event = "session_warned", user, session, time_remaining_ms);
}

pub fn session_extended(user: &str, session: &str) {
    count("session_extended");
    tracing::info!(target: "herald::audit", event = "session_extended", user, session);
}

pub fn session_expired(user: &str, session: &str, cause: &str) {
    count("session_expired");
    tracing::info!(target: "herald::audit", event = "session_expired", user, session, cause);
}

pub fn user_disconnected(user: &str, reason: &str, sockets: usize) {
    count("user_disconnected");
    tracing::info!(target: "herald::audit", event = "user_disconnected", user, reason, sockets);
}
