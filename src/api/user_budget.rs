//! The per-user rate budget of the routes a user's JWT opens (a share in a
//! study room, a download): `files.rate_limit`, one token bucket per user
//! on each node, as the API keys have theirs. A user over budget gets `429
//! rate_limited` with `Retry-After` and nothing is done; other users are
//! not affected.

use std::sync::Arc;

use parking_lot::Mutex;

use super::error::ApiError;
use crate::clock::SharedClock;
use crate::config::RateLimitConfig;
use crate::connections::rate::Buckets;

/// The users' buckets, shared by the JWT routes of this node.
#[derive(Clone)]
pub struct UserBudget {
    buckets: Arc<Mutex<Buckets<Arc<str>>>>,
    clock: SharedClock,
}

impl UserBudget {
    pub fn new(limit: RateLimitConfig, clock: SharedClock) -> Self {
        let now = clock.now_ms();
        Self {
            buckets: Arc::new(Mutex::new(Buckets::new(limit.per_second, limit.burst, now))),
            clock,
        }
    }

    /// Counts one request of `user` (whose token was verified); the `429`
    /// when the user is over budget.
    pub fn take(&self, user: &Arc<str>) -> Result<(), ApiError> {
        if self.buckets.lock().try_take(user, self.clock.now_ms()) {
            Ok(())
        } else {
            Err(ApiError::rate_limited(
                "too many file requests for this user; slow down",
            ))
        }
    }
}
