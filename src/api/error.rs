//! API errors and bodies: every refusal is `{ "error": { code, message } }`
//! with the right status, and JSON bodies are read with Herald's own limits
//! and messages (400 for bad JSON or types, 413 for oversize or for more
//! JSON values than `budget.rs` allows, 408 for a body that does not arrive
//! within `http.body_timeout`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::hub::{Hub, HubError};

/// Largest accepted request body.
pub const MAX_BODY: usize = 1_000_000;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// `429 rate_limited`, with `Retry-After`: a caller over its budget
    /// (an API key's, a user's); nothing was done.
    pub fn rate_limited(message: impl Into<String>) -> Self {
        crate::observe::prometheus::api_rate_limited();
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    }
}

/// Seconds a caller is asked to wait before retrying a write the store
/// refused, or a request over its budget (every budget refills at least
/// one request a second).
const RETRY_AFTER: &str = "1";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        let mut res = (self.status, body).into_response();
        // A body cut off by its timeout (or its size limit) leaves the rest
        // of it on the connection, where it would be read as the next
        // request's head.
        if self.status == StatusCode::REQUEST_TIMEOUT
            || self.status == StatusCode::PAYLOAD_TOO_LARGE
        {
            res.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        // An unavailable or saturated store is usually back within moments,
        // and a budget refills within a second: a caller that honours
        // Retry-After spreads its retries out.
        if self.code == "store_unavailable" || self.status == StatusCode::TOO_MANY_REQUESTS {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER),
            );
        }
        res
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::Store(e) => {
                tracing::error!(error = %e, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the notification store is unavailable; nothing was stored",
                )
            }
            HubError::Invalid(e) => Self::bad_request("invalid_notification", e.to_string()),
            HubError::BadRequest(m) => Self::bad_request("invalid_request", m),
            HubError::NotFound(m) => Self::not_found(m),
            HubError::Forbidden(m) => Self::new(StatusCode::CONFLICT, "session_expired", m),
        }
    }
}

impl From<super::depth::TooDeep> for ApiError {
    fn from(_: super::depth::TooDeep) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_too_deep",
            format!(
                "body nests arrays and objects more than {} levels deep",
                super::depth::MAX_DEPTH
            ),
        )
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        HubError::from(e).into()
    }
}

/// A JSON body of type `T`, with contract errors for every way it can be wrong.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    Arc<Hub>: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // A request is in flight from its head on, so neither the header nor
        // the idle timeout of its connection runs while its body trickles in.
        let limit = Arc::<Hub>::from_ref(state).config().http.body_timeout;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("body exceeds {MAX_BODY} bytes"),
            )
        };
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY) {
            return Err(too_large());
        }
        let read = tokio::time::timeout(limit, Bytes::from_request(req, state)).await;
        let bytes = read.map_err(|_| body_timeout(limit))?.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("invalid_body", "could not read the request body")
            }
        })?;
        super::depth::check(&bytes)?;
        if super::budget::too_many_values(&bytes) {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_values",
                format!(
                    "body holds more than {} JSON values",
                    super::budget::MAX_VALUES
                ),
            ));
        }
        // One pass for a good body; a bad one is parsed again in two steps,
        // so that bad JSON and a wrong shape get their own errors.
        if let Ok(body) = serde_json::from_slice(&bytes) {
            return Ok(Body(body));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("body is not valid JSON: {e}"))
        })?;
        serde_json::from_value(value).map(Body).map_err(|e| {
            ApiError::bad_request("invalid_payload", format!("body has the wrong shape: {e}"))
        })
    }
}

/// The answer to a body that did not arrive within `limit` of its head.
fn body_timeout(limit: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        format!("the request body did not arrive within {limit:?}"),
    )
}

/// Query parameters of type `T`; a malformed query is a JSON 400.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// Checks an id taken from a URL path.
pub fn path_id(kind: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > crate::auth::MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_id",
            format!("{kind} is not a valid id"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn an_unavailable_store_is_a_503_that_says_when_to_retry() {
        let res = ApiError::from(StoreError::Unavailable("saturated".into())).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let retry = res.headers().get(axum::http::header::RETRY_AFTER);
        assert_eq!(retry.and_then(|v| v.to_str().ok()), Some("1"));
        let other = ApiError::bad_request("invalid_request", "no").into_response();
        assert!(other
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .is_none());
    }
}
