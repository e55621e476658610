//! What a request head may be before Herald serves it: its size.
//!
//! hyper's own bound is its read buffer, about 400 KB: a client that sends
//! a head that long and never finishes it held that much memory for the
//! header timeout, and a thousand of them held 400 MB. A head is bounded
//! to [`MAX_HEAD_BYTES`] instead, answered `431 Request Header Fields Too
//! Large` and closed past it, and the read buffer to [`MAX_BUF_BYTES`].

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
