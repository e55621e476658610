//! The shape of `herald.toml` (every field optional, unknown keys refused),
//! and its resolution into a validated [`Config`] with defaults filled in:
//! each section resolves and validates itself, in its own module.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::audit::AuditFile;
use super::cluster::ClusterFile;
use super::escalation::EscalationFile;
use super::files::FilesFile;
use super::http::{cors_origins, HttpFile};
use super::jwt::JwtFile;
use super::keys::Keys;
use super::limits::{LimitsFile, RateLimitFile};
use super::log::LogFile;
use super::presence::PresenceFile;
use super::retention::RetentionFile;
use super::rooms::RoomsFile;
use super::session::SessionFile;
use super::socket::SocketFile;
use super::tls::TlsFile;
use super::values::{duration_or, port};
use super::webrtc::WebrtcFile;
use super::{Config, ConfigError};

/// Where Herald listens when `host` is not set: every interface, except
/// with development credentials (no JWT secret configured), where the
/// generated secret and the try-it page's token mint are for this machine
/// only, so the server is too.
fn default_host(development_credentials: bool) -> &'static str {
    if development_credentials {
        DEVELOPMENT_HOST
    } else {
        "0.0.0.0"
    }
}

/// The default `host` with development credentials: loopback.
pub const DEVELOPMENT_HOST: &str = "127.0.0.1";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub host: Option<String>,
    /// Wider than a port, so that an out-of-range number gets Herald's
    /// message rather than the TOML parser's.
    pub port: Option<i64>,
    pub data_dir: Option<PathBuf>,
    pub api_keys: Option<Vec<String>>,
    pub admin_keys: Option<Vec<String>>,
    pub cors_origins: Option<Vec<String>>,
    pub shutdown_timeout: Option<String>,
    pub database_url: Option<String>,
    #[serde(default)]
    pub cluster: ClusterFile,
    #[serde(default)]
    pub presence: PresenceFile,
    #[serde(default)]
    pub rooms: RoomsFile,
    #[serde(default)]
    pub files: FilesFile,
    #[serde(default)]
    pub webrtc: WebrtcFile,
    #[serde(default)]
    pub jwt: JwtFile,
    #[serde(default)]
    pub socket: SocketFile,
    #[serde(default)]
    pub http: HttpFile,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub rate_limit: RateLimitFile,
    #[serde(default)]
    pub api_rate_limit: RateLimitFile,
    #[serde(default)]
    pub session: SessionFile,
    #[serde(default)]
    pub retention: RetentionFile,
    #[serde(default)]
    pub log: LogFile,
    #[serde(default)]
    pub tls: TlsFile,
    #[serde(default)]
    pub escalation: EscalationFile,
    #[serde(default)]
    pub audit: AuditFile,
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Fills defaults, validates, and creates development secrets if needed.
    ///
    /// The sections are resolved in a fixed order, so that a file with
    /// several mistakes always reports the same one first.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let (database_url, cluster) = self.cluster.resolve(self.database_url.as_deref())?;
        let http = self.http.resolve()?;
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("./data"));
        let jwt = self.jwt.resolve(&data_dir)?;
        let keys = Keys::resolve(self.api_keys, self.admin_keys, &data_dir)?;
        let cors_origins = cors_origins(self.cors_origins)?;
        let socket = self.socket.resolve()?;
        let limits = self.limits.resolve()?;
        let rate_limit = self.rate_limit.resolve("rate_limit", 20, 50)?;
        let api_rate_limit = self.api_rate_limit.resolve("api_rate_limit", 500, 1000)?;
        let session = self.session.resolve()?;
        let retention = self.retention.resolve()?;
        let presence = self.presence.resolve()?;
        let rooms = self.rooms.resolve()?;
        let files = self.files.resolve()?;
        let webrtc = self.webrtc.resolve()?;
        let log_format = self.log.format()?;
        let tls = self.tls.resolve()?;
        let escalation = self.escalation.resolve()?;
        let audit = self
            .audit
            .resolve(&data_dir, escalation.webhook_secret.is_some())?;
        Ok(Config {
            tls,
            host: self
                .host
                .unwrap_or_else(|| default_host(jwt.development_secret).into()),
            port: match self.port {
                Some(n) => port("port", n)?,
                None => 8001,
            },
            data_dir,
            jwt,
            api_keys: keys.api,
            admin_keys: keys.admin,
            development_api_key: keys.development,
            cors_origins,
            socket,
            http,
            limits,
            rate_limit,
            api_rate_limit,
            session,
            retention,
            escalation,
            audit,
            database_url,
            cluster,
            presence,
            rooms,
            files,
            webrtc,
            log_format,
            log_filter: self.log.filter()?,
            shutdown_timeout: duration_or(
                "shutdown_timeout",
                &self.shutdown_timeout,
                Duration::from_secs(10),
            )?,
        })
    }
}
