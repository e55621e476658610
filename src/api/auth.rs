//! API-key authentication and per-key rate limits for `/api/v1`:
//! `Authorization: Bearer <key>`, compared in constant time against every
//! configured key; each key has its own token bucket.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::Secret;
use crate::connections::rate::TokenBucket;
use crate::hub::Hub;

/// The index of the key `presented` equals, comparing every key in constant time.
pub fn key_index(keys: &[Secret], presented: &str) -> Option<usize> {
    keys.iter().enumerate().fold(None, |found, (i, k)| {
        let same: bool = k.expose().as_bytes().ct_eq(presented.as_bytes()).into();
        if same {
            Some(i)
        } else {
            found
        }
    })
}

/// What the API key check needs: the hub, and one bucket per API key.
#[derive(Clone)]
pub struct Gate {
    hub: Arc<Hub>,
    buckets: Arc<Vec<Mutex<TokenBucket>>>,
}

impl Gate {
    pub fn new(hub: Arc<Hub>) -> Self {
        let now = hub.now();
        let burst = hub.config().api_rate_limit.burst;
        let buckets = hub
            .config()
            .api_keys
            .iter()
            .map(|_| Mutex::new(TokenBucket::new(burst, now)))
            .collect();
        Self {
            hub,
            buckets: Arc::new(buckets),
        }
    }
}

/// The key of an `Authorization: Bearer <key>` header.
pub fn presented(headers: &header::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
}

/// An API error answer with one extra header.
pub fn refuse(
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    extra: (header::HeaderName, &'static str),
) -> Response {
    let mut res = ApiError::new(status, code, message).into_response();
    res.headers_mut()
        .insert(extra.0, header::HeaderValue::from_static(extra.1));
    res
}

impl Gate {
    /// The `401` or `429` answer for `req`; `None` lets it through (the
    /// check of the [`crate::http::guard::Guard`] in front of the API).
    pub fn refusal(&self, req: &Request) -> Option<Response> {
        let keys = &self.hub.config().api_keys;
        let Some(i) = presented(req.headers()).and_then(|k| key_index(keys, k)) else {
            crate::observe::prometheus::api_unauthorized();
            return Some(refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid API key is required",
                (header::WWW_AUTHENTICATE, "Bearer"),
            ));
        };
        let limit = self.hub.config().api_rate_limit;
        let allowed =
            self.buckets[i]
                .lock()
                .try_take(self.hub.now(), limit.per_second, limit.burst);
        if !allowed {
            return Some(
                ApiError::rate_limited("too many requests for this API key; slow down")
                    .into_response(),
            );
        }
        None
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
        assert_eq!(key_index(&keys, "first-key-0123456789"), Some(0));
        assert_eq!(key_index(&keys, "second-key-0123456789"), Some(1));
        assert_eq!(key_index(&keys, "first-key-012345678"), None);
        assert_eq!(key_index(&keys, ""), None);
        assert_eq!(key_index(&[], "anything"), None);
    }
}
