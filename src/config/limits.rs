//! `[limits]`, `[rate_limit]` and `[api_rate_limit]`: the caps that keep
//! one client, or a flood, from taking the server.

use serde::Deserialize;

use super::open_files::{self, MIN_MAX_CONNECTIONS};
use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub max_connections: Option<usize>,
    pub sockets_per_user: Option<usize>,
}

/// Caps that keep one client, or a flood, from taking the server.
#[derive(Debug, Clone, Copy)]
pub struct LimitsConfig {
    /// Open connections (HTTP connections plus connected sockets) past
    /// which new ones are refused; health checks keep a reserve above it.
    /// By default the open-file limit less a reserve (`open_files.rs`).
    pub max_connections: usize,
    /// Sockets one user may have at once, cluster-wide.
    pub sockets_per_user: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    pub per_second: Option<u32>,
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    pub per_second: u32,
    pub burst: u32,
}

impl LimitsFile {
    pub fn resolve(&self) -> Result<LimitsConfig, ConfigError> {
        let limits = LimitsConfig {
            max_connections: self
                .max_connections
                .unwrap_or_else(|| open_files::default_max_connections(open_files::current())),
            sockets_per_user: self.sockets_per_user.unwrap_or(100),
        };
        if limits.max_connections < MIN_MAX_CONNECTIONS {
            return Err(ConfigError::invalid(
                "limits.max_connections",
                format!("must be at least {MIN_MAX_CONNECTIONS}"),
            ));
        }
        if limits.sockets_per_user == 0 {
            return Err(ConfigError::invalid(
                "limits.sockets_per_user",
                "must be at least 1",
            ));
        }
        Ok(limits)
    }
}

impl RateLimitFile {
    /// The budget of `setting` (a socket's or an API key's), with its
    /// defaults.
    pub fn resolve(
        &self,
        setting: &str,
        per_second: u32,
        burst: u32,
    ) -> Result<RateLimitConfig, ConfigError> {
        let r = RateLimitConfig {
            per_second: self.per_second.unwrap_or(per_second),
            burst: self.burst.unwrap_or(burst),
        };
        if r.per_second == 0 || r.burst == 0 {
            return Err(ConfigError::invalid(
                setting,
                "per_second and burst must be positive",
            ));
        }
        Ok(r)
    }
}
