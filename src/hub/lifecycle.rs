//! A socket's life in the hub: authentication, attachment (rooms, registry,
//! session clock, token timer), token refresh and expiry, detachment, and
//! the "who is connected" questions, answered cluster-wide.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;
use socketioxide::socket::Sid;

use super::Hub;
use crate::auth::AuthError;
use crate::broker::{role_room, user_room, Listing, Message, Reach, Target, ALL_ROOM};
use crate::clock::Millis;
use crate::cluster::Answer;
use crate::connections::connection::{Conn, Handle};
use crate::connections::outbox;
use crate::observe::security_log;
use crate::presence::{PresenceChange, PresenceStatus};
use crate::protocol;
use crate::registry::{Joined, Joining};
use crate::session::{SessionKey, Touch};

/// Why a token refresh was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    Invalid,
    Forbidden,
}

impl Hub {
    /// Verifies the handshake token of socket `sid` (from `remote`), checks
    /// its session is still alive and belongs to the token's user, and
    /// takes the socket's place under its user's cap. Ok is the socket's
    /// state, holding its place: it becomes the socket's when attached,
    /// else [`Hub::release_place`] gives it back. From here on a
    /// notification for its user is held for it (its lane is held until
    /// [`Hub::release_held`]).
    pub async fn authenticate(
        &self,
        token: Option<&str>,
        sid: Sid,
        remote: Option<SocketAddr>,
    ) -> Result<Arc<Conn>, AuthError> {
        let identity = self.verifier.verify(token.unwrap_or_default())?;
        self.owners
            .check(&*self.store, &identity, self.now())
            .await?;
        let now = self.now();
        let conn = Arc::new(Conn::new(
            sid,
            &identity,
            remote,
            now,
            self.config.rate_limit.burst,
        ));
        self.take_place(&conn).await?;
        Ok(conn)
    }

    /// Refuses a user's socket past `limits.sockets_per_user`, counted on
    /// every node (this node's own count while Redis is unreachable), and
    /// one of an expired session. The check and the taking of the place
    /// are one step on this node (the table's lock) and one across the
    /// cluster (the registry's join, which in a cluster also starts the
    /// session's clock and registers the socket: one Redis script per
    /// connect), so connects arriving together stop exactly at the cap.
    /// Connecting is activity; touching here (before the client is told it
    /// is connected) also means events it sends at once find the session.
    async fn take_place(&self, conn: &Arc<Conn>) -> Result<(), AuthError> {
        let (cap, now) = (self.config.limits.sockets_per_user, self.now());
        let (sid, user) = (conn.sid, &conn.user_id);
        // The place holds the socket's state before the registry's join
        // makes the socket known to other nodes: a notification routed
        // here from then on finds it.
        if !self.sockets.reserve(conn, cap, now) {
            return Err(AuthError::Failed("too_many_connections"));
        }
        let t = self.config.session.for_role(&conn.role);
        let joining = Joining {
            sid,
            user,
            session: &conn.session_id,
            role: &conn.role,
            cap,
            now,
            idle: t.idle_timeout.as_millis() as Millis,
            warn: t.warning_before.as_millis() as Millis,
        };
        let key = SessionKey::new(&conn.session_id, user, &conn.role);
        let refused = match self.registry.join(&joining).await {
            Joined::Full => "too_many_connections",
            Joined::SessionExpired => "session_expired",
            Joined::Held { clock: true } => {
                self.sessions.started(&key, now);
                return Ok(());
            }
            Joined::Held { clock: false } => {
                if self.sessions.start(&key, now).await == Touch::Active {
                    return Ok(());
                }
                self.release_place(user, &conn.role, sid).await;
                return Err(AuthError::Failed("session_expired"));
            }
        };
        self.sockets.release(user, sid);
        Err(AuthError::Failed(refused))
    }

    /// Gives back the place an authenticated socket took, when it will not
    /// be attached (its connect failed or closed first). Idempotent.
    pub async fn release_place(&self, user: &str, role: &str, sid: Sid) {
        self.sockets.release(user, sid);
        self.registry.release(user, role, sid, self.now()).await;
    }

    fn key(h: &Handle) -> SessionKey {
        SessionKey::new(&h.conn.session_id, &h.conn.user_id, &h.conn.role)
    }

