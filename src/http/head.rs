//! What a request head may be before Herald serves it: its size, its
//! `Host` and its transfer coding.
//!
//! hyper's own bound is its read buffer, about 400 KB: a client that sends
//! a head that long and never finishes it held that much memory for the
//! header timeout, and a thousand of them held 400 MB. A head is bounded
//! to [`MAX_HEAD_BYTES`] instead, answered `431 Request Header Fields Too
//! Large` and closed past it, and the read buffer to [`MAX_BUF_BYTES`].
//!
//! hyper takes the rest of a head as it comes; [`refusal`] holds it to RFC
//! 9112 where Herald would otherwise guess: an HTTP/1.1 request names
//! exactly one `Host` (400 otherwise, §3.2; HTTP/1.0 may leave it out), and
//! the only transfer coding is `chunked` (501 for any other, §6.1: hyper
//! would undo the chunks and hand on a gzip body as if it were plain).

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode, Version};
use axum::response::Response;

/// Longest request head (request line and every header) served. A real
/// client's head is a few KiB: a browser's cookies for the host (4 KiB each
/// at most), an `Authorization: Bearer` token and a query token of 1 to
/// 2 KiB each; Node's own limit is 16 KiB, nginx's default
/// (`large_client_header_buffers 4 8k`) about 32 KiB.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Most bytes a connection reads ahead of what it has handled: a head
/// in progress, or the next piece of a body.
pub const MAX_BUF_BYTES: usize = 2 * MAX_HEAD_BYTES;

/// An HTTP/1 builder with these bounds.
pub fn builder() -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_BUF_BYTES);
    http
}

/// The answer to a request whose head Herald does not serve, if it is one.
/// Reads the headers in place: nothing is allocated for a request served.
pub fn refusal<B>(req: &Request<B>) -> Option<Response> {
    if req.version() == Version::HTTP_11 && req.headers().get_all(header::HOST).iter().count() != 1
    {
        return Some(refuse(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"code":"invalid_host","message":"an HTTP/1.1 request needs exactly one Host header"}}"#,
        ));
    }
    if !only_chunked(req.headers()) {
        return Some(refuse(
            StatusCode::NOT_IMPLEMENTED,
            r#"{"error":{"code":"unsupported_transfer_coding","message":"the only transfer coding served is chunked"}}"#,
        ));
    }
    None
}

/// Whether every transfer coding named is `chunked` (or none is).
fn only_chunked(headers: &HeaderMap) -> bool {
    headers.get_all(header::TRANSFER_ENCODING).iter().all(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .all(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
    })
}

/// A refusal that closes the connection: the body, if any, is not read, so
/// what follows the head cannot be told from the next request.
fn refuse(status: StatusCode, body: &'static str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONNECTION, "close")
        .body(Body::from(body))
        .expect("a static response")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get("/healthz").version(version);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn status(r: Request<()>) -> Option<u16> {
        refusal(&r).map(|r| r.status().as_u16())
    }

    #[test]
    fn an_http_1_1_request_names_exactly_one_host() {
        assert_eq!(status(req(Version::HTTP_11, &[("host", "h")])), None);
        assert_eq!(status(req(Version::HTTP_11, &[])), Some(400));
        let two = req(Version::HTTP_11, &[("host", "h"), ("host", "h")]);
        assert_eq!(status(two), Some(400));
        assert_eq!(status(req(Version::HTTP_10, &[])), None, "HTTP/1.0");
    }

    #[test]
    fn chunked_is_the_only_transfer_coding() {
        let te =
            |v: &'static str| req(Version::HTTP_11, &[("host", "h"), ("transfer-encoding", v)]);
        assert_eq!(status(te("chunked")), None);
        assert_eq!(status(te(" Chunked ")), None);
        for other in [
            "gzip, chunked",
            "gzip,chunked",
            "chunked, chunked, x",
            "identity",
        ] {
            assert_eq!(status(te(other)), Some(501), "{other}");
        }
        let two = req(
            Version::HTTP_11,
            &[
                ("host", "h"),
                ("transfer-encoding", "gzip"),
                ("transfer-encoding", "chunked"),
            ],
        );
        assert_eq!(status(two), Some(501));
    }
}
