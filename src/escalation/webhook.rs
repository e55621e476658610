//! The webhook step: a signed POST of `{ notification, level, openFor }` to
//! an out-of-band pager or SMS gateway. The receiver checks
//! `X-Herald-Signature: sha256=<hex HMAC-SHA256 of the body>` with the shared
//! secret, and may see the same delivery twice (a node that died after
//! posting and before recording it): `X-Herald-Delivery` names it.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::clock::Millis;
use crate::notification::Notification;

/// The signature header's value for `body`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The POST's body.
pub fn body(n: &Notification, level: u32, now: Millis) -> Vec<u8> {
    json!({ "notification": n, "level": level, "openFor": (now - n.created_at).max(0) })
        .to_string()
        .into_bytes()
}

/// How long to wait before attempt `attempts + 1`: from one second,
/// doubling, at most five minutes.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(8)).min(Duration::from_secs(300))
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent { status: u16 },
    Failed { status: Option<u16>, error: String },
}

/// Posts one attempt.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    secret: &[u8],
    delivery: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Outcome {
    let sent = client
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("x-herald-signature", signature(secret, &body))
        .header("x-herald-delivery", delivery)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Outcome::Sent {
            status: r.status().as_u16(),
        },
        Ok(r) => Outcome::Failed {
            status: Some(r.status().as_u16()),
            error: format!("answered {}", r.status()),
        },
        // The error names the URL and the cause, never the body.
        Err(e) => Outcome::Failed {
            status: None,
            error: e.without_url().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_from_a_second_to_five_minutes() {
        let secs: Vec<u64> = (0..10).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256]);
        assert!(backoff(100) <= Duration::from_secs(300));
    }
}
