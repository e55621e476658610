//! The connect path: the middleware authenticates the handshake (before the
//! client is told it is connected) and registers the event handlers; the
//! connect handler sends `connected` first, then joins rooms and starts the
//! catch-up, so no broadcast can overtake `connected`.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use socketioxide::extract::{SocketRef, State, TryData};

use super::dispatch;
use crate::auth::AuthError;
use crate::clock::rfc3339;
use crate::connections::connection::Handle;
use crate::hub::Hub;
use crate::observe::security_log;
use crate::protocol;

/// The token from `auth.token`, else the `token` query parameter, else an
/// `Authorization: Bearer` header.
fn handshake_token(auth: Option<&Value>, parts: &http::request::Parts) -> Option<String> {
    if let Some(Value::String(t)) = auth.and_then(|a| a.get("token")) {
        if !t.is_empty() {
            return Some(t.clone());
        }
    }
    if let Some(q) = parts.uri.query() {
        if let Some((_, t)) =
            form_urlencoded::parse(q.as_bytes()).find(|(k, v)| k == "token" && !v.is_empty())
        {
            return Some(t.into_owned());
        }
    }
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = header.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_string())
}

/// Connect middleware: refuses with one of the contract's three messages.
pub async fn authenticate(
    s: SocketRef,
    TryData(auth): TryData<Value>,
    State(hub): State<Arc<Hub>>,
) -> Result<(), AuthError> {
    let parts = s.req_parts();
    let remote = super::owned_request::peer(parts);
    let token = handshake_token(auth.ok().as_ref(), parts);
    let conn = match hub.authenticate(token.as_deref(), s.id, remote).await {
        Ok(conn) => conn,
        Err(e) => {
            security_log::connection_refused(e.reason(), remote);
            hub.record_refused(e.reason(), remote);
            return Err(e);
        }
    };
    let now = hub.now();
    for stray in hub.authenticated().hold(conn.clone(), now) {
        hub.release_place(&stray.user_id, &stray.role, stray.sid)
            .await;
    }
    dispatch::register(&s, conn);
    Ok(())
}

/// The `connected` event's payload, serialised as it is (no `Value` copy).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Connected<'a> {
    socket_id: socketioxide::socket::Sid,
    user_id: &'a str,
    timestamp: String,
}

/// Connect handler: `connected` first, then rooms, registry, what was
/// held for the socket meanwhile, and catch-up.
pub async fn on_connect(s: SocketRef, State(hub): State<Arc<Hub>>) {
    let Some(conn) = hub.authenticated().take(s.id) else {
        // Its disconnect came first (and settled it).
        if s.connected() {
            let _ = s.disconnect();
        }
        return;
    };
    let hello = Connected {
        socket_id: s.id,
        user_id: &conn.user_id,
        timestamp: rfc3339(hub.now()),
    };
    if s.emit(protocol::CONNECTED, &(hello,)).is_err() {
        hub.release_place(&conn.user_id, &conn.role, conn.sid).await;
        conn.settle();
        return;
    }
    crate::observe::prometheus::server_event(protocol::CONNECTED, 1);
    hub.authenticated().before_attach().await;
    let h = Handle { conn, socket: s };
    let attached = hub.attach(h.clone()).await;
    if attached {
        // Notifications delivered to it since its authentication go out
        // now, right after `connected`, before anything later.
        hub.release_held(&h).await;
    }
    h.conn.settle();
    if !attached {
        return;
    }
    security_log::connection_accepted(
        &h.conn.user_id,
        &h.conn.session_id,
        h.conn.sid,
        h.conn.remote_addr,
    );
    hub.catch_up(&h).await;
    hub.catch_up_files(&h).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts(uri: &str, auth: Option<&str>) -> http::request::Parts {
        let mut b = http::Request::builder().uri(uri);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn token_sources_in_contract_order() {
        let auth = json!({"token": "from-auth"});
        let p = parts(
            "/socket.io/?EIO=4&token=from-query",
            Some("Bearer from-header"),
        );
        assert_eq!(
            handshake_token(Some(&auth), &p).as_deref(),
            Some("from-auth")
        );
        assert_eq!(handshake_token(None, &p).as_deref(), Some("from-query"));
        let p = parts("/socket.io/?EIO=4", Some("bearer from-header"));
        assert_eq!(
            handshake_token(Some(&json!({})), &p).as_deref(),
            Some("from-header")
        );
        let p = parts("/socket.io/?EIO=4&token=", Some("Basic abc"));
        assert_eq!(handshake_token(None, &p), None);
    }

    #[test]
    fn query_tokens_are_url_decoded() {
        let p = parts("/socket.io/?token=a%2Eb.c", None);
        assert_eq!(handshake_token(None, &p).as_deref(), Some("a.b.c"));
    }
}
