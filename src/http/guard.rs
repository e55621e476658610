//! A tower service that answers a request itself when a check refuses it,
//! and otherwise passes it on: the origin check and the API key check.
//!
//! A plain service rather than `axum::middleware::from_fn`, which boxes and
//! clones the whole service stack under it on every request.
//!
//! A refused request that carries a body has it read (and thrown away)
//! before the answer goes: a server that answers and closes while the
//! client is still sending makes the kernel reset the connection, and the
//! client (a backend posting with a wrong key, say) sees a reset instead
//! of its 401. Past a bound in size or time the rest is not read, and the
//! answer says `Connection: close`.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use futures::future::Either;
use futures::StreamExt;
use tower::Service;

/// The most of a refused request's body read before answering.
const DRAIN_BYTES: usize = 4 << 20;

/// The longest a refused request's body is read for before answering.
const DRAIN_TIME: Duration = Duration::from_secs(5);

type Refused<E> =
    Either<Ready<Result<Response, E>>, Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>>;

/// Runs `check` on every request: `Some(response)` answers it, `None`
/// passes it to `inner`.
#[derive(Clone)]
pub struct Guard<S, F> {
    inner: S,
    check: F,
}

impl<S, F> Guard<S, F> {
    pub fn new(inner: S, check: F) -> Self {
        Self { inner, check }
    }
}

impl<S, F> Service<Request> for Guard<S, F>
where
    S: Service<Request, Response = Response>,
    S::Error: Send + 'static,
    F: Fn(&Request) -> Option<Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Refused<S::Error>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match (self.check)(&req) {
            Some(refusal) if req.body().is_end_stream() => {
                Either::Left(Either::Left(ready(Ok(refusal))))
            }
            Some(refusal) => Either::Left(Either::Right(Box::pin(async move {
                Ok(after_the_body(req, refusal).await)
            }))),
            None => Either::Right(self.inner.call(req)),
        }
    }
}

/// `refusal`, once `req`'s body is read to its end, or with `Connection:
/// close` when it is longer than [`DRAIN_BYTES`], takes longer than
/// [`DRAIN_TIME`] or fails.
async fn after_the_body(req: Request, mut refusal: Response) -> Response {
    let mut body = req.into_body().into_data_stream();
    let mut read = 0;
    let ended = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    read += bytes.len();
                    if read > DRAIN_BYTES {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    if !ended {
        refusal
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    refusal
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use tower::ServiceExt;

    #[tokio::test]
    async fn answers_refused_requests_and_passes_the_others() {
        let inner = tower::service_fn(|_: Request| async {
            Ok::<_, std::convert::Infallible>(StatusCode::OK.into_response())
        });
        let guard = Guard::new(inner, |req: &Request| {
            (req.uri().path() == "/no").then(|| StatusCode::FORBIDDEN.into_response())
        });
        let call = |path: &'static str| {
            let g = guard.clone();
            async move {
                g.oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(call("/no").await, StatusCode::FORBIDDEN);
        assert_eq!(call("/yes").await, StatusCode::OK);
    }

    /// A body whose chunks are counted as they are read.
    fn counted_body(
        chunks: usize,
        size: usize,
    ) -> (Body, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let read = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = read.clone();
        let stream = futures::stream::iter(0..chunks).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; size]))
        });
        (Body::from_stream(stream), read)
    }

    #[tokio::test]
    async fn a_refused_body_is_read_before_the_answer_up_to_a_bound() {
        use std::sync::atomic::Ordering;
        let inner = tower::service_fn(|_: Request| async {
            Ok::<_, std::convert::Infallible>(StatusCode::OK.into_response())
        });
        let guard = Guard::new(inner, |_: &Request| {
            Some(StatusCode::UNAUTHORIZED.into_response())
        });

        let (body, read) = counted_body(16, 64 << 10);
        let res = guard
            .clone()
            .oneshot(Request::post("/").body(body).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(read.load(Ordering::SeqCst), 16, "the whole body was read");
        assert!(
            res.headers().get(header::CONNECTION).is_none(),
            "the connection can stay"
        );

        let (body, read) = counted_body(1_000, 64 << 10);
        let res = guard
            .oneshot(Request::post("/").body(body).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let chunks = read.load(Ordering::SeqCst);
        assert!(
            chunks < 1_000 && chunks * (64 << 10) > DRAIN_BYTES,
            "read up to the bound: {chunks}"
        );
        assert_eq!(res.headers()[header::CONNECTION], "close");
    }
}
