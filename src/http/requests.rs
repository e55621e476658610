//! The observer of every HTTP request that is not Socket.IO (the API and the
//! ops routes): a request id (taken from `X-Request-Id` when the caller sent
//! a sane one, else made here) on every log line written while the request
//! is handled and on the response, one access line, and the request metrics
//! by method, route template and status.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::response::Response;
use tower::Service;
use tracing::Instrument;

use crate::http::routes::RouteTemplate;

/// The header that carries the request id both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest request id taken from a caller.
const MAX_ID_LEN: usize = 64;

/// The route label of a request no endpoint answered (unknown paths, and
/// requests refused before routing: a missing API key, the rate limit).
pub const UNMATCHED: &str = "unmatched";

/// The caller's request id when it is 1 to 64 characters of `A-Z a-z 0-9 . _ -`
/// (anything else could forge log lines or carry a secret), else a new one.
pub fn request_id(req: &Request) -> HeaderValue {
    let sent = req
        .headers()
        .get(REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= MAX_ID_LEN
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
        })
        .cloned();
    sent.unwrap_or_else(|| {
        let id = format!("{:016x}", rand::random::<u64>());
        HeaderValue::from_str(&id).expect("hex digits are a header value")
    })
}

/// A method label from a fixed set: a client may send any token as a method.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `inner` with every request observed.
#[derive(Clone)]
pub struct Observed<S> {
    inner: S,
}

impl<S> Observed<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S> Service<Request> for Observed<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id(&req);
        let method = method_label(req.method());
        // The path without its query (which may carry a disconnect reason
        // or other caller text); the API never takes a secret in the path.
        let path = req.uri().path().to_owned();
        let span = tracing::info_span!("request", id = id.to_str().unwrap_or_default());
        let answer = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let Ok(mut res) = answer.await;
                let route = res
                    .extensions()
                    .get::<RouteTemplate>()
                    .map_or(UNMATCHED, |r| r.0);
                let status = res.status().as_u16();
                let elapsed = started.elapsed();
                crate::observe::prometheus::http_request(method, route, status, elapsed);
                // The API's calls are the log's business; probes and
                // scrapes every few seconds would drown them.
                if path.starts_with(crate::http::routes::API_PREFIX) {
                    tracing::info!(target: "herald::http", method, path, route, status, ms = elapsed.as_secs_f64() * 1e3, "request");
                } else {
                    tracing::debug!(target: "herald::http", method, path, route, status, ms = elapsed.as_secs_f64() * 1e3, "request");
                }
                res.headers_mut().insert(REQUEST_ID, id);
                Ok(res)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn with_id(id: Option<&str>) -> Request {
        let mut b = Request::get("/api/v1/users");
        if let Some(id) = id {
            b = b.header(REQUEST_ID, id);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn a_sane_caller_id_is_kept_and_anything_else_replaced() {
        assert_eq!(request_id(&with_id(Some("pacs-42.a_b"))), "pacs-42.a_b");
        for bad in ["", "has space", "quote\"", &"x".repeat(65), "é"] {
            let id = request_id(&with_id(Some(bad)));
            assert_ne!(id, bad);
            assert_eq!(id.len(), 16, "{id:?}");
        }
        let (a, b) = (request_id(&with_id(None)), request_id(&with_id(None)));
        assert!(a.to_str().unwrap().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn methods_outside_the_fixed_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
