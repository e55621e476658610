//! `[cluster]` and the store's URL, checked together: a Redis URL makes
//! Herald a node of a cluster, and a cluster needs PostgreSQL, or each
//! node would keep its own inbox.

use std::time::Duration;

use serde::Deserialize;

use super::values::duration_or;
use super::{ConfigError, Secret};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub redis_url: Option<String>,
    pub node_id: Option<String>,
    pub node_timeout: Option<String>,
    pub request_timeout: Option<String>,
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

impl ClusterFile {
    /// The store's URL (`DATABASE_URL`, `None` for SQLite) and the cluster
    /// settings.
    pub fn resolve(
        &self,
        database_url: Option<&str>,
    ) -> Result<(Option<Secret>, ClusterConfig), ConfigError> {
        let database_url = database_url.map(str::trim);
        if let Some(url) = database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::invalid(
                    "DATABASE_URL",
                    "must be a postgres:// URL (with none set, the store is SQLite in the data directory)",
                ));
            }
        }
        let redis_url = self.redis_url.as_deref().map(str::trim);
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
        let node_id = match self.node_id.as_deref().map(str::trim) {
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
            &self.node_timeout,
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
            &self.request_timeout,
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
}
