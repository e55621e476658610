//! `[session]`: the idle timeout and warning lead time of sessions, by
//! default and per role.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::values::duration_or;
use super::ConfigError;

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

/// The timeouts under `prefix`, each absent one taken from `base`.
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

impl SessionFile {
    pub fn resolve(&self) -> Result<SessionConfig, ConfigError> {
        let default = timeouts(
            "session.",
            &self.idle_timeout,
            &self.warning_before,
            SessionTimeouts {
                idle_timeout: Duration::from_secs(15 * 60),
                warning_before: Duration::from_secs(5 * 60),
            },
        )?;
        let mut roles = HashMap::new();
        for (role, t) in &self.roles {
            let prefix = format!("session.roles.{role}.");
            roles.insert(
                role.clone(),
                timeouts(&prefix, &t.idle_timeout, &t.warning_before, default)?,
            );
        }
        Ok(SessionConfig { default, roles })
    }
}
