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
//! reads ([`KEPT_HEADERS`]) and, for a websocket, hyper's upgrade handle:
//! about 1 KiB less per socket.
//!
//! The peer's address rides in the kept URI's authority
//! (`http://203.0.113.7:51234/socket.io/?...`), read back by [`peer`]: the
//! request's extension map would hold it at ~220 bytes per socket for the
//! socket's life, the authority at 16-48 (the text of the address). The
//! authority is always Herald's own: a client's absolute-form URI loses its
//! authority here.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::request::Parts;
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

/// The extensions read after this step: hyper's upgrade handle, for a
/// websocket (Engine.IO takes it out before it keeps the rest; nothing at
/// all is kept for a polling request, so no extension map is allocated).
fn kept_extensions(extensions: &mut Extensions, websocket: bool) -> Extensions {
    let mut kept = Extensions::new();
    if websocket {
        if let Some(upgrade) = extensions.remove::<hyper::upgrade::OnUpgrade>() {
            kept.insert(upgrade);
        }
    }
    kept
}

/// The transport a request asks for, read as Engine.IO reads it (the first
/// `transport=` item, its value up to the next `=`).
fn transport(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find(|kv| kv.starts_with("transport="))?
        .split('=')
        .nth(1)
}

/// An owned copy of `uri`'s path and query, with `peer` as its authority.
/// A URI that cannot be rebuilt (none can: both parts were parsed already)
/// becomes `/`, which no route serves (404), rather than keep a client's
/// authority.
fn uri_with_peer(uri: &Uri, peer: Option<SocketAddr>) -> Uri {
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut builder = Uri::builder();
    if let Some(peer) = peer {
        // From a `&str`: one copy of exactly its length.
        builder = builder.scheme("http").authority(peer.to_string().as_str());
    }
    builder
        .path_and_query(path_and_query)
        .build()
        .unwrap_or_else(|_| Uri::from_static("/"))
}

/// The peer's address, from a kept request's URI (see the module's text).
pub fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts.uri.authority()?.as_str().parse().ok()
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
        let websocket = transport(req.uri()) == Some("websocket");
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let extensions = kept_extensions(req.extensions_mut(), websocket);
        *req.extensions_mut() = extensions;
        *req.uri_mut() = uri_with_peer(req.uri(), peer);
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

    fn opening(uri: &str, peer: Option<&str>) -> Parts {
        let mut req = Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        if let Some(p) = peer {
            let p: SocketAddr = p.parse().unwrap();
            req.extensions_mut().insert(ConnectInfo(p));
        }
        req.extensions_mut()
            .insert(axum::extract::OriginalUri(Uri::from_static("/socket.io/")));
        own_request(req).into_parts().0
    }

    #[test]
    fn the_peer_rides_in_the_uri_and_no_extension_is_kept() {
        for addr in ["127.0.0.1:4000", "[2001:db8::7]:51234"] {
            let parts = opening(
                "/socket.io/?EIO=4&transport=polling&token=a.b.c",
                Some(addr),
            );
            assert_eq!(peer(&parts), Some(addr.parse().unwrap()));
            assert_eq!(parts.uri.path(), "/socket.io/");
            assert_eq!(
                parts.uri.query(),
                Some("EIO=4&transport=polling&token=a.b.c")
            );
            assert!(parts.extensions.is_empty());
        }
    }

    #[test]
    fn a_clients_absolute_uri_does_not_name_the_peer() {
        let forged = "http://198.51.100.1:9/socket.io/?EIO=4&transport=polling";
        let parts = opening(forged, Some("127.0.0.1:4000"));
        assert_eq!(peer(&parts), Some("127.0.0.1:4000".parse().unwrap()));
        let parts = opening(forged, None);
        assert_eq!(peer(&parts), None);
        assert_eq!(parts.uri.query(), Some("EIO=4&transport=polling"));
    }

    #[test]
    fn requests_of_an_open_session_pass_as_they_are() {
        let parts = opening(
            "/socket.io/?EIO=4&transport=polling&sid=abc",
            Some("127.0.0.1:4000"),
        );
        assert_eq!(peer(&parts), None);
        assert_eq!(parts.extensions.len(), 2);
    }

    #[test]
    fn the_transport_is_read_as_engine_io_reads_it() {
        let t = |q: &str| transport(&q.parse::<Uri>().unwrap()).map(str::to_string);
        assert_eq!(
            t("/socket.io/?EIO=4&transport=websocket").as_deref(),
            Some("websocket")
        );
        assert_eq!(
            t("/socket.io/?transport=websocket=x").as_deref(),
            Some("websocket")
        );
        assert_eq!(
            t("/socket.io/?transport=polling&transport=websocket").as_deref(),
            Some("polling")
        );
        assert_eq!(t("/socket.io/?EIO=4"), None);
        assert_eq!(t("/socket.io/"), None);
    }

    /// Other extensions go; that the upgrade handle stays for a websocket is
    /// shown end to end (hyper cannot make one here): every websocket test
    /// of this repository opens through this step.
    #[test]
    fn nothing_but_the_upgrade_handle_is_kept() {
        let mut ext = Extensions::new();
        ext.insert(axum::extract::OriginalUri(Uri::from_static("/socket.io/")));
        assert!(kept_extensions(&mut ext, true).is_empty());
        assert!(kept_extensions(&mut ext, false).is_empty());
        assert_eq!(ext.len(), 1);
    }
}
