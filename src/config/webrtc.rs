//! `[webrtc]`: the ICE servers a call's browsers are handed, the TURN
//! REST secret that makes each user's TURN credentials expire, and how long
//! an invitation rings before the call ends unanswered.

use std::time::Duration;

use serde::Deserialize;

use super::secrets::Secret;
use super::values::duration_or;
use super::ConfigError;

/// One `[[webrtc.ice_servers]]` as written: `urls` a string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServerFile {
    pub urls: Urls,
    pub username: Option<String>,
    pub credential: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebrtcFile {
    pub ice_servers: Option<Vec<IceServerFile>>,
    pub turn_secret: Option<String>,
    pub turn_ttl: Option<String>,
    pub ring_timeout: Option<String>,
}

/// A STUN or TURN server as browsers take it (`RTCIceServer`).
#[derive(Debug, Clone)]
pub struct IceServer {
    pub urls: Vec<String>,
    /// A fixed TURN account, handed as it is when no TURN secret is set.
    pub username: Option<String>,
    pub credential: Option<Secret>,
}

impl IceServer {
    /// A TURN server (relays media, so it takes credentials); STUN only
    /// answers a browser's address and takes none.
    pub fn is_turn(&self) -> bool {
        self.urls
            .iter()
            .any(|u| u.starts_with("turn:") || u.starts_with("turns:"))
    }
}

#[derive(Debug, Clone)]
pub struct WebrtcConfig {
    pub ice_servers: Vec<IceServer>,
    /// The secret shared with the TURN server (coturn's
    /// `static-auth-secret`): each call gets credentials that expire.
    pub turn_secret: Option<Secret>,
    /// How long TURN credentials handed with a call stay valid.
    pub turn_ttl: Duration,
    /// How long a call rings with nobody invited having accepted before
    /// it ends for everyone (`call_ended`, reason `timeout`).
    pub ring_timeout: Duration,
}

const SCHEMES: [&str; 4] = ["stun:", "stuns:", "turn:", "turns:"];

impl WebrtcFile {
    pub fn resolve(&self) -> Result<WebrtcConfig, ConfigError> {
        let mut ice_servers = Vec::new();
        for (i, s) in self.ice_servers.iter().flatten().enumerate() {
            let setting = format!("webrtc.ice_servers[{i}]");
            let urls = match &s.urls {
                Urls::One(u) => vec![u.clone()],
                Urls::Many(us) => us.clone(),
            };
            if urls.is_empty() {
                return Err(ConfigError::invalid(&setting, "urls is empty"));
            }
            if let Some(bad) = urls
                .iter()
                .find(|u| !SCHEMES.iter().any(|p| u.starts_with(p)) || u.len() > 512)
            {
                return Err(ConfigError::invalid(
                    &setting,
                    format!("{bad:?} is not a stun:, stuns:, turn: or turns: URL"),
                ));
            }
            ice_servers.push(IceServer {
                urls,
                username: s.username.clone(),
                credential: s.credential.clone().map(Secret::new),
            });
        }
        let turn_secret = match self.turn_secret.as_deref() {
            Some("") => return Err(ConfigError::invalid("webrtc.turn_secret", "is empty")),
            other => other.map(Secret::new),
        };
        let turn_ttl = duration_or("webrtc.turn_ttl", &self.turn_ttl, Duration::from_secs(3600))?;
        // Under a minute a call's set-up can outlive its credentials; over
        // a day a leaked credential relays for too long.
        if turn_ttl < Duration::from_secs(60) || turn_ttl > Duration::from_secs(86_400) {
            return Err(ConfigError::invalid(
                "webrtc.turn_ttl",
                format!("{turn_ttl:?} is not between 1m and 24h"),
            ));
        }
        let ring_timeout = duration_or(
            "webrtc.ring_timeout",
            &self.ring_timeout,
            Duration::from_secs(30),
        )?;
        // Under a second nobody can answer; past ten minutes nobody is still
        // waiting by the phone, and the ringing tabs hold a call each.
        if ring_timeout < Duration::from_secs(1) || ring_timeout > Duration::from_secs(600) {
            return Err(ConfigError::invalid(
                "webrtc.ring_timeout",
                format!("{ring_timeout:?} is not between 1s and 10m"),
            ));
        }
        Ok(WebrtcConfig {
            ice_servers,
            turn_secret,
            turn_ttl,
            ring_timeout,
        })
    }
}

/// `HERALD_WEBRTC_ICE_SERVERS`: the list as JSON, as browsers write it.
pub fn ice_servers_from_env(text: &str) -> Result<Vec<IceServerFile>, ConfigError> {
    serde_json::from_str(text).map_err(|e| {
        ConfigError::invalid(
            "HERALD_WEBRTC_ICE_SERVERS",
            format!("not a JSON list of {{ urls, username?, credential? }}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_configured_means_no_servers_and_an_hour() {
        let c = WebrtcFile::default().resolve().unwrap();
        assert!(c.ice_servers.is_empty());
        assert!(c.turn_secret.is_none());
        assert_eq!(c.turn_ttl, Duration::from_secs(3600));
        assert_eq!(c.ring_timeout, Duration::from_secs(30));
    }

    #[test]
    fn servers_are_read_and_checked() {
        let list = ice_servers_from_env(
            r#"[{"urls":"stun:stun.example.org:3478"},
                {"urls":["turn:turn.example.org:3478?transport=udp","turns:turn.example.org:5349"]}]"#,
        )
        .unwrap();
        let f = WebrtcFile {
            ice_servers: Some(list),
            turn_secret: Some("north".into()),
            turn_ttl: Some("10m".into()),
            ring_timeout: Some("45s".into()),
        };
        let c = f.resolve().unwrap();
        assert_eq!(c.ice_servers.len(), 2);
        assert!(!c.ice_servers[0].is_turn());
        assert!(c.ice_servers[1].is_turn());
        assert_eq!(format!("{:?}", c.turn_secret), "Some(<redacted>)");
        assert_eq!(c.ring_timeout, Duration::from_secs(45));

        let bad = WebrtcFile {
            ice_servers: Some(ice_servers_from_env(r#"[{"urls":"http://x"}]"#).unwrap()),
            ..Default::default()
        };
        assert!(bad
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("ice_servers[0]"));
        let short = WebrtcFile {
            turn_ttl: Some("5s".into()),
            ..Default::default()
        };
        assert!(short
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("turn_ttl"));
        assert!(ice_servers_from_env("stun:x").is_err());
        for bad in ["500ms", "11m", "soon"] {
            let ring = WebrtcFile {
                ring_timeout: Some(bad.into()),
                ..Default::default()
            };
            assert!(ring
                .resolve()
                .unwrap_err()
                .to_string()
                .contains("webrtc.ring_timeout"));
        }
    }

    #[test]
    fn the_example_in_the_configuration_docs_is_valid() {
        #[derive(Deserialize)]
        struct Doc {
            webrtc: WebrtcFile,
        }
        let doc = include_str!("../../docs/configuration.md");
        let example = doc
            .split("### Calls")
            .nth(1)
            .and_then(|rest| rest.split("```toml\n").nth(1))
            .and_then(|rest| rest.split("```").next())
            .expect("docs/configuration.md has a [webrtc] example");
        let c = toml::from_str::<Doc>(example)
            .unwrap()
            .webrtc
            .resolve()
            .unwrap();
        assert_eq!(c.ice_servers.len(), 2);
        assert!(c.ice_servers[1].is_turn() && c.turn_secret.is_some());
    }
}
