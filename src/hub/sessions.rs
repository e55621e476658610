//! Session events: timeout warnings, extension, activity, and expiry that
//! tells every socket of the session before disconnecting it.

use std::time::Duration;

use serde_json::json;

use super::{Hub, HubError};
use crate::audit;
use crate::clock::{rfc3339, Millis};
use crate::connections::ConnectionInfo;
use crate::outbox;
use crate::session::{SessionEvent, SessionSnapshot, Touch};

/// A session with its sockets, as the API shows it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub snapshot: SessionSnapshot,
    pub sockets: Vec<ConnectionInfo>,
}

impl Hub {
    pub(super) async fn on_session_event(&self, event: SessionEvent) {
        match event {
            SessionEvent::Warning {
                session_id,
                user_id,
                time_remaining,
            } => {
                self.send_session_timeout_warning(&user_id, &session_id, time_remaining)
                    .await;
            }
            SessionEvent::Expired {
                session_id,
                user_id,
            } => {
                self.finish_session(&session_id, &user_id, "idle_timeout")
                    .await;
            }
        }
    }

    /// `sendSessionTimeoutWarning`: to every socket of the session.
    pub async fn send_session_timeout_warning(
        &self,
        user: &str,
        session: &str,
        time_remaining: Millis,
    ) -> usize {
        let payload = json!({
            "timeRemaining": time_remaining,
            "sessionId": session,
            "timestamp": rfc3339(self.now()),
        });
        let mut delivered = 0;
        for h in self.connections.of_session(session) {
            if *h.conn.user_id == *user
                && outbox::emit(
                    &h.socket,
                    "session_timeout_warning",
                    &payload,
                    Duration::ZERO,
                )
                .await
                .is_ok()
            {
                delivered += 1;
            }
        }
        audit::session_warned(user, session, time_remaining);
        delivered
    }

    /// `sendSessionExpired`: the session ends for good, now.
    pub async fn send_session_expired(
        &self,
        user: &str,
        session: &str,
        cause: &str,
    ) -> Result<usize, HubError> {
        if let Some(s) = self.sessions.snapshot(session).await {
            if s.user_id != user {
                return Err(HubError::NotFound(format!(
                    "session {session} not found for user {user}"
                )));
            }
        }
        let now = self.now();
        self.store.expire_session(session, user, now).await?;
        self.sessions.expire(session, now).await;
        Ok(self.notify_expired(session, user, cause).await)
    }

    /// A session whose idle clock ran out (already expired in the clocks).
    async fn finish_session(&self, session: &str, user: &str, cause: &str) {
        if let Err(e) = self.store.expire_session(session, user, self.now()).await {
            tracing::error!(error = %e, "could not persist session expiry; it holds until restart");
        }
        self.notify_expired(session, user, cause).await;
    }

    /// Sends `session_expired` to every socket of the session, then
    /// disconnects them (the event is queued first, so it arrives first).
    async fn notify_expired(&self, session: &str, user: &str, cause: &str) -> usize {
        let payload = json!({ "sessionId": session, "timestamp": rfc3339(self.now()) });
        let mut delivered = 0;
        for h in self.connections.of_session(session) {
            self.detach(h.conn.sid);
            if outbox::last_word(
                h.socket,
                "session_expired",
                payload.clone(),
                self.patience(),
            ) {
                delivered += 1;
            }
        }
        audit::session_expired(user, session, cause);
        delivered
    }

    /// `extend_session`: resets the idle clock and tells every socket.
    pub async fn extend_session(&self, session: &str) -> Result<Millis, HubError> {
        let now = self.now();
        match self.sessions.touch_id(session, now).await {
            None => return Err(HubError::NotFound(format!("session {session} not found"))),
            Some(Touch::Expired) => {
                return Err(HubError::Forbidden(format!(
                    "session {session} has expired"
                )))
            }
            Some(Touch::Active) => {}
        }
        let payload = json!({ "sessionId": session, "extendedAt": rfc3339(now) });
        for h in self.connections.of_session(session) {
            let _ = outbox::emit(&h.socket, "session_extended", &payload, Duration::ZERO).await;
        }
        let user = self
            .sessions
            .snapshot(session)
            .await
            .map(|s| s.user_id)
            .unwrap_or_default();
        audit::session_extended(&user, session);
        Ok(now)
    }

    /// Activity of a session seen elsewhere (the backend's HTTP traffic).
    pub async fn session_activity(&self, session: &str) -> Result<Millis, HubError> {
        let now = self.now();
        match self.sessions.touch_id(session, now).await {
            None => Err(HubError::NotFound(format!("session {session} not found"))),
            Some(Touch::Expired) => Err(HubError::Forbidden(format!(
                "session {session} has expired"
            ))),
            Some(Touch::Active) => Ok(now),
        }
    }

    /// Logs a session out everywhere.
    pub async fn logout_session(&self, session: &str) -> Result<usize, HubError> {
        let snapshot = self
            .sessions
            .snapshot(session)
            .await
            .ok_or_else(|| HubError::NotFound(format!("session {session} not found")))?;
        self.send_session_expired(&snapshot.user_id, session, "logout")
            .await
    }

    pub async fn session_view(&self, session: &str) -> Option<SessionView> {
        let snapshot = self.sessions.snapshot(session).await?;
        let sockets = self.registry.session_connections(session).await;
        Some(SessionView { snapshot, sockets })
    }
}
