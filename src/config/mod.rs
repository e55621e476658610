//! Herald's configuration: defaults < `herald.toml` < environment, resolved
//! and validated into one [`Config`] before anything starts.

mod env;
pub mod escalation;
mod file;
mod log;
mod secrets;
mod tls;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use env::apply_env;
pub use file::FileConfig;
pub use secrets::Secret;
pub use tls::Tls;

/// A configuration problem, naming the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting {setting}: {message}")]
    Invalid { setting: String, message: String },
    #[error("cannot prepare data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ConfigError {
    pub fn invalid(setting: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            setting: setting.to_string(),
            message: message.into(),
        }
    }
}

/// The JWT algorithms Herald accepts; the token's own header never picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

impl JwtAlgorithm {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "HS256" => Some(Self::Hs256),
            "HS384" => Some(Self::Hs384),
            "HS512" => Some(Self::Hs512),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub secret: Secret,
    pub algorithm: JwtAlgorithm,
    pub leeway: Duration,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    /// True when the secret was generated for development.
    pub development_secret: bool,
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

#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    pub per_second: u32,
    pub burst: u32,
}

/// Idle timeout and warning lead time of one class of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimeouts {
    pub idle_timeout: Duration,
    pub warning_before: Duration,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub default: SessionTimeouts,
    pub roles: HashMap<String, SessionTimeouts>,
}

impl SessionConfig {
    /// The timeouts that apply to a session of `role`.
    pub fn for_role(&self, role: &str) -> SessionTimeouts {
        self.roles.get(role).copied().unwrap_or(self.default)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RetentionConfig {
    pub acknowledged: Duration,
    pub unacknowledged: Duration,
}

/// Who hears a user's `presence` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceAudience {
    /// The sockets of the user's role (the default).
    Role,
    All,
    None,
}

#[derive(Debug, Clone, Copy)]
pub struct PresenceConfig {
    /// How long a user with no socket left stays online (a page reload).
    pub grace: Duration,
    pub audience: PresenceAudience,
}

/// Cluster mode: set by a Redis URL.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `REDIS_URL`; `None` runs a single node.
    pub redis_url: Option<Secret>,
    /// This node's name (`HERALD_NODE_ID`), unique in the cluster.
    pub node_id: String,
    /// A node silent this long is gone: its sockets leave every answer.
    pub node_timeout: Duration,
    /// How long a node waits for the others' answers before it answers
    /// `partial`.
    pub request_timeout: Duration,
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

/// Caps that keep one client, or a flood, from taking the server.
#[derive(Debug, Clone, Copy)]
pub struct LimitsConfig {
    /// Open connections (HTTP connections plus connected sockets) past
    /// which new ones are refused; health checks keep a reserve above it.
    pub max_connections: usize,
    /// Sockets one user may have at once, cluster-wide.
    pub sockets_per_user: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// HTTPS and WSS on the same port; `None` serves plain HTTP.
    pub tls: Option<Tls>,
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub jwt: JwtConfig,
    pub api_keys: Vec<Secret>,
    /// Keys of the operators' dashboard (`/admin`): `HERALD_ADMIN_KEYS`,
    /// else the API keys.
    pub admin_keys: Vec<Secret>,
    pub development_api_key: bool,
    pub cors_origins: Vec<String>,
    pub socket: SocketConfig,
    pub http: HttpConfig,
    pub limits: LimitsConfig,
    pub rate_limit: RateLimitConfig,
    /// Budget per API key.
    pub api_rate_limit: RateLimitConfig,
    pub session: SessionConfig,
    pub retention: RetentionConfig,
    /// The closed loop's escalation policies.
    pub escalation: escalation::EscalationConfig,
    /// `DATABASE_URL` (PostgreSQL); `None` keeps the store in SQLite in
    /// the data directory.
    pub database_url: Option<Secret>,
    pub cluster: ClusterConfig,
    pub presence: PresenceConfig,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub shutdown_timeout: Duration,
}

pub const DEFAULT_CORS_ORIGINS: [&str; 3] = [
    "http://localhost:3010",
    "http://localhost:5173",
    "http://localhost:3000",
];

impl Config {
    /// Loads `path` (or `herald.toml` when it exists), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut file = match path {
            Some(p) => FileConfig::read(p)?,
            None if Path::new("herald.toml").exists() => {
                FileConfig::read(Path::new("herald.toml"))?
            }
            None => FileConfig::default(),
        };
        apply_env(&mut file, |k| std::env::var(k).ok())?;
        file.resolve()
    }
}

/// Parses a human duration (`15m`, `90s`, `250ms`, `1h 30m`).
pub fn parse_duration(setting: &str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s.trim())
        .map_err(|e| ConfigError::invalid(setting, format!("{s:?} is not a duration ({e})")))
}
