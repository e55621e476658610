//! The newcomers' try-it page at `/try`, served only with development
//! credentials: it mints a development token for a user and role of the
//! visitor's choosing, connects the official socket.io-client (served by
//! Herald) with it, and shows every event as it arrives. The token opens
//! every study room, so the page can join one and show who is there and
//! who is typing.
//!
//! A token for anyone is a key to everything a user may see, so the mint
//! answers only a browser on the same machine (a loopback peer) or a
//! caller holding an API key; and it tells the page when the page's own
//! origin is not an allowed browser origin, which would refuse the socket.
//! A loopback peer is not enough on its own: a page at
//! `http://evil.example:8001` whose name an attacker re-points at
//! 127.0.0.1 (DNS rebinding) is such a peer. So, without an API key, the
//! request must also name Herald in `Host` (and `Origin`, if sent) by a
//! name no one else can point here, as the socket path requires
//! ([`crate::http::origin::trusted_host`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::assets;
use crate::api::{key_index, path_id, presented, ApiError, Body};
use crate::auth::Signer;
use crate::clock::rfc3339;
use crate::http::origin::{same_origin, trusted_host, Origins};
use crate::hub::Hub;

/// How long a minted token lives: an afternoon of trying things.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The study rooms a minted token opens: any, so that a newcomer can join
/// a room from two tabs without asking the backend for a grant.
const TRY_ROOMS: [&str; 1] = ["*"];

pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/try", get(|| async { assets::TRY_HTML }))
        .route("/try/", get(|| async { assets::TRY_HTML }))
        .route("/try/try.js", get(|| async { assets::TRY_JS }))
        .route("/try/call.js", get(|| async { assets::TRY_CALL_JS }))
        .route("/try/herald.css", get(|| async { assets::STYLE }))
        .route("/try/socket.io.min.js", get(|| async { assets::SOCKET_IO }))
        .route("/try/token", post(mint))
        .with_state(hub)
}

/// Whether a caller from `peer` (with or without an API key) may have a
/// token: a browser on this machine, or anyone holding an API key.
fn may_mint(peer: Option<SocketAddr>, keyed: bool) -> bool {
    keyed || peer.is_some_and(|a| a.ip().is_loopback())
}

/// Whether a request names Herald by a trusted name: its `Host` (the URI's
/// authority in HTTP/2), and its `Origin` when a browser sent one. A
/// rebound page names the attacker's domain in both.
fn addressed_by_trusted_name(headers: &HeaderMap, uri: &Uri, server_names: &[String]) -> bool {
    let host = match headers.get(header::HOST) {
        Some(h) => h.to_str().ok(),
        None => uri.authority().map(|a| a.as_str()),
    };
    let origin_ok = headers.get(header::ORIGIN).is_none_or(|o| {
        o.to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .is_some_and(|(_, authority)| trusted_host(authority, server_names))
    });
    host.is_some_and(|h| trusted_host(h, server_names)) && origin_ok
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    user_id: String,
    role: String,
    session_id: Option<String>,
}

async fn mint(
    State(hub): State<Arc<Hub>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    uri: Uri,
    headers: HeaderMap,
    Body(req): Body<TokenRequest>,
) -> Result<Json<Value>, ApiError> {
    let peer = peer.map(|Extension(ConnectInfo(a))| a);
    let keyed = presented(&headers).is_some_and(|k| key_index(&hub.config().api_keys, k).is_some());
    if !may_mint(peer, keyed) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "from another machine, minting a development token needs the development API key",
        ));
    }
    if !keyed && !addressed_by_trusted_name(&headers, &uri, &hub.config().http.server_names) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "untrusted_host",
            "a development token is minted only for a request that names this server by an IP \
             address, localhost or one of http.server_names in Host and Origin \
             (a page under another name may be a DNS-rebinding attack)",
        ));
    }
    for (kind, id) in [("userId", &req.user_id), ("role", &req.role)] {
        path_id(kind, id.trim())?;
    }
    let session = match req.session_id.filter(|s| !s.trim().is_empty()) {
        Some(s) => {
            path_id("sessionId", s.trim())?;
            s.trim().to_string()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let now = hub.now();
    let ttl = TOKEN_TTL.as_millis() as i64;
    let token = Signer::new(&hub.config().jwt).sign_with_rooms(
        req.user_id.trim(),
        &session,
        req.role.trim(),
        &TRY_ROOMS,
        now,
        ttl,
    );
    let mut answer = json!({
        "token": token,
        "userId": req.user_id.trim(),
        "role": req.role.trim(),
        "sessionId": session,
        "expiresAt": rfc3339(now + ttl),
    });
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let config = hub.config();
        let allowed = Origins::new(&config.cors_origins).allows(origin)
            || same_origin(origin, host, &config.http.server_names);
        answer["origin"] = json!({ "origin": origin, "allowed": allowed });
    }
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_or_an_api_key_may_mint() {
        let at = |a: &str| Some(a.parse::<SocketAddr>().unwrap());
        assert!(may_mint(at("127.0.0.1:5000"), false));
        assert!(may_mint(at("[::1]:5000"), false));
        assert!(!may_mint(at("192.0.2.7:5000"), false), "another machine");
        assert!(may_mint(at("192.0.2.7:5000"), true), "with an API key");
        assert!(
            !may_mint(None, false),
            "an unknown peer is not this machine"
        );
    }

    #[test]
    fn a_rebound_name_in_host_or_origin_is_not_trusted() {
        let names = ["herald.internal".to_string()];
        let uri: Uri = "/try/token".parse().unwrap();
        let check = |host: Option<&str>, origin: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = host {
                h.insert(header::HOST, v.parse().unwrap());
            }
            if let Some(v) = origin {
                h.insert(header::ORIGIN, v.parse().unwrap());
            }
            addressed_by_trusted_name(&h, &uri, &names)
        };
        assert!(check(Some("127.0.0.1:8001"), None));
        assert!(check(Some("localhost:8001"), Some("http://localhost:8001")));
        assert!(check(
            Some("herald.internal:8001"),
            Some("http://127.0.0.1:8001")
        ));
        assert!(!check(
            Some("evil.test:8001"),
            Some("http://evil.test:8001")
        ));
        assert!(!check(Some("evil.test:8001"), None));
        assert!(!check(
            Some("127.0.0.1:8001"),
            Some("http://evil.test:8001")
        ));
        assert!(!check(Some("127.0.0.1:8001"), Some("null")));
        assert!(!check(None, None), "no Host names nothing");
        let absolute: Uri = "http://127.0.0.1:8001/try/token".parse().unwrap();
        assert!(addressed_by_trusted_name(
            &HeaderMap::new(),
            &absolute,
            &names
        ));
    }
}
