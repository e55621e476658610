//! `[presence]`: how long a user stays online after their last socket, and
//! who hears their `presence` changes.

use std::time::Duration;

use serde::Deserialize;

use super::values::duration_or;
use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceFile {
    pub grace: Option<String>,
    pub audience: Option<String>,
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

impl PresenceFile {
    pub fn resolve(&self) -> Result<PresenceConfig, ConfigError> {
        Ok(PresenceConfig {
            grace: duration_or("presence.grace", &self.grace, Duration::from_secs(5))?,
            audience: match self.audience.as_deref().unwrap_or("role") {
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
        })
    }
}
