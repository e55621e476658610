//! The pages Herald serves to people: the operators' dashboard at `/admin`
//! (behind an admin key) and, with development credentials only, the
//! newcomers' try-it page at `/try`. Their files are embedded in the binary,
//! so nothing a page loads comes from anywhere but Herald.

pub(crate) mod admin;
mod admin_gate;
mod assets;
mod escalation;
mod overview;
mod shown;
mod stream;
mod try_page;

use std::sync::Arc;

use axum::Router;

use crate::hub::Hub;

/// The dashboard, and the try-it page when the JWT secret is a generated
/// development one (with a deployment's secret `/try` is a plain 404).
pub fn router(hub: Arc<Hub>) -> Router {
    let router = admin::router(hub.clone());
    if hub.config().jwt.development_secret {
        router.merge(try_page::router(hub))
    } else {
        router
    }
}
