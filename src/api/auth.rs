//! API-key authentication for `/api/v1`: `Authorization: Bearer <key>`,
//! compared in constant time against every configured key.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::Secret;
use crate::hub::Hub;

/// True when `presented` equals one of `keys`; every key is compared, in constant time.
pub fn key_matches(keys: &[Secret], presented: &str) -> bool {
    keys.iter().fold(false, |found, k| {
        let same: bool = k.expose().as_bytes().ct_eq(presented.as_bytes()).into();
        found | same
    })
}

pub async fn require_api_key(State(hub): State<Arc<Hub>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    match presented {
        Some(key) if key_matches(&hub.config.api_keys, key) => next.run(req).await,
        _ => {
            metrics::counter!("herald_api_unauthorized_total").increment(1);
            let mut res = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid API key is required",
            )
            .into_response();
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_any_configured_key_exactly() {
        let keys = vec![
            Secret::new("first-key-0123456789"),
            Secret::new("second-key-0123456789"),
        ];
        assert!(key_matches(&keys, "first-key-0123456789"));
        assert!(key_matches(&keys, "second-key-0123456789"));
        assert!(!key_matches(&keys, "first-key-012345678"));
        assert!(!key_matches(&keys, ""));
        assert!(!key_matches(&[], "anything"));
    }
}
