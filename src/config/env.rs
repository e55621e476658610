//! The environment layer: `JWT_SECRET` and the `HERALD_*` variables, applied
//! over whatever `herald.toml` said.

use super::session::TimeoutsFile;
use super::{ConfigError, FileConfig};

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn number<T: std::str::FromStr>(name: &str, s: &str) -> Result<T, ConfigError> {
    s.trim()
        .parse()
        .map_err(|_| ConfigError::invalid(name, format!("{s:?} is not a valid number")))
}

/// Applies environment variables (read through `get`) onto `file`.
pub fn apply_env(
    file: &mut FileConfig,
    get: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    if let Some(v) = var("JWT_SECRET") {
        file.jwt.secret = Some(v);
    }
    if let Some(v) = var("HERALD_JWT_ALGORITHM") {
        file.jwt.algorithm = Some(v);
    }
    if let Some(v) = var("HERALD_JWT_LEEWAY") {
        file.jwt.leeway = Some(v);
    }
    if let Some(v) = var("HERALD_JWT_AUDIENCE") {
        file.jwt.audience = Some(v);
    }
    if let Some(v) = var("HERALD_JWT_ISSUER") {
        file.jwt.issuer = Some(v);
    }
    if let Some(v) = var("HERALD_API_KEYS") {
        file.api_keys = Some(list(&v));
    }
    if let Some(v) = var("HERALD_ADMIN_KEYS") {
        file.admin_keys = Some(list(&v));
    }
    if let Some(v) = var("HERALD_HOST") {
        file.host = Some(v);
    }
    if let Some(v) = var("HERALD_PORT") {
        let n: i64 = v.trim().parse().map_err(|_| {
            ConfigError::invalid("HERALD_PORT", format!("{v:?} is not a port number"))
        })?;
        file.port = Some(super::values::port("HERALD_PORT", n)?.into());
    }
    if let Some(v) = var("HERALD_DATA_DIR") {
        file.data_dir = Some(v.into());
    }
    if let Some(v) = var("HERALD_CORS_ORIGINS") {
        file.cors_origins = Some(list(&v));
    }
    if let Some(v) = var("HERALD_PING_INTERVAL") {
        file.socket.ping_interval = Some(v);
    }
    if let Some(v) = var("HERALD_PING_TIMEOUT") {
        file.socket.ping_timeout = Some(v);
    }
    if let Some(v) = var("HERALD_MAX_PAYLOAD") {
        file.socket.max_payload = Some(number("HERALD_MAX_PAYLOAD", &v)?);
    }
    if let Some(v) = var("HERALD_MAX_BUFFER_SIZE") {
        file.socket.max_buffer_size = Some(number("HERALD_MAX_BUFFER_SIZE", &v)?);
    }
    if let Some(v) = var("HERALD_HTTP_HEADER_TIMEOUT") {
        file.http.header_timeout = Some(v);
    }
    if let Some(v) = var("HERALD_HTTP_IDLE_TIMEOUT") {
        file.http.idle_timeout = Some(v);
    }
    if let Some(v) = var("HERALD_HTTP_BODY_TIMEOUT") {
        file.http.body_timeout = Some(v);
    }
    if let Some(v) = var("HERALD_SERVER_NAMES") {
        file.http.server_names = Some(list(&v));
    }
    if let Some(v) = var("HERALD_MAX_CONNECTIONS") {
        file.limits.max_connections = Some(number("HERALD_MAX_CONNECTIONS", &v)?);
    }
    if let Some(v) = var("HERALD_SOCKETS_PER_USER") {
        file.limits.sockets_per_user = Some(number("HERALD_SOCKETS_PER_USER", &v)?);
    }
    if let Some(v) = var("HERALD_MAX_QUEUED_BYTES") {
        file.socket.max_queued_bytes = Some(number("HERALD_MAX_QUEUED_BYTES", &v)?);
    }
    if let Some(v) = var("HERALD_RATE_LIMIT_PER_SECOND") {
        file.rate_limit.per_second = Some(number("HERALD_RATE_LIMIT_PER_SECOND", &v)?);
    }
    if let Some(v) = var("HERALD_RATE_LIMIT_BURST") {
        file.rate_limit.burst = Some(number("HERALD_RATE_LIMIT_BURST", &v)?);
    }
    if let Some(v) = var("HERALD_API_RATE_LIMIT_PER_SECOND") {
        file.api_rate_limit.per_second = Some(number("HERALD_API_RATE_LIMIT_PER_SECOND", &v)?);
    }
    if let Some(v) = var("HERALD_API_RATE_LIMIT_BURST") {
        file.api_rate_limit.burst = Some(number("HERALD_API_RATE_LIMIT_BURST", &v)?);
    }
    if let Some(v) = var("HERALD_SESSION_IDLE_TIMEOUT") {
        file.session.idle_timeout = Some(v);
    }
    if let Some(v) = var("HERALD_SESSION_WARNING_BEFORE") {
        file.session.warning_before = Some(v);
    }
    if let Some(v) = var("HERALD_SESSION_ROLES") {
        // technologist=5m/1m,radiologist=30m/5m
        for entry in list(&v) {
            let (role, times) = entry.split_once('=').ok_or_else(|| {
                ConfigError::invalid(
                    "HERALD_SESSION_ROLES",
                    format!("{entry:?} is not role=idle/warning"),
                )
            })?;
            let (idle, warning) = match times.split_once('/') {
                Some((i, w)) => (Some(i.to_string()), Some(w.to_string())),
                None => (Some(times.to_string()), None),
            };
            file.session.roles.insert(
                role.trim().to_string(),
                TimeoutsFile {
                    idle_timeout: idle,
                    warning_before: warning,
                },
            );
        }
    }
    if let Some(v) = var("HERALD_RETENTION_ACKNOWLEDGED") {
        file.retention.acknowledged = Some(v);
    }
    if let Some(v) = var("HERALD_RETENTION_UNACKNOWLEDGED") {
        file.retention.unacknowledged = Some(v);
    }
    if let Some(v) = var("HERALD_LOG_FORMAT") {
        file.log.format = Some(v);
    }
    // HERALD_LOG wins over RUST_LOG, which a Rust developer may have set
    // for everything they run.
    for name in ["HERALD_LOG", "RUST_LOG"] {
        if let Some(v) = var(name) {
            file.log.level = Some(v);
            file.log.level_setting = Some(name);
            break;
        }
    }
    if let Some(v) = var("DATABASE_URL") {
        file.database_url = Some(v);
    }
    if let Some(v) = var("HERALD_ESCALATION_WEBHOOK_SECRET") {
        file.escalation.webhook_secret = Some(v);
    }
    if let Some(v) = var("HERALD_AUDIT_SIGNING_KEY") {
        file.audit.signing_key = Some(v);
    }
    if let Some(v) = var("HERALD_AUDIT_CHECKPOINT_INTERVAL") {
        file.audit.checkpoint_interval = Some(v);
    }
    if let Some(v) = var("HERALD_AUDIT_CHECKPOINT_WEBHOOK") {
        file.audit.checkpoint_webhook = Some(v);
    }
    if let Some(v) = var("HERALD_AUDIT_CHECKPOINT_FILE") {
        file.audit.checkpoint_file = Some(v.into());
    }
    if let Some(v) = var("REDIS_URL") {
        file.cluster.redis_url = Some(v);
    }
    if let Some(v) = var("HERALD_NODE_ID") {
        file.cluster.node_id = Some(v);
    }
    if let Some(v) = var("HERALD_CLUSTER_NODE_TIMEOUT") {
        file.cluster.node_timeout = Some(v);
    }
    if let Some(v) = var("HERALD_CLUSTER_REQUEST_TIMEOUT") {
        file.cluster.request_timeout = Some(v);
    }
    if let Some(v) = var("HERALD_PRESENCE_GRACE") {
        file.presence.grace = Some(v);
    }
    if let Some(v) = var("HERALD_PRESENCE_AUDIENCE") {
        file.presence.audience = Some(v);
    }
    if let Some(v) = var("HERALD_PRESENCE_BATCH_WINDOW") {
        file.presence.batch_window = Some(v);
    }
    if let Some(v) = var("HERALD_PRESENCE_MAX_SUBSCRIPTIONS") {
        file.presence.max_subscriptions = Some(number("HERALD_PRESENCE_MAX_SUBSCRIPTIONS", &v)?);
    }
    if let Some(v) = var("HERALD_ROOMS_PRESENCE_WINDOW") {
        file.rooms.presence_window = Some(v);
    }
    if let Some(v) = var("HERALD_FILES_MAX_SIZE") {
        file.files.max_size = Some(number("HERALD_FILES_MAX_SIZE", &v)?);
    }
    if let Some(v) = var("HERALD_FILES_ALLOWED_TYPES") {
        file.files.allowed_types = Some(v.split(',').map(|t| t.trim().to_string()).collect());
    }
    if let Some(v) = var("HERALD_FILES_RETENTION") {
        file.files.retention = Some(v);
    }
    if let Some(v) = var("HERALD_FILES_RATE_LIMIT_PER_SECOND") {
        file.files.rate_limit.per_second = Some(number("HERALD_FILES_RATE_LIMIT_PER_SECOND", &v)?);
    }
    if let Some(v) = var("HERALD_FILES_RATE_LIMIT_BURST") {
        file.files.rate_limit.burst = Some(number("HERALD_FILES_RATE_LIMIT_BURST", &v)?);
    }
    if let Some(v) = var("HERALD_WEBRTC_ICE_SERVERS") {
        file.webrtc.ice_servers = Some(super::webrtc::ice_servers_from_env(&v)?);
    }
    if let Some(v) = var("HERALD_WEBRTC_TURN_SECRET") {
        file.webrtc.turn_secret = Some(v);
    }
    if let Some(v) = var("HERALD_WEBRTC_TURN_TTL") {
        file.webrtc.turn_ttl = Some(v);
    }
    if let Some(v) = var("HERALD_WEBRTC_RING_TIMEOUT") {
        file.webrtc.ring_timeout = Some(v);
    }
    if let Some(v) = var("HERALD_TLS_CERT") {
        file.tls.cert = Some(v.into());
    }
    if let Some(v) = var("HERALD_TLS_KEY") {
        file.tls.key = Some(v.into());
    }
    if let Some(v) = var("HERALD_SHUTDOWN_TIMEOUT") {
        file.shutdown_timeout = Some(v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;
    use std::time::Duration;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<crate::config::Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let mut file = FileConfig::parse(Path::new("herald.toml"), toml)?;
        let mut vars: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.entry("HERALD_DATA_DIR".into())
            .or_insert_with(|| dir.path().to_string_lossy().into_owned());
        apply_env(&mut file, |k| vars.get(k).cloned())?;
        file.resolve()
    }

    #[test]
    fn the_default_host_is_loopback_only_with_development_credentials() {
        let secret = ("JWT_SECRET", "a-secret-of-at-least-16-chars");
        assert_eq!(load("", &[]).unwrap().host, "127.0.0.1");
        assert_eq!(load("", &[secret]).unwrap().host, "0.0.0.0");
        let everywhere = ("HERALD_HOST", "0.0.0.0");
        assert_eq!(load("", &[everywhere]).unwrap().host, "0.0.0.0");
        assert_eq!(load("host = \"::\"\n", &[]).unwrap().host, "::");
        let here = ("HERALD_HOST", "127.0.0.1");
        assert_eq!(load("", &[secret, here]).unwrap().host, "127.0.0.1");
    }

    #[test]
    fn defaults_are_the_contracts() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.port, 8001);
        assert_eq!(c.host, "127.0.0.1", "development credentials: loopback");
        assert_eq!(c.socket.ping_interval, Duration::from_secs(25));
        assert_eq!(c.socket.ping_timeout, Duration::from_secs(60));
        assert_eq!(c.socket.max_payload, 1_000_000);
        assert_eq!(c.cors_origins.len(), 3);
        assert!(c.jwt.development_secret);
        assert!(c.development_api_key);
        assert_eq!(c.session.default.idle_timeout, Duration::from_secs(900));
        assert!(c.cluster.redis_url.is_none() && c.database_url.is_none());
        assert_eq!(c.cluster.node_timeout, Duration::from_secs(15));
        assert_eq!(c.presence.grace, Duration::from_secs(5));
        assert_eq!(
            c.presence.audience,
            crate::config::PresenceAudience::Subscribers
        );
        assert_eq!(c.presence.batch_window, Duration::from_secs(1));
        assert_eq!(c.presence.max_subscriptions, 1_000);
        assert_eq!(c.http.header_timeout, Duration::from_secs(10));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.http.body_timeout, Duration::from_secs(30));
        assert_eq!(
            c.limits.max_connections,
            crate::config::open_files::default_max_connections(crate::config::open_files::current())
        );
        assert_eq!(c.limits.sockets_per_user, 100);
        assert_eq!(c.socket.max_queued_bytes, 4 * 1024 * 1024);
        let c = load("[socket]\nmax_queued_bytes = 100000\n", &[]).unwrap();
        assert_eq!(c.socket.max_queued_bytes, 100_000);
        let c = load("", &[("HERALD_MAX_QUEUED_BYTES", "70000")]).unwrap();
        assert_eq!(c.socket.max_queued_bytes, 70_000);
        let e = load("", &[("HERALD_MAX_QUEUED_BYTES", "10")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("socket.max_queued_bytes"), "{e}");
    }

    #[test]
    fn http_timeouts_and_limits_come_from_file_and_environment() {
        let c = load(
            "[http]\nheader_timeout = \"2s\"\nidle_timeout = \"5s\"\n[limits]\nmax_connections = 500\n",
            &[
                ("HERALD_SOCKETS_PER_USER", "3"),
                ("HERALD_HTTP_IDLE_TIMEOUT", "7s"),
                ("HERALD_HTTP_BODY_TIMEOUT", "4s"),
            ],
        )
        .unwrap();
        assert_eq!(c.http.header_timeout, Duration::from_secs(2));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(7));
        assert_eq!(c.http.body_timeout, Duration::from_secs(4));
        assert_eq!(c.limits.max_connections, 500);
        assert_eq!(c.limits.sockets_per_user, 3);
        let c = load("", &[("HERALD_SERVER_NAMES", "Herald.Internal, pacs-01")]).unwrap();
        assert_eq!(c.http.server_names, ["herald.internal", "pacs-01"]);
        let e = load("", &[("HERALD_SERVER_NAMES", "http://herald:8001")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("http.server_names"), "{e}");
        for (env, named) in [
            ("HERALD_SOCKETS_PER_USER", "limits.sockets_per_user"),
            ("HERALD_MAX_CONNECTIONS", "limits.max_connections"),
            ("HERALD_HTTP_HEADER_TIMEOUT", "http.header_timeout"),
            ("HERALD_HTTP_BODY_TIMEOUT", "http.body_timeout"),
        ] {
            let e = load("", &[(env, "0")]).unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
        }
    }

    #[test]
    fn cluster_settings_come_from_the_environment() {
        let c = load(
            "",
            &[
                ("REDIS_URL", "redis://127.0.0.1:6379"),
                ("DATABASE_URL", "postgres://postgres@127.0.0.1/herald"),
                ("HERALD_NODE_ID", "node-a"),
                ("HERALD_CLUSTER_NODE_TIMEOUT", "3s"),
            ],
        )
        .unwrap();
        assert_eq!(c.cluster.node_id, "node-a");
        assert_eq!(c.cluster.node_timeout, Duration::from_secs(3));
        assert_eq!(
            c.cluster.redis_url.as_ref().map(|u| u.expose()),
            Some("redis://127.0.0.1:6379")
        );
        let e = load("", &[("HERALD_NODE_ID", "node a")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("HERALD_NODE_ID"), "{e}");
    }

    #[test]
    fn environment_wins_over_file() {
        let c = load(
            "port = 9000\n[session]\nidle_timeout = \"20m\"\n",
            &[
                ("HERALD_PORT", "9100"),
                ("HERALD_SESSION_IDLE_TIMEOUT", "90s"),
                ("HERALD_SESSION_WARNING_BEFORE", "30s"),
            ],
        )
        .unwrap();
        assert_eq!(c.port, 9100);
        assert_eq!(c.session.default.idle_timeout, Duration::from_secs(90));
    }

    #[test]
    fn api_keys_and_origins_are_comma_separated() {
        let c = load(
            "",
            &[
                ("HERALD_API_KEYS", "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb"),
                ("HERALD_CORS_ORIGINS", "http://a.example,https://b.example"),
                ("JWT_SECRET", "0123456789abcdef0123"),
            ],
        )
        .unwrap();
        assert_eq!(c.api_keys.len(), 2);
        assert_eq!(
            c.admin_keys, c.api_keys,
            "the API keys when none of its own"
        );
        assert!(!c.development_api_key);
        assert!(!c.jwt.development_secret);
        assert_eq!(
            c.cors_origins,
            vec!["http://a.example", "https://b.example"]
        );
    }

    #[test]
    fn admin_keys_are_their_own_when_set() {
        let c = load(
            "api_keys = [\"aaaaaaaaaaaaaaaa\"]\n",
            &[("HERALD_ADMIN_KEYS", "cccccccccccccccc,dddddddddddddddd")],
        )
        .unwrap();
        let exposed: Vec<&str> = c.admin_keys.iter().map(|k| k.expose()).collect();
        assert_eq!(exposed, vec!["cccccccccccccccc", "dddddddddddddddd"]);
        assert_eq!(c.api_keys.len(), 1);
        let dev = load("", &[]).unwrap();
        assert_eq!(dev.admin_keys, dev.api_keys, "the development API key");
        let e = load("", &[("HERALD_ADMIN_KEYS", "short")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("HERALD_ADMIN_KEYS"), "{e}");
    }

    #[test]
    fn per_role_timeouts_override_the_default() {
        let c = load(
            "[session.roles.technologist]\nidle_timeout = \"5m\"\nwarning_before = \"1m\"\n",
            &[("HERALD_SESSION_ROLES", "nurse=10m/2m")],
        )
        .unwrap();
        assert_eq!(
            c.session.for_role("technologist").idle_timeout,
            Duration::from_secs(300)
        );
        assert_eq!(
            c.session.for_role("nurse").warning_before,
            Duration::from_secs(120)
        );
        assert_eq!(
            c.session.for_role("radiologist").idle_timeout,
            Duration::from_secs(900)
        );
    }

    #[test]
    fn the_log_level_comes_from_herald_log_then_rust_log_and_is_checked() {
        let c = load("[log]\nlevel = \"warn\"\n", &[("RUST_LOG", "debug")]).unwrap();
        assert_eq!(c.log_filter, "debug");
        let c = load("", &[("RUST_LOG", "bogus"), ("HERALD_LOG", "error")]).unwrap();
        assert_eq!(
            c.log_filter, "error",
            "HERALD_LOG wins; RUST_LOG is not read"
        );
        for (var, setting) in [("HERALD_LOG", "HERALD_LOG"), ("RUST_LOG", "RUST_LOG")] {
            let e = load("", &[(var, "bogus")]).unwrap_err().to_string();
            assert!(e.contains(setting) && e.contains("bogus"), "{e}");
        }
        let e = load("[log]\nlevel = \"loud\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.level"), "{e}");
    }

    #[test]
    fn the_example_in_the_configuration_docs_is_valid() {
        let doc = include_str!("../../docs/configuration.md");
        let example = doc
            .split("## Example `herald.toml`")
            .nth(1)
            .and_then(|rest| rest.split("```toml\n").nth(1))
            .and_then(|rest| rest.split("```").next())
            .expect("docs/configuration.md has an example herald.toml");
        let c = load(example, &[]).unwrap();
        assert_eq!(
            c.session.for_role("technologist").idle_timeout,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn tls_needs_both_files_and_names_the_missing_one() {
        let e = load("", &[("HERALD_TLS_CERT", "/nonexistent/cert.pem")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HERALD_TLS_KEY") && e.contains("required"),
            "{e}"
        );
        let e = load("[tls]\nkey = \"/nonexistent/key.pem\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("HERALD_TLS_CERT"), "{e}");
        let e = load(
            "",
            &[
                ("HERALD_TLS_CERT", "/nonexistent/cert.pem"),
                ("HERALD_TLS_KEY", "/nonexistent/key.pem"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("HERALD_TLS_CERT") && e.contains("/nonexistent/cert.pem"),
            "{e}"
        );
        assert!(load("", &[]).unwrap().tls.is_none());
    }

    #[test]
    fn a_port_out_of_range_says_so() {
        for (toml, env, setting) in [
            ("", &[("HERALD_PORT", "70000")][..], "HERALD_PORT"),
            ("", &[("HERALD_PORT", "-1")][..], "HERALD_PORT"),
            ("port = 70000\n", &[][..], "port"),
        ] {
            let e = load(toml, env).unwrap_err().to_string();
            assert!(
                e.contains(setting) && e.contains("out of range (1-65535"),
                "{e}"
            );
        }
        let e = load("", &[("HERALD_PORT", "eighty")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a port number"), "{e}");
        assert_eq!(load("", &[("HERALD_PORT", "65535")]).unwrap().port, 65535);
        assert_eq!(load("port = 0\n", &[]).unwrap().port, 0, "0: any free port");
    }

    #[test]
    fn bad_settings_are_named() {
        let e = load("", &[("HERALD_PORT", "eighty")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("HERALD_PORT"), "{e}");
        let e = load("", &[("HERALD_SESSION_IDLE_TIMEOUT", "soon")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("session.idle_timeout"), "{e}");
        let e = load("[jwt]\nalgorithm = \"none\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("jwt.algorithm"), "{e}");
        let e = load("colour = 3\n", &[]).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        let e = load("", &[("HERALD_SESSION_WARNING_BEFORE", "20m")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("warning_before"), "{e}");
        let e = load("", &[("REDIS_URL", "redis://127.0.0.1:6379")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("REDIS_URL") && e.contains("DATABASE_URL"),
            "a cluster without PostgreSQL names both settings: {e}"
        );
        let e = load("", &[("DATABASE_URL", "mysql://x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("DATABASE_URL"), "{e}");
        let e = load("", &[("HERALD_PRESENCE_AUDIENCE", "friends")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("presence.audience"), "{e}");
        for (var, value, setting) in [
            (
                "HERALD_PRESENCE_BATCH_WINDOW",
                "soon",
                "presence.batch_window",
            ),
            (
                "HERALD_PRESENCE_BATCH_WINDOW",
                "1ms",
                "presence.batch_window",
            ),
            (
                "HERALD_PRESENCE_BATCH_WINDOW",
                "2m",
                "presence.batch_window",
            ),
            (
                "HERALD_PRESENCE_MAX_SUBSCRIPTIONS",
                "many",
                "HERALD_PRESENCE_MAX_SUBSCRIPTIONS",
            ),
            (
                "HERALD_PRESENCE_MAX_SUBSCRIPTIONS",
                "-1",
                "HERALD_PRESENCE_MAX_SUBSCRIPTIONS",
            ),
            (
                "HERALD_PRESENCE_MAX_SUBSCRIPTIONS",
                "0",
                "presence.max_subscriptions",
            ),
        ] {
            let e = load("", &[(var, value)]).unwrap_err().to_string();
            assert!(e.contains(setting), "{var}={value}: {e}");
        }
        let e = load("", &[("JWT_SECRET", "short")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("JWT_SECRET"), "{e}");
    }
}
