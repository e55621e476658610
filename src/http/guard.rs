//! A tower service that answers a request itself when a check refuses it,
//! and otherwise passes it on: the origin check and the API key check.
//!
//! A plain service rather than `axum::middleware::from_fn`, which boxes and
//! clones the whole service stack under it on every request.

use std::future::{ready, Ready};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use futures::future::Either;
use tower::Service;

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
    F: Fn(&Request) -> Option<Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match (self.check)(&req) {
            Some(refusal) => Either::Left(ready(Ok(refusal))),
            None => Either::Right(self.inner.call(req)),
        }
    }
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
}
