//! `[socket]`: Engine.IO's heartbeat and the size limits of one socket's
//! messages and send buffer.

use std::time::Duration;

use serde::Deserialize;

use super::values::duration_or;
use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketFile {
    pub ping_interval: Option<String>,
    pub ping_timeout: Option<String>,
    pub max_payload: Option<u64>,
    pub max_buffer_size: Option<usize>,
    pub max_queued_bytes: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct SocketConfig {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_payload: u64,
    /// Packets queued per socket before a send is refused.
    pub max_buffer_size: usize,
    /// Bytes of live notifications one socket may have waiting for its
    /// full send buffer; past it the socket is dropped as too slow.
    pub max_queued_bytes: usize,
}

impl SocketFile {
    pub fn resolve(&self) -> Result<SocketConfig, ConfigError> {
        let socket = SocketConfig {
            ping_interval: duration_or(
                "socket.ping_interval",
                &self.ping_interval,
                Duration::from_secs(25),
            )?,
            ping_timeout: duration_or(
                "socket.ping_timeout",
                &self.ping_timeout,
                Duration::from_secs(60),
            )?,
            max_payload: self.max_payload.unwrap_or(1_000_000),
            max_buffer_size: self.max_buffer_size.unwrap_or(1024),
            max_queued_bytes: self.max_queued_bytes.unwrap_or(4 * 1024 * 1024),
        };
        if socket.max_queued_bytes < 64 * 1024 {
            return Err(ConfigError::invalid(
                "socket.max_queued_bytes",
                "must be at least 65536 bytes",
            ));
        }
        if socket.max_payload < 1024 {
            return Err(ConfigError::invalid(
                "socket.max_payload",
                "must be at least 1024 bytes",
            ));
        }
        if socket.max_buffer_size < 16 {
            return Err(ConfigError::invalid(
                "socket.max_buffer_size",
                "must be at least 16",
            ));
        }
        Ok(socket)
    }
}
