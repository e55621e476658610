//! Herald's HTTP endpoints as data: a method, a route template and a
//! handler each. The routers are built from these lists, the request
//! metrics label by the template, and a test holds the OpenAPI document to
//! the same lists, so the served routes and the documented ones cannot drift.

use axum::http::Method;
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tower::util::MapResponseLayer;

/// Where the backend's API is mounted (the request observer logs calls
/// under it at info level).
pub const API_PREFIX: &str = "/api/v1";

/// The route template of the endpoint that answered (`/api/v1/users/{user_id}`),
/// carried on its response for the request observer (`crate::http::requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTemplate(pub &'static str);

/// One endpoint: `method` on `path` (the full path, as clients see it).
pub struct Endpoint<S> {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<S>,
}

impl<S: Clone + Send + Sync + 'static> Endpoint<S> {
    pub fn new<H, T>(method: Method, path: &'static str, handler: H) -> Self
    where
        H: axum::handler::Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("{method} {path}: not a routable method"));
        let handler = on(filter, handler).layer(MapResponseLayer::new(move |mut res: Response| {
            res.extensions_mut().insert(RouteTemplate(path));
            res
        }));
        Self {
            method,
            path,
            handler,
        }
    }

    /// Lifts the API's body limit for this endpoint, which enforces its
    /// own while it streams (file uploads, `files.max_size`).
    pub fn unlimited_body(mut self) -> Self {
        self.handler = self
            .handler
            .layer(axum::extract::DefaultBodyLimit::disable());
        self
    }

    pub fn get<H: axum::handler::Handler<T, S>, T: 'static>(path: &'static str, h: H) -> Self {
        Self::new(Method::GET, path, h)
    }

    pub fn post<H: axum::handler::Handler<T, S>, T: 'static>(path: &'static str, h: H) -> Self {
        Self::new(Method::POST, path, h)
    }

    pub fn put<H: axum::handler::Handler<T, S>, T: 'static>(path: &'static str, h: H) -> Self {
        Self::new(Method::PUT, path, h)
    }

    pub fn delete<H: axum::handler::Handler<T, S>, T: 'static>(path: &'static str, h: H) -> Self {
        Self::new(Method::DELETE, path, h)
    }
}

/// A router serving `endpoints`, each at its path with `prefix` taken off
/// (the router is nested under `prefix`; `""` for one at the root).
///
/// # Panics
/// When an endpoint's path does not start with `prefix`, or two endpoints
/// share a method and a path: both are programming errors, found by any
/// test that builds the app.
pub fn router<S: Clone + Send + Sync + 'static>(
    prefix: &str,
    endpoints: Vec<Endpoint<S>>,
) -> Router<S> {
    endpoints.into_iter().fold(Router::new(), |router, e| {
        let path = e
            .path
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{} is not under {prefix}", e.path));
        router.route(path, e.handler)
    })
}

/// `(method, path)` of each endpoint, for the OpenAPI check.
pub fn listed<S>(endpoints: &[Endpoint<S>]) -> Vec<(Method, &'static str)> {
    endpoints
        .iter()
        .map(|e| (e.method.clone(), e.path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::StatusCode;
    use tower::ServiceExt;

    #[tokio::test]
    async fn the_router_serves_each_endpoint_and_marks_its_template() {
        let endpoints = vec![
            Endpoint::new(Method::GET, "/api/v1/things/{id}", || async { "got" }),
            Endpoint::new(Method::DELETE, "/api/v1/things/{id}", || async { "gone" }),
        ];
        assert_eq!(
            listed(&endpoints),
            vec![
                (Method::GET, "/api/v1/things/{id}"),
                (Method::DELETE, "/api/v1/things/{id}")
            ]
        );
        let app = Router::new().nest("/api/v1", router("/api/v1", endpoints));
        let call = |method: Method, path: &str| {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(req)
        };
        let res = call(Method::DELETE, "/api/v1/things/7").await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.extensions().get::<RouteTemplate>(),
            Some(&RouteTemplate("/api/v1/things/{id}"))
        );
        let res = call(Method::POST, "/api/v1/things/7").await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        let res = call(Method::GET, "/api/v1/other").await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.extensions().get::<RouteTemplate>(), None);
    }

    #[test]
    #[should_panic(expected = "is not under")]
    fn an_endpoint_outside_the_prefix_is_refused() {
        let _ = router::<()>(
            "/api/v1",
            vec![Endpoint::new(Method::GET, "/healthz", || async { "" })],
        );
    }
}
