//! The whole HTTP application as one service: Socket.IO, the API, the
//! pages and the operations endpoints behind the origin check and CORS.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use tower::util::{MapRequest, MapResponse};
use tower::{Layer, Service};

use crate::http::guard::Guard;
use crate::hub::Hub;
use crate::{api, http::ops, http::origin, http::requests, socketio, web};

/// The whole HTTP application: Socket.IO, the API and the ops endpoints
/// (each request of those two observed: request id, access line, metrics),
/// behind the origin check and CORS.
///
/// The layers wrap the router as one service. `Router::layer` would wrap
/// every route and the fallback instead, and axum clones a route's whole
/// service stack (the CORS settings, the Socket.IO service) for every
/// request; `from_fn` middleware would box and clone the stack under it
/// (the origin check is a [`Guard`] for that reason).
pub fn app(
    hub: Arc<Hub>,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
       + Clone
       + Send
       + Sync
       + 'static {
    let origins = Arc::new(
        origin::Origins::new(&hub.config().cors_origins)
            .with_server_names(&hub.config().http.server_names)
            .logging_with(hub.clock()),
    );
    let io_layer = socketio::layer(hub.clone());
    let router = requests::Observed::new(
        Router::new()
            .merge(api::router(hub.clone()))
            .merge(web::router(hub.clone()))
            .merge(ops::router(hub)),
    );
    let io = MapResponse::new(io_layer.layer(router), |r: http::Response<_>| {
        r.map(Body::new)
    });
    let owned = MapRequest::new(io, socketio::own_request);
    let cors = origins.cors_layer().layer(owned);
    Guard::new(cors, move |req: &Request| origin::refusal(&origins, req))
}
