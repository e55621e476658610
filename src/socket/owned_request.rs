//! Copies a Socket.IO request's URI and headers out of hyper's read buffer.
//!
//! hyper parses a request head without copying: header values and the URI
//! (and axum's `OriginalUri` extension, a clone of it) are slices of the
//! connection's read buffer (16 KiB once grown). socketioxide keeps each
//! socket's handshake `Parts` for the socket's life, so every connection
//! would pin that whole buffer. Owned copies of a few hundred bytes let the
//! buffer go as soon as hyper is done with it.

use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;

/// Replaces `headers` with copies that share no memory with the original buffer.
pub fn own_headers(headers: &HeaderMap) -> HeaderMap {
    let mut owned = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) else {
            continue;
        };
        owned.append(name, value);
    }
    owned
}

pub async fn own_request(mut req: Request, next: Next) -> Response {
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
        if let Ok(uri) = req.uri().to_string().parse::<Uri>() {
            // axum's router keeps the original URI in an extension too.
            if req.extensions().get::<OriginalUri>().is_some() {
                req.extensions_mut().insert(OriginalUri(uri.clone()));
            }
            *req.uri_mut() = uri;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_header_including_repeated_ones() {
        let mut h = HeaderMap::new();
        h.append("origin", HeaderValue::from_static("http://localhost:5173"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        let owned = own_headers(&h);
        assert_eq!(owned, h);
        assert_eq!(owned.get_all("x-forwarded-for").iter().count(), 2);
    }
}
