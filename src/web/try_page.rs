//! The newcomers' try-it page at `/try`, served only with development
//! credentials: it mints a development token for a user and role of the
//! visitor's choosing, connects the official socket.io-client (served by
//! Herald) with it, and shows every event as it arrives.
//!
//! A token for anyone is a key to everything a user may see, so the mint
//! answers only a browser on the same machine (a loopback peer) or a
//! caller holding an API key; and it tells the page when the page's own
//! origin is not an allowed browser origin, which would refuse the socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::assets;
use crate::api::{key_index, path_id, presented, ApiError, Body};
use crate::auth::Signer;
use crate::clock::rfc3339;
use crate::http::origin::{same_origin, Origins};
use crate::hub::Hub;

/// How long a minted token lives: an afternoon of trying things.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/try", get(|| async { assets::TRY_HTML }))
        .route("/try/", get(|| async { assets::TRY_HTML }))
        .route("/try/try.js", get(|| async { assets::TRY_JS }))
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
    let token = Signer::new(&hub.config().jwt).sign(
        req.user_id.trim(),
        &session,
        req.role.trim(),
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
}
