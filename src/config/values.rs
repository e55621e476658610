//! How one setting's text becomes a value (a duration, a port, a list),
//! with errors that name the setting at fault.

use std::time::Duration;

use super::ConfigError;

/// Parses a human duration (`15m`, `90s`, `250ms`, `1h 30m`).
pub fn parse_duration(setting: &str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s.trim())
        .map_err(|e| ConfigError::invalid(setting, format!("{s:?} is not a duration ({e})")))
}

/// The duration `v` names, or `default` when the setting is absent.
pub(super) fn duration_or(
    setting: &str,
    v: &Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    v.as_deref()
        .map_or(Ok(default), |s| parse_duration(setting, s))
}

/// `n` as a port: 1 to 65535, or 0 for a free port the system picks.
pub(super) fn port(setting: &str, n: i64) -> Result<u16, ConfigError> {
    u16::try_from(n).map_err(|_| {
        ConfigError::invalid(
            setting,
            format!("{n} is out of range (1-65535, or 0 for any free port)"),
        )
    })
}

/// The entries of a list setting, trimmed, blank ones dropped.
pub(super) fn non_empty(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether `url` is an absolute http:// or https:// URL with a host: where a
/// webhook can be posted.
pub(super) fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url.trim())
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}
