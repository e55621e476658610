//! `[http]` and `cors_origins`: how the HTTP server treats its connections
//! (timeouts, the names it is reached by) and which browser origins it
//! answers.

use std::time::Duration;

use serde::Deserialize;

use super::values::{duration_or, non_empty};
use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    pub header_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub server_names: Option<Vec<String>>,
}

/// How the HTTP server treats its connections.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// A connection's first request must have its headers in within this.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in flight (an open long-poll
    /// is one) is closed after this.
    pub idle_timeout: Duration,
    /// An API request's body must have arrived within this of its head, or
    /// it is answered `408` and its connection closed.
    pub body_timeout: Duration,
    /// The names this server is reached by, lowercase: a request whose
    /// `Origin` is its own `Host` under one of these is same-origin.
    pub server_names: Vec<String>,
}

/// This machine's name as the kernel reports it, lowercase.
fn own_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

impl HttpFile {
    pub fn resolve(&self) -> Result<HttpConfig, ConfigError> {
        let http = HttpConfig {
            header_timeout: duration_or(
                "http.header_timeout",
                &self.header_timeout,
                Duration::from_secs(10),
            )?,
            idle_timeout: duration_or(
                "http.idle_timeout",
                &self.idle_timeout,
                Duration::from_secs(60),
            )?,
            body_timeout: duration_or(
                "http.body_timeout",
                &self.body_timeout,
                Duration::from_secs(30),
            )?,
            server_names: match &self.server_names {
                Some(names) => non_empty(names.clone())
                    .into_iter()
                    .map(|n| n.to_ascii_lowercase())
                    .collect(),
                None => own_hostname().into_iter().collect(),
            },
        };
        if let Some(bad) = http
            .server_names
            .iter()
            .find(|n| n.contains(|c: char| c == ':' || c == '/' || c.is_whitespace()))
        {
            return Err(ConfigError::invalid(
                "http.server_names",
                format!("{bad:?} is not a host name (no scheme, port or path)"),
            ));
        }
        for (setting, d) in [
            ("http.header_timeout", http.header_timeout),
            ("http.idle_timeout", http.idle_timeout),
            ("http.body_timeout", http.body_timeout),
        ] {
            if d < Duration::from_millis(100) {
                return Err(ConfigError::invalid(setting, "must be at least 100ms"));
            }
        }
        Ok(http)
    }
}

/// The browser origins allowed when `cors_origins` is not set: the usual
/// development servers.
pub const DEFAULT_CORS_ORIGINS: [&str; 3] = [
    "http://localhost:3010",
    "http://localhost:5173",
    "http://localhost:3000",
];

/// `cors_origins`: each an origin like `http://host:port`, or `*`.
pub fn cors_origins(list: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let cors_origins = match list {
        Some(list) => non_empty(list),
        None => DEFAULT_CORS_ORIGINS.iter().map(|s| s.to_string()).collect(),
    };
    if let Some(bad) = cors_origins
        .iter()
        .find(|o| *o != "*" && !(o.starts_with("http://") || o.starts_with("https://")))
    {
        return Err(ConfigError::invalid(
            "HERALD_CORS_ORIGINS",
            format!("{bad:?} is not an origin like http://host:port"),
        ));
    }
    Ok(cors_origins)
}