    /// Makes a socket reachable: rooms, registry, session clock, token timer.
    /// Returns false when the session expired meanwhile (the socket is told
    /// and disconnected).
    pub async fn attach(self: &Arc<Self>, h: Handle) -> bool {
        // `authenticate` started the session's clock (and in a cluster
        // registered the socket); an expiry since then is caught below,
        // once the socket is in the table.
        // The shared room's name is borrowed: socketioxide keeps a copy of an
        // owned name in each socket's set of rooms.
        h.socket.join(vec![
            Cow::Owned(user_room(&h.conn.user_id)),
            Cow::Owned(role_room(&h.conn.role)),
            Cow::Borrowed(ALL_ROOM),
        ]);
        let (sid, exp) = (h.conn.sid, h.conn.token_expires_at());
        let sockets = &self.sockets;
        sockets.add(h.clone());
        // Registered cluster-wide (by the join, or here if it could not)
        // before the catch-up reads the store: a notification stored
        // meanwhile is either found by its sender's lookup or read by the
        // catch-up.
        let attached = self.registry.attach(&h.conn, self.now()).await;
        self.tokens.lock().schedule(sid, exp);
        self.wake_for(exp);
        // The session's first deadline, if it just started, is its warning
        // one idle period from now: derived here rather than asked of the
        // clocks (a Redis round trip per connect in a cluster).
        let t = self.config.session.for_role(&h.conn.role);
        self.wake_for(self.now() + (t.idle_timeout - t.warning_before).as_millis() as Millis);
        // A disconnect that raced the attachment must not leave a ghost
        // (socketioxide already cleared the rooms; our join re-added them).
        if !h.socket.connected() {
            self.detach(sid).await;
            h.socket.leave_all();
            return false;
        }
        // An expiry that raced the attachment took its list of sockets before
        // this one was added: either it saw this socket, or this sees it. A
        // cluster's registry read the expiry in the step that registered
        // the socket (no round trip more); an expiry recorded after that
        // step found the socket registered and told this node, which
        // remembers the sessions it was told ended.
        let expired = match attached.session_expired {
            Some(expired) => expired,
            None => self.sessions.is_expired(&h.conn.session_id).await,
        } || sockets.session_ended(&h.conn.session_id, self.now());
        if expired && sockets.get(sid).is_some() {
            self.detach(sid).await;
            let payload = json!({ "sessionId": &*h.conn.session_id, "timestamp": crate::clock::rfc3339(self.now()) });
            outbox::last_word(
                h.socket,
                protocol::SESSION_EXPIRED.into(),
                payload,
                self.patience(),
            );
            return false;
        }
        if attached.came_online {
            let change = PresenceChange {
                user_id: h.conn.user_id.to_string(),
                role: h.conn.role.to_string(),
                status: PresenceStatus::Online,
                at: self.now(),
            };
            // Announced beside the catch-up, not before it: in a cluster the
            // announcement is a Redis round trip, and a critical notification
            // stored meanwhile would wait for it.
            let hub = self.clone();
            tokio::spawn(async move { hub.announce_presence(&change).await });
        }
        true
    }

    /// Sends socket `h` the notifications held for it while it connected,
    /// right after `connected`, and opens it to live deliveries: see
    /// [`crate::broker::LocalBroker::release_held`].
    pub async fn release_held(&self, h: &Handle) {
        self.local.release_held(h).await;
    }

    /// Forgets a socket (on disconnect), here and in the registry. Idempotent.
    pub async fn detach(&self, sid: Sid) {
        self.tokens.lock().cancel(&sid);
        self.local.detach(sid).await;
        self.leave_rooms(sid).await;
        self.leave_calls(sid).await;
        // If it was its user's last socket, the user goes offline once the
        // grace has passed: the scheduler must be awake by then (a single
        // node's scheduler otherwise sleeps until its next known deadline).
        self.wake_for(self.now() + self.config.presence.grace.as_millis() as Millis);
    }

    /// Records activity of a socket's session.
    pub async fn activity(&self, h: &Handle) -> Touch {
        let now = self.now();
        h.conn.touch(now);
        self.sessions.touch(&Self::key(h), now).await
    }

    /// Moves a socket's expiry to that of a fresh token of the same user and session.
    pub async fn refresh_token(&self, h: &Handle, token: &str) -> Result<Millis, RefreshError> {
        let identity = self
            .verifier
            .verify(token)
            .map_err(|_| RefreshError::Invalid)?;
        if identity.user_id != h.conn.user_id || identity.session_id != h.conn.session_id {
            return Err(RefreshError::Forbidden);
        }
        h.conn.set_token_expires_at(identity.expires_at);
        if self.sockets.get(h.conn.sid).is_some() {
            self.tokens.lock().schedule(h.conn.sid, identity.expires_at);
            self.wake_for(identity.expires_at);
        }
        security_log::token_refreshed(&h.conn.user_id, &h.conn.session_id, h.conn.sid);
        Ok(identity.expires_at)
    }

    pub(super) async fn on_token_expired(&self, sid: Sid) {
        let Some(h) = self.sockets.get(sid) else {
            return;
        };
        // A refresh may have won the race with this deadline.
        let exp = h.conn.token_expires_at();
        if exp > self.now() {
            self.tokens.lock().schedule(sid, exp);
            return;
        }
        let payload = json!({
            "event": protocol::TOKEN_EXPIRY_EVENT,
            "code": "token_expired",
            "message": "Authentication token expired",
        });
        self.detach(sid).await;
        security_log::token_expired(&h.conn.user_id, &h.conn.session_id, sid);
        outbox::last_word(h.socket, protocol::ERROR.into(), payload, self.patience());
    }

    /// A refused connect, in the audit trail (the reason and the peer; never
    /// the token).
    pub fn record_refused(&self, reason: &str, remote: Option<std::net::SocketAddr>) {
        let detail = serde_json::json!({
            "reason": reason,
            "remote": remote.map(|a| a.to_string()),
        });
        self.store.record(
            crate::trail::Entry::new(crate::trail::Kind::ConnectionRefused, self.now())
                .detail(detail),
        );
    }

    /// `disconnectUser`: closes every socket of `user`, on every node.
    pub async fn disconnect_user(&self, user: &str, reason: &str) -> Reach {
        let reach = self
            .broker
            .deliver(&Target::user(user), &Message::Disconnect)
            .await;
        security_log::user_disconnected(user, reason, reach.total());
        reach
    }

    /// `getUserSessions`: the user's sockets on every node.
    pub async fn user_sessions(&self, user: &str) -> Listing {
        self.broker.sockets(&Target::user(user)).await
    }

    /// `isUserConnected`: how many sockets the user has on every node.
    pub async fn user_connections(&self, user: &str) -> Answer<usize> {
        self.registry.user_socket_count(user).await
    }

    /// `getConnectedUsers`.
    pub async fn connected_users(&self) -> Answer<Vec<String>> {
        self.registry.connected_users().await
    }
}
