//! The admin key check in front of the dashboard's JSON routes:
//! `Authorization: Bearer <key>`, compared in constant time against every
//! configured admin key (the API keys when none are set). The page keeps
//! the key in its tab and sends it on every call, the stream too; it is
//! never a cookie (which another site's page could make the browser send)
//! and never in a URL (which would land in logs and history).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;

use crate::api::{key_index, presented, refuse};
use crate::hub::Hub;

/// What the admin key check needs.
#[derive(Clone)]
pub struct AdminGate {
    hub: Arc<Hub>,
}

impl AdminGate {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }

    /// The `401` for `req` without a valid admin key; `None` lets it through.
    pub fn refusal(&self, req: &Request) -> Option<Response> {
        let keys = &self.hub.config().admin_keys;
        if presented(req.headers())
            .and_then(|k| key_index(keys, k))
            .is_some()
        {
            return None;
        }
        crate::observe::prometheus::admin_unauthorized();
        Some(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin key is required",
            (header::WWW_AUTHENTICATE, "Bearer"),
        ))
    }
}
