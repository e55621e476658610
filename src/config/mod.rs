//! Herald's configuration: defaults < `herald.toml` < environment, resolved
//! and validated into one [`Config`] before anything starts.

pub mod audit;
mod cluster;
mod env;
pub mod escalation;
mod file;
mod files;
mod http;
mod jwt;
mod keys;
mod limits;
mod log;
pub mod open_files;
mod presence;
mod retention;
mod rooms;
mod secrets;
mod session;
mod socket;
mod tls;
mod values;
mod webrtc;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use audit::AuditConfig;
pub use cluster::ClusterConfig;
pub use env::apply_env;
pub use file::{FileConfig, DEVELOPMENT_HOST};
pub use files::FilesConfig;
pub use http::{HttpConfig, DEFAULT_CORS_ORIGINS};
pub use jwt::{JwtAlgorithm, JwtConfig};
pub use limits::{LimitsConfig, RateLimitConfig};
pub use log::{with_packet_crates_held, LogFormat};
pub use presence::{PresenceAudience, PresenceConfig};
pub use retention::RetentionConfig;
pub use rooms::RoomsConfig;
pub use secrets::Secret;
pub use session::{SessionConfig, SessionTimeouts};
pub use socket::SocketConfig;
pub use tls::Tls;
pub use values::parse_duration;
pub use webrtc::{IceServer, WebrtcConfig};

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
    /// The audit chain's signed checkpoints and their witnesses.
    pub audit: AuditConfig,
    /// `DATABASE_URL` (PostgreSQL); `None` keeps the store in SQLite in
    /// the data directory.
    pub database_url: Option<Secret>,
    pub cluster: ClusterConfig,
    pub presence: PresenceConfig,
    /// Study rooms (`join_room`): the `room_presence` window.
    pub rooms: RoomsConfig,
    /// Shared files: largest size, types, retention.
    pub files: FilesConfig,
    /// Calls: the ICE servers and TURN credentials handed to browsers.
    pub webrtc: WebrtcConfig,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub shutdown_timeout: Duration,
}

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
