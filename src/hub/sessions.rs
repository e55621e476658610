//! Session events: timeout warnings, extension, activity, and expiry that
//! tells every socket of the session, on every node, before disconnecting it.

use serde_json::json;

use super::{Hub, HubError};
use crate::broker::{Message, Reach, Target};
use crate::clock::{rfc3339, Millis};
use crate::connections::connection::ConnectionInfo;
use crate::observe::security_log;
use crate::protocol;
use crate::session::{SessionEvent, SessionSnapshot, Touch};
use crate::trail::{Entry, Kind};

/// A session with its sockets, as the API shows it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub snapshot: SessionSnapshot,
    pub sockets: Vec<ConnectionInfo>,
    /// Some node could not be asked for its sockets.
    pub partial: bool,
}

impl Hub {
    pub(super) async fn on_session_event(&self, event: &SessionEvent) {
        match event {
            SessionEvent::Warning {
                session_id,
                user_id,
                time_remaining,
            } => {
                self.send_session_timeout_warning(user_id, session_id, *time_remaining)
                    .await;
            }
            SessionEvent::Expired {
                session_id,
                user_id,
            } => {
                self.finish_session(session_id, user_id, "idle_timeout")
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
    ) -> Reach {
        let data = json!({
            "timeRemaining": time_remaining,
            "sessionId": session,
            "timestamp": rfc3339(self.now()),
        });
        let target = Target::Session {
            id: session.to_string(),
            user: Some(user.to_string()),
        };
        let message = Message::Event {
            name: protocol::SESSION_TIMEOUT_WARNING.into(),
            data: Some(data),
        };
        let reach = self.broker.deliver(&target, &message).await;
        security_log::session_warned(user, session, time_remaining);
        reach
    }

    /// `sendSessionExpired`: the session ends for good, now, on every node.
    pub async fn send_session_expired(
        &self,
        user: &str,
        session: &str,
        cause: &str,
    ) -> Result<Reach, HubError> {
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
    async fn notify_expired(&self, session: &str, user: &str, cause: &str) -> Reach {
        let data = json!({ "sessionId": session, "timestamp": rfc3339(self.now()) });
        let message = Message::Farewell {
            name: protocol::SESSION_EXPIRED.into(),
            data,
        };
        let target = Target::Session {
            id: session.to_string(),
            user: Some(user.to_string()),
        };
        let reach = self.broker.deliver(&target, &message).await;
        security_log::session_expired(user, session, cause);
        let kind = if cause == "idle_timeout" {
            Kind::SessionExpired
        } else {
            Kind::SessionLoggedOut
        };
        self.store.record(
            Entry::new(kind, self.now())
                .user(user)
                .detail(json!({ "sessionId": session, "cause": cause })),
        );
        reach
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
        let message = Message::Event {
            name: protocol::SESSION_EXTENDED.into(),
            data: Some(json!({ "sessionId": session, "extendedAt": rfc3339(now) })),
        };
        // The session's user, when its clock says, spares every node the
        // question (its sockets are among the user's).
        let user = self.sessions.snapshot(session).await.map(|s| s.user_id);
        let target = Target::Session {
            id: session.to_string(),
            user: user.clone(),
        };
        self.broker.deliver(&target, &message).await;
        security_log::session_extended(user.as_deref().unwrap_or_default(), session);
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

    /// Ends a session everywhere for `cause` (`logout` from the backend,
    /// `admin` from the operators' dashboard, as the audit log records).
    pub async fn logout_session(&self, session: &str, cause: &str) -> Result<Reach, HubError> {
        let snapshot = self
            .snapshot(session)
            .await
            .ok_or_else(|| HubError::NotFound(format!("session {session} not found")))?;
        self.send_session_expired(&snapshot.user_id, session, cause)
            .await
    }

    pub async fn session_view(&self, session: &str) -> Option<SessionView> {
        let snapshot = self.snapshot(session).await?;
        let target = Target::Session {
            id: session.to_string(),
            user: Some(snapshot.user_id.clone()),
        };
        let listing = self.broker.sockets(&target).await;
        Some(SessionView {
            snapshot,
            sockets: listing.sockets,
            partial: listing.partial,
        })
    }

    /// The session's clock, or, while the shared clocks cannot be reached
    /// (Redis down), what this node's own sockets of the session know: idle
    /// since the latest activity any of them saw here.
    async fn snapshot(&self, session: &str) -> Option<SessionSnapshot> {
        if let Some(s) = self.sessions.snapshot(session).await {
            return Some(s);
        }
        if self.redis_up() {
            return None;
        }
        let here = self.sockets.of_session(session);
        let last = here.iter().map(|h| h.conn.last_activity()).max()?;
        let conn = &here.first()?.conn;
        let idle = self.config.session.for_role(&conn.role).idle_timeout;
        Some(SessionSnapshot {
            session_id: session.to_string(),
            user_id: conn.user_id.to_string(),
            role: conn.role.to_string(),
            last_activity: last,
            expires_at: last + idle.as_millis() as Millis,
            warned: false,
        })
    }
}
