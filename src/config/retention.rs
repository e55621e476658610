//! `[retention]`: how long a recipient's notification is kept, from its
//! acknowledgement or, unacknowledged, from its creation.

use std::time::Duration;

use serde::Deserialize;

use super::values::duration_or;
use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionFile {
    pub acknowledged: Option<String>,
    pub unacknowledged: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct RetentionConfig {
    pub acknowledged: Duration,
    pub unacknowledged: Duration,
}

impl RetentionFile {
    pub fn resolve(&self) -> Result<RetentionConfig, ConfigError> {
        let day = Duration::from_secs(24 * 3600);
        Ok(RetentionConfig {
            acknowledged: duration_or("retention.acknowledged", &self.acknowledged, 30 * day)?,
            unacknowledged: duration_or(
                "retention.unacknowledged",
                &self.unacknowledged,
                30 * day,
            )?,
        })
    }
}
