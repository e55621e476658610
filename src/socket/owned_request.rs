//! Trims the request that opens a Socket.IO session to what the socket
//! needs for its life, as owned copies.
//!
//! socketioxide keeps each socket's handshake `Parts` for the socket's life.
//! hyper parses a request head without copying: header values and the URI
//! (and axum's `OriginalUri` extension, a clone of it) are slices of the
//! connection's read buffer (16 KiB once grown), so every connection would
//! pin that whole buffer. And most of the head is of no use after the
//! handshake: the browser's dozen headers, axum's routing extensions. So the
//! socket keeps an owned URI (the `token` query), the headers Engine.IO
//! reads ([`KEPT_HEADERS`]) and the extensions Herald and hyper read
//! (the peer address, the websocket upgrade): about 1 KiB less per socket.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Uri};

/// The headers read after this step: the bearer token (Herald's
/// authentication), the websocket key (the upgrade answer) and the content
/// type (a polling POST).
const KEPT_HEADERS: [HeaderName; 3] = [
    axum::http::header::AUTHORIZATION,
    axum::http::header::SEC_WEBSOCKET_KEY,
    axum::http::header::CONTENT_TYPE,
];

/// Owned copies of the headers in [`KEPT_HEADERS`], in a map of their
/// exact size (a map grown by inserting reserves room for six: ~0.6 KiB).
pub fn own_headers(headers: &HeaderMap) -> HeaderMap {
    let count = KEPT_HEADERS
        .iter()
        .map(|name| headers.get_all(name).iter().count())
        .sum();
    let mut owned = HeaderMap::with_capacity(count);
    for name in &KEPT_HEADERS {
        for value in headers.get_all(name) {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                owned.append(name.clone(), value);
            }
        }
    }
    owned
}

/// The extensions read after this step: the peer address (audit) and
/// hyper's upgrade handle (the websocket).
fn kept_extensions(extensions: &mut Extensions) -> Extensions {
    let mut kept = Extensions::new();
    if let Some(upgrade) = extensions.remove::<hyper::upgrade::OnUpgrade>() {
        kept.insert(upgrade);
    }
    if let Some(peer) = extensions.remove::<ConnectInfo<SocketAddr>>() {
        kept.insert(peer);
    }
    kept
}

pub fn own_request(mut req: Request) -> Request {
    // Only a request that opens a session (no `sid` yet) is kept; the
    // requests of an open session (polls, posts, the upgrade) pass as they are.
    let opens_session = req.uri().path().starts_with("/socket.io")
        && !req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("sid=")));
    if opens_session {
        let headers = own_headers(req.headers());
        *req.headers_mut() = headers;
        let extensions = kept_extensions(req.extensions_mut());
        *req.extensions_mut() = extensions;
        if let Ok(uri) = req.uri().to_string().parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_headers_read_later() {
        let mut h = HeaderMap::new();
        h.append("origin", HeaderValue::from_static("http://localhost:5173"));
        h.append("user-agent", HeaderValue::from_static("Mozilla/5.0"));
        h.append(
            "sec-websocket-key",
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        h.append("content-type", HeaderValue::from_static("text/plain"));
        h.append("authorization", HeaderValue::from_static("Bearer x.y.z"));
        let owned = own_headers(&h);
        assert_eq!(owned.len(), 3);
        assert_eq!(owned["authorization"], "Bearer x.y.z");
        assert_eq!(owned["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(owned["content-type"], "text/plain");
    }

    #[test]
    fn keeps_the_peer_address_and_the_upgrade_only() {
        let mut ext = Extensions::new();
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        ext.insert(ConnectInfo(peer));
        ext.insert(axum::extract::OriginalUri(Uri::from_static("/socket.io/")));
        let kept = kept_extensions(&mut ext);
        assert_eq!(
            kept.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
            Some(peer)
        );
        assert!(kept.get::<axum::extract::OriginalUri>().is_none());
        assert_eq!(kept.len(), 1);
    }
}
