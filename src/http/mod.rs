//! HTTP plumbing under every route: the accept loop, admission, request
//! head bounds and keep-alive of connections, the origin check and the
//! guard that answers refusals, the request observer, endpoints as data,
//! and the operations endpoints (health, readiness, metrics, OpenAPI).

pub mod admission;
pub mod guard;
pub mod head;
pub mod keepalive;
pub mod ops;
pub mod origin;
pub mod requests;
pub mod routes;
pub mod serve;
