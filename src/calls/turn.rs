//! The `iceServers` handed with a call: the configured STUN and TURN
//! servers, each TURN server with credentials for this user that expire
//! (the TURN REST convention coturn's `use-auth-secret` checks: username
//! `<expiry>:<userId>`, password the base64 HMAC-SHA1 of the username
//! under the shared secret). Never logged: they let anyone relay media.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha1::Sha1;

use crate::clock::Millis;
use crate::config::WebrtcConfig;

/// The password of a TURN REST `username` under `secret`.
pub fn turn_password(secret: &str, username: &str) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `RTCIceServer` list for `user` at `now`: TURN servers get
/// credentials valid for `webrtc.turn_ttl` when a TURN secret is set, or
/// their fixed account otherwise.
pub fn ice_servers(config: &WebrtcConfig, user: &str, now: Millis) -> Value {
    let expiry = now / 1000 + config.turn_ttl.as_secs() as i64;
    let servers: Vec<Value> = config
        .ice_servers
        .iter()
        .map(|s| {
            let mut out = Map::new();
            out.insert("urls".into(), json!(s.urls));
            let account = match (&config.turn_secret, s.is_turn()) {
                (Some(secret), true) => {
                    let username = format!("{expiry}:{user}");
                    let password = turn_password(secret.expose(), &username);
                    Some((username, password))
                }
                _ => s
                    .username
                    .clone()
                    .zip(s.credential.as_ref().map(|c| c.expose().to_string())),
            };
            if let Some((username, credential)) = account {
                out.insert("username".into(), Value::String(username));
                out.insert("credential".into(), Value::String(credential));
            }
            Value::Object(out)
        })
        .collect();
    Value::Array(servers)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{IceServer, Secret};

    #[test]
    fn the_password_is_the_turn_rest_hmac() {
        // Python: base64(hmac.new(b"north", b"1700003600:alice", sha1)).
        assert_eq!(
            turn_password("north", "1700003600:alice"),
            "wjwSXO2ch1B6VaLTLMy2Avn5O9o="
        );
    }

    fn config(secret: Option<&str>) -> WebrtcConfig {
        WebrtcConfig {
            ice_servers: vec![
                IceServer {
                    urls: vec!["stun:stun.example.org".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec!["turn:turn.example.org:3478".into()],
                    username: Some("fixed".into()),
                    credential: Some(Secret::new("account")),
                },
            ],
            turn_secret: secret.map(Secret::new),
            ring_timeout: Duration::from_secs(30),
            turn_ttl: Duration::from_secs(3600),
        }
    }

    #[test]
    fn turn_servers_get_expiring_credentials_stun_servers_none() {
        let v = ice_servers(&config(Some("north")), "alice", 1_700_000_000_500);
        assert_eq!(v[0], json!({ "urls": ["stun:stun.example.org"] }));
        assert_eq!(
            v[1],
            json!({
                "urls": ["turn:turn.example.org:3478"],
                "username": "1700003600:alice",
                "credential": "wjwSXO2ch1B6VaLTLMy2Avn5O9o=",
            })
        );
    }

    #[test]
    fn without_a_secret_the_fixed_account_is_handed() {
        let v = ice_servers(&config(None), "alice", 0);
        assert_eq!(v[1]["username"], "fixed");
        assert_eq!(v[1]["credential"], "account");
    }
}
