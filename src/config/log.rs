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

/// The Socket.IO and Engine.IO crates, each its own log target. Their
/// debug and trace output includes packet contents (tokens in CONNECT
/// packets).
const PACKET_LOGGING_CRATES: [&str; 5] = [
    "socketioxide",
    "socketioxide_core",
    "socketioxide_parser_common",
    "engineioxide",
    "engineioxide_core",
];

/// `filter` with the packet-logging crates held at `info` when its level
/// for everything else is `debug` or `trace`, unless an operator names
/// such a crate. A quieter level (`warn`, `error`) applies to them as to
/// everything else: holding them at `info` there would raise them, and
/// make every connect pay for their `info` spans.
pub fn with_packet_crates_held(filter: &str) -> String {
    let directives: Vec<&str> = filter.split(',').map(str::trim).collect();
    let verbose = directives
        .iter()
        .rev()
        .find(|d| !d.contains('='))
        .is_some_and(|level| {
            level.eq_ignore_ascii_case("debug") || level.eq_ignore_ascii_case("trace")
        });
    let mut out = filter.to_string();
    if !verbose {
        return out;
    }
    for noisy in PACKET_LOGGING_CRATES {
        let named = directives.iter().any(|d| {
            d.split('=')
                .next()
                .is_some_and(|t| t.trim() == noisy || t.trim().starts_with(&format!("{noisy}::")))
        });
        if !named {
            out.push_str(&format!(",{noisy}=info"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_crates_are_held_at_info_only_below_it() {
        let held = with_packet_crates_held("debug");
        assert!(held.starts_with("debug,socketioxide=info,"), "{held}");
        assert!(held.contains(",engineioxide_core=info"), "{held}");
        assert!(with_packet_crates_held("herald=warn,TRACE").contains("engineioxide=info"));
        for quiet in ["info", "warn", "error", "debug,warn", "herald=debug"] {
            assert_eq!(with_packet_crates_held(quiet), quiet, "{quiet}");
        }
        let named = with_packet_crates_held("debug,socketioxide::ns=trace");
        assert!(!named.contains("socketioxide=info"), "{named}");
        assert!(named.contains("engineioxide=info"), "{named}");
    }

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
