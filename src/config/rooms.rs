//! `[rooms]`: how often a study room's sockets hear who is in it.

use std::time::Duration;

use serde::Deserialize;

use super::values::duration_or;
use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsFile {
    pub presence_window: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct RoomsConfig {
    /// The least time between two `room_presence` frames to one room, and
    /// the longest a change of its members waits to be told.
    pub presence_window: Duration,
}

impl RoomsFile {
    pub fn resolve(&self) -> Result<RoomsConfig, ConfigError> {
        let presence_window = duration_or(
            "rooms.presence_window",
            &self.presence_window,
            Duration::from_millis(500),
        )?;
        // Under 10 ms nothing is gathered; over a minute a reading room
        // would show who was there a minute ago.
        if presence_window < Duration::from_millis(10) || presence_window > Duration::from_secs(60)
        {
            return Err(ConfigError::invalid(
                "rooms.presence_window",
                format!("{presence_window:?} is not between 10ms and 60s"),
            ));
        }
        Ok(RoomsConfig { presence_window })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_defaults_to_half_a_second_and_is_bounded() {
        let c = RoomsFile::default().resolve().unwrap();
        assert_eq!(c.presence_window, Duration::from_millis(500));
        for bad in ["5ms", "2m"] {
            let f = RoomsFile {
                presence_window: Some(bad.into()),
            };
            let e = f.resolve().unwrap_err().to_string();
            assert!(e.contains("rooms.presence_window"), "{e}");
        }
    }
}
