//! `[presence]`: how long a user stays online after their last socket, who
//! hears their changes, and the bounds of subscriptions and batches.

use std::time::Duration;

use serde::Deserialize;

use super::values::duration_or;
use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceFile {
    pub grace: Option<String>,
    pub audience: Option<String>,
    pub batch_window: Option<String>,
    pub max_subscriptions: Option<usize>,
}

/// Who hears a user's presence changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceAudience {
    /// The sockets that asked with `presence_subscribe` (the default): one
    /// `presence` event per change to each of them.
    Subscribers,
    /// Subscribers, and every socket of the changed user's role, in
    /// `presence_batch` frames at most once per batch window.
    Role,
    /// Subscribers, and every socket, in `presence_batch` frames.
    All,
    /// Nobody: no presence event at all (`GET /presence` still answers).
    None,
}

#[derive(Debug, Clone, Copy)]
pub struct PresenceConfig {
    /// How long a user with no socket left stays online (a page reload).
    pub grace: Duration,
    pub audience: PresenceAudience,
    /// The longest a wide audience's changes wait to go out together, and
    /// the least time between two `presence_batch` frames to one socket.
    pub batch_window: Duration,
    /// Users one socket may watch at once.
    pub max_subscriptions: usize,
}

/// Most users one socket may watch unless configured otherwise: a
/// worklist's or a department's staff.
const MAX_SUBSCRIPTIONS: usize = 1_000;

impl PresenceFile {
    pub fn resolve(&self) -> Result<PresenceConfig, ConfigError> {
        let batch_window = duration_or(
            "presence.batch_window",
            &self.batch_window,
            Duration::from_secs(1),
        )?;
        // A window under 10 ms batches nothing; over a minute, operators'
        // screens would show who was online a minute ago.
        if batch_window < Duration::from_millis(10) || batch_window > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "presence.batch_window",
                format!("{batch_window:?} is not between 10ms and 60s"),
            ));
        }
        let max_subscriptions = self.max_subscriptions.unwrap_or(MAX_SUBSCRIPTIONS);
        if max_subscriptions == 0 {
            return Err(ConfigError::invalid(
                "presence.max_subscriptions",
                "must be at least 1",
            ));
        }
        Ok(PresenceConfig {
            grace: duration_or("presence.grace", &self.grace, Duration::from_secs(5))?,
            audience: match self.audience.as_deref().unwrap_or("subscribers") {
                "subscribers" => PresenceAudience::Subscribers,
                "role" => PresenceAudience::Role,
                "all" => PresenceAudience::All,
                "none" => PresenceAudience::None,
                other => {
                    return Err(ConfigError::invalid(
                        "presence.audience",
                        format!("{other:?} is not subscribers, role, all or none"),
                    ))
                }
            },
            batch_window,
            max_subscriptions,
        })
    }
}
