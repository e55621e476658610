//! The one way a handler takes ids from its URL path: every `{param}` of
//! the route is checked with [`path_id`] before the handler runs, so no
//! route can hand a store a NUL, a control character or an over-long id
//! (PostgreSQL refuses a NUL in text, which would read as a store outage).

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::{path_id, ApiError};

/// The path parameters of a route as `T` (a `String`, or a tuple of them in
/// the template's order), each one a valid id. A handler takes this, never
/// axum's `Path` (clippy.toml forbids it), so a new route cannot forget
/// the check.
pub struct PathIds<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathIds<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Not UTF-8 once percent-decoded: no id can be that.
        let not_text = || ApiError::bad_request("invalid_id", "a path id is not UTF-8");
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| not_text())?;
        for (name, value) in &raw {
            path_id(contract_name(name), value)?;
        }
        #[allow(clippy::disallowed_types)] // the one place that reads a path
        let ids = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|_| not_text())?;
        Ok(PathIds(ids.0))
    }
}

/// A route parameter by the name the contract gives it in messages.
fn contract_name(param: &str) -> &str {
    match param {
        "user_id" => "userId",
        "session_id" => "sessionId",
        "id" => "notificationId",
        "file_id" => "fileId",
        other => other,
    }
}
