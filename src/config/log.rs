//! `[log]`: the format, and the level setting, checked strictly: `tracing`'s
//! own parser takes a bare word as a target name, so a typo such as
//! `HERALD_LOG=inf` would silence everything but a target nobody has; here
//! it stops start-up.

use serde::Deserialize;

use super::ConfigError;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFile {
    pub fn format(&self) -> Result<LogFormat, ConfigError> {
        match self.format.as_deref().unwrap_or("text") {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(ConfigError::invalid(
                "log.format",
                format!("{other:?} is not text or json"),
            )),
        }
    }

    /// The filter `level` names; `info` when unset.
    pub fn filter(&self) -> Result<String, ConfigError> {
        match &self.level {
            Some(level) => level_filter(self.level_setting.unwrap_or("log.level"), level),
            None => Ok("info".into()),
        }
    }
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

fn is_level(s: &str) -> bool {
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s.trim()))
}

/// `value` as a filter (blanks around directives dropped) when every
/// directive is a level (`debug`) or `target=level` (`herald::audit=warn`);
/// else an error naming `setting`.
pub fn level_filter(setting: &str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let directives: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err(ConfigError::invalid(
            setting,
            "is empty: give a level such as info",
        ));
    }
    for d in &directives {
        let (target, level) = match d.rsplit_once('=') {
            Some((target, level)) => (Some(target.trim()), level),
            None => (None, *d),
        };
        if target == Some("") || !is_level(level) {
            return Err(ConfigError::invalid(
                setting,
                format!(
                    "{d:?} is not a level ({}) or target=level (e.g. info,herald::audit=warn)",
                    LEVELS.join(", ")
                ),
            ));
        }
    }
    let filter = directives.join(",");
    tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| ConfigError::invalid(setting, format!("{value:?}: {e}")))?;
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_target_levels_pass() {
        for ok in [
            "info",
            "DEBUG",
            "warn,herald::audit=info",
            " info , herald=trace ",
        ] {
            assert!(level_filter("HERALD_LOG", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_setting() {
        for bad in [
            "bogus",
            "inf",
            "herald=loud",
            "=info",
            "",
            " , ",
            "info,herald",
        ] {
            let e = level_filter("RUST_LOG", bad).unwrap_err().to_string();
            assert!(e.contains("RUST_LOG"), "{bad}: {e}");
        }
    }
}
