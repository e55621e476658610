//! The shape of `herald.toml` (every field optional, unknown keys refused),
//! and its resolution into a validated [`Config`] with defaults filled in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::secrets::development_secret;
use super::{
    parse_duration, ClusterConfig, Config, ConfigError, HttpConfig, JwtAlgorithm, JwtConfig,
    LimitsConfig, LogFormat, PresenceAudience, PresenceConfig, RateLimitConfig, RetentionConfig,
    Secret, SessionConfig, SessionTimeouts, SocketConfig, DEFAULT_CORS_ORIGINS,
};

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
    pub escalation: super::escalation::EscalationFile,
}

/// `[tls]`: PEM files; both or neither.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub redis_url: Option<String>,
    pub node_id: Option<String>,
    pub node_timeout: Option<String>,
    pub request_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceFile {
    pub grace: Option<String>,
    pub audience: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtFile {
    pub secret: Option<String>,
    pub algorithm: Option<String>,
    pub leeway: Option<String>,
    pub audience: Option<String>,
    pub issuer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketFile {
    pub ping_interval: Option<String>,
    pub ping_timeout: Option<String>,
    pub max_payload: Option<u64>,
    pub max_buffer_size: Option<usize>,
    pub max_queued_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    pub header_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub server_names: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub max_connections: Option<usize>,
    pub sockets_per_user: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    pub per_second: Option<u32>,
    pub burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsFile {
    pub idle_timeout: Option<String>,
    pub warning_before: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFile {
    pub idle_timeout: Option<String>,
    pub warning_before: Option<String>,
    #[serde(default)]
    pub roles: HashMap<String, TimeoutsFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionFile {
    pub acknowledged: Option<String>,
    pub unacknowledged: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub format: Option<String>,
    pub level: Option<String>,
    /// Where `level` came from, for the error message: `log.level` unless
    /// the environment set it.
    #[serde(skip)]
    pub level_setting: Option<&'static str>,
}

fn duration_or(
    setting: &str,
    v: &Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    v.as_deref()
        .map_or(Ok(default), |s| parse_duration(setting, s))
}

/// `n` as a port: 1 to 65535, or 0 for a free port the system picks.
pub fn port(setting: &str, n: i64) -> Result<u16, ConfigError> {
    u16::try_from(n).map_err(|_| {
        ConfigError::invalid(
            setting,
            format!("{n} is out of range (1-65535, or 0 for any free port)"),
        )
    })
}

/// This machine's name as the kernel reports it, lowercase.
fn own_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// Keys of `setting` (blank entries dropped), each long enough not to be guessed.
fn keys(setting: &str, list: Option<Vec<String>>) -> Result<Vec<Secret>, ConfigError> {
    let keys = non_empty(list.unwrap_or_default());
    if keys.iter().any(|k| k.len() < 16) {
        return Err(ConfigError::invalid(
            setting,
            "each key must be at least 16 characters",
        ));
    }
    Ok(keys.into_iter().map(Secret::new).collect())
}

fn non_empty(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
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

    fn timeouts(
        prefix: &str,
        idle: &Option<String>,
        warning: &Option<String>,
        base: SessionTimeouts,
    ) -> Result<SessionTimeouts, ConfigError> {
        let t = SessionTimeouts {
            idle_timeout: duration_or(&format!("{prefix}idle_timeout"), idle, base.idle_timeout)?,
            warning_before: duration_or(
                &format!("{prefix}warning_before"),
                warning,
                base.warning_before,
            )?,
        };
        if t.idle_timeout.is_zero() {
            return Err(ConfigError::invalid(
                &format!("{prefix}idle_timeout"),
                "must be greater than zero",
            ));
        }
        if t.warning_before >= t.idle_timeout {
            return Err(ConfigError::invalid(
                &format!("{prefix}warning_before"),
                "must be shorter than idle_timeout",
            ));
        }
        Ok(t)
    }

    fn rate(
        setting: &str,
        f: &RateLimitFile,
        per_second: u32,
        burst: u32,
    ) -> Result<RateLimitConfig, ConfigError> {
        let r = RateLimitConfig {
            per_second: f.per_second.unwrap_or(per_second),
            burst: f.burst.unwrap_or(burst),
        };
        if r.per_second == 0 || r.burst == 0 {
            return Err(ConfigError::invalid(
                setting,
                "per_second and burst must be positive",
            ));
        }
        Ok(r)
    }

    fn http_settings(&self) -> Result<HttpConfig, ConfigError> {
        let http = HttpConfig {
            header_timeout: duration_or(
                "http.header_timeout",
                &self.http.header_timeout,
                Duration::from_secs(10),
            )?,
            idle_timeout: duration_or(
                "http.idle_timeout",
                &self.http.idle_timeout,
                Duration::from_secs(60),
            )?,
            body_timeout: duration_or(
                "http.body_timeout",
                &self.http.body_timeout,
                Duration::from_secs(30),
            )?,
            server_names: match &self.http.server_names {
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

    /// The store's URL and the cluster settings, checked together: a
    /// cluster needs PostgreSQL, or each node would keep its own inbox.
    fn cluster_settings(&self) -> Result<(Option<Secret>, ClusterConfig), ConfigError> {
        let database_url = self.database_url.as_deref().map(str::trim);
        if let Some(url) = database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::invalid(
                    "DATABASE_URL",
                    "must be a postgres:// URL (with none set, the store is SQLite in the data directory)",
                ));
            }
        }
        let redis_url = self.cluster.redis_url.as_deref().map(str::trim);
        if let Some(url) = redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::invalid("REDIS_URL", "must be a redis:// URL"));
            }
            if database_url.is_none() {
                return Err(ConfigError::invalid(
                    "REDIS_URL",
                    "cluster mode needs the store in PostgreSQL: set DATABASE_URL=postgres://... \
                     as well (with SQLite each node would keep its own inbox)",
                ));
            }
        }
        let node_id = match self.cluster.node_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => {
                if id.len() > 64
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                {
                    return Err(ConfigError::invalid(
                        "HERALD_NODE_ID",
                        "must be 1 to 64 characters from A-Z a-z 0-9 . _ -",
                    ));
                }
                id.to_string()
            }
            _ => format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        };
        let node_timeout = duration_or(
            "cluster.node_timeout",
            &self.cluster.node_timeout,
            Duration::from_secs(15),
        )?;
        if node_timeout < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "cluster.node_timeout",
                "must be at least 1s",
            ));
        }
        let request_timeout = duration_or(
            "cluster.request_timeout",
            &self.cluster.request_timeout,
            Duration::from_millis(500),
        )?;
        if request_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "cluster.request_timeout",
                "must be greater than zero",
            ));
        }
        Ok((
            database_url.map(Secret::new),
            ClusterConfig {
                redis_url: redis_url.map(Secret::new),
                node_id,
                node_timeout,
                request_timeout,
            },
        ))
    }

    /// Fills defaults, validates, and creates development secrets if needed.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let (database_url, cluster) = self.cluster_settings()?;
        let http = self.http_settings()?;
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("./data"));

        let algorithm = match self.jwt.algorithm.as_deref() {
            None => JwtAlgorithm::Hs256,
            Some(a) => JwtAlgorithm::parse(a).ok_or_else(|| {
                ConfigError::invalid(
                    "jwt.algorithm",
                    format!("{a:?} is not one of HS256, HS384, HS512"),
                )
            })?,
        };
        let (secret, development_secret_used) = match self.jwt.secret {
            Some(s) if s.len() < 16 => {
                return Err(ConfigError::invalid(
                    "JWT_SECRET",
                    "must be at least 16 characters",
                ))
            }
            Some(s) => (Secret::new(s), false),
            None => (development_secret(&data_dir, "dev-jwt-secret")?, true),
        };
        let jwt = JwtConfig {
            secret,
            algorithm,
            leeway: duration_or("jwt.leeway", &self.jwt.leeway, Duration::ZERO)?,
            audience: self.jwt.audience.filter(|s| !s.is_empty()),
            issuer: self.jwt.issuer.filter(|s| !s.is_empty()),
            development_secret: development_secret_used,
        };

        let configured = keys("HERALD_API_KEYS", self.api_keys)?;
        let development_api_key = configured.is_empty();
        let api_keys = if development_api_key {
            vec![development_secret(&data_dir, "dev-api-key")?]
        } else {
            configured
        };
        // The dashboard's keys; without any of its own, whoever holds an
        // API key may also watch and act on the dashboard.
        let admin_keys = match keys("HERALD_ADMIN_KEYS", self.admin_keys)? {
            own if own.is_empty() => api_keys.clone(),
            own => own,
        };

        let cors_origins = match self.cors_origins {
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

        let socket = SocketConfig {
            ping_interval: duration_or(
                "socket.ping_interval",
                &self.socket.ping_interval,
                Duration::from_secs(25),
            )?,
            ping_timeout: duration_or(
                "socket.ping_timeout",
                &self.socket.ping_timeout,
                Duration::from_secs(60),
            )?,
            max_payload: self.socket.max_payload.unwrap_or(1_000_000),
            max_buffer_size: self.socket.max_buffer_size.unwrap_or(1024),
            max_queued_bytes: self.socket.max_queued_bytes.unwrap_or(4 * 1024 * 1024),
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

        let limits = LimitsConfig {
            max_connections: self.limits.max_connections.unwrap_or(10_000),
            sockets_per_user: self.limits.sockets_per_user.unwrap_or(100),
        };
        if limits.max_connections < 16 {
            return Err(ConfigError::invalid(
                "limits.max_connections",
                "must be at least 16",
            ));
        }
        if limits.sockets_per_user == 0 {
            return Err(ConfigError::invalid(
                "limits.sockets_per_user",
                "must be at least 1",
            ));
        }

        let rate_limit = Self::rate("rate_limit", &self.rate_limit, 20, 50)?;
        let api_rate_limit = Self::rate("api_rate_limit", &self.api_rate_limit, 500, 1000)?;

        let default = Self::timeouts(
            "session.",
            &self.session.idle_timeout,
            &self.session.warning_before,
            SessionTimeouts {
                idle_timeout: Duration::from_secs(15 * 60),
                warning_before: Duration::from_secs(5 * 60),
            },
        )?;
        let mut roles = HashMap::new();
        for (role, t) in &self.session.roles {
            let prefix = format!("session.roles.{role}.");
            roles.insert(
                role.clone(),
                Self::timeouts(&prefix, &t.idle_timeout, &t.warning_before, default)?,
            );
        }

        let day = Duration::from_secs(24 * 3600);
        let retention = RetentionConfig {
            acknowledged: duration_or(
                "retention.acknowledged",
                &self.retention.acknowledged,
                30 * day,
            )?,
            unacknowledged: duration_or(
                "retention.unacknowledged",
                &self.retention.unacknowledged,
                30 * day,
            )?,
        };

        let presence = PresenceConfig {
            grace: duration_or(
                "presence.grace",
                &self.presence.grace,
                Duration::from_secs(5),
            )?,
            audience: match self.presence.audience.as_deref().unwrap_or("role") {
                "role" => PresenceAudience::Role,
                "all" => PresenceAudience::All,
                "none" => PresenceAudience::None,
                other => {
                    return Err(ConfigError::invalid(
                        "presence.audience",
                        format!("{other:?} is not role, all or none"),
                    ))
                }
            },
        };

        let log_format = match self.log.format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::invalid(
                    "log.format",
                    format!("{other:?} is not text or json"),
                ))
            }
        };

        let tls =
            match (&self.tls.cert, &self.tls.key) {
                (Some(cert), Some(key)) => Some(super::Tls::load(cert, key)?),
                (None, None) => None,
                (Some(_), None) => return Err(ConfigError::invalid(
                    "HERALD_TLS_KEY",
                    "is required with HERALD_TLS_CERT (tls.cert): the certificate's private key",
                )),
                (None, Some(_)) => {
                    return Err(ConfigError::invalid(
                        "HERALD_TLS_CERT",
                        "is required with HERALD_TLS_KEY (tls.key): the certificate chain",
                    ))
                }
            };

        Ok(Config {
            tls,
            host: self.host.unwrap_or_else(|| "0.0.0.0".into()),
            port: match self.port {
                Some(n) => port("port", n)?,
                None => 8001,
            },
            data_dir,
            jwt,
            api_keys,
            admin_keys,
            development_api_key,
            cors_origins,
            socket,
            http,
            limits,
            rate_limit,
            api_rate_limit,
            session: SessionConfig { default, roles },
            retention,
            escalation: self.escalation.resolve()?,
            database_url,
            cluster,
            presence,
            log_format,
            log_filter: match &self.log.level {
                Some(level) => {
                    super::log::level_filter(self.log.level_setting.unwrap_or("log.level"), level)?
                }
                None => "info".into(),
            },
            shutdown_timeout: duration_or(
                "shutdown_timeout",
                &self.shutdown_timeout,
                Duration::from_secs(10),
            )?,
        })
    }
}
