//! One checkpoint handed to every configured witness and waited for, as
//! `herald audit checkpoint` does. The server's witnesses keep trying in
//! the background; a command someone (or a cron job) waits for answers
//! instead whether each witness kept the checkpoint, so that a witness that
//! is down is seen at once rather than found missing at the next audit.

use std::time::Duration;

use crate::config::Config;
use crate::escalation::webhook::{backoff, Outcome};
use crate::trail::checkpoint::Signed;

use super::{file, WebhookWitness};

/// Attempts at the webhook before the command gives up on it: a receiver
/// that refused once (restarting, a load balancer's hiccup) gets a second
/// and a third chance within seconds, as the server's backoff gives it.
pub const WEBHOOK_ATTEMPTS: u32 = 3;

/// A witness that did not keep the checkpoint, and why (never the URL,
/// which may carry credentials, nor the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} did not keep the checkpoint: {why}")]
pub struct NotKept {
    /// The setting that names the witness.
    pub setting: &'static str,
    pub why: String,
}

/// Hands `signed` to the file witness and to the webhook witness, each
/// when configured; answers those that did not keep it.
pub async fn hand(config: &Config, signed: &Signed) -> Vec<NotKept> {
    let mut not_kept = Vec::new();
    if let Some(path) = &config.audit.checkpoint_file {
        if let Err(e) = file::append_off_thread(path.clone(), signed.to_line()).await {
            not_kept.push(NotKept {
                setting: "audit.checkpoint_file",
                why: format!("cannot append to {}: {e}", path.display()),
            });
        }
    }
    if let Some(webhook) = WebhookWitness::configured(config) {
        if let Err(why) = post_with_retries(&webhook, signed, backoff).await {
            not_kept.push(NotKept {
                setting: "audit.checkpoint_webhook",
                why,
            });
        }
    }
    not_kept
}

/// Posts `signed` until the receiver takes it or [`WEBHOOK_ATTEMPTS`] were
/// made, waiting `pause(attempts)` between them; the last failure when
/// none was taken.
async fn post_with_retries(
    webhook: &WebhookWitness,
    signed: &Signed,
    pause: impl Fn(u32) -> Duration,
) -> Result<(), String> {
    let mut attempts = 0;
    loop {
        match webhook.post(signed).await {
            Outcome::Sent { .. } => return Ok(()),
            Outcome::Failed { error, .. } => {
                attempts += 1;
                if attempts == WEBHOOK_ATTEMPTS {
                    return Err(format!("{error} ({attempts} attempts)"));
                }
                tokio::time::sleep(pause(attempts - 1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::trail::checkpoint::{sign, Checkpoint};
    use crate::trail::Chain;
    use ed25519_dalek::SigningKey;

    fn signed() -> Signed {
        sign(
            &SigningKey::from_bytes(&[3; 32]),
            Checkpoint::of(&Chain::default(), 0),
        )
    }

    #[tokio::test]
    async fn a_webhook_that_stays_down_is_given_up_after_the_last_attempt() {
        // Nothing listens on the discard port: every attempt fails at once.
        let w = WebhookWitness::new(
            "http://127.0.0.1:9/witness".into(),
            Secret::new("checkpoint-webhook-secret-0123"),
            Duration::from_secs(1),
        );
        let pauses = std::sync::Mutex::new(Vec::new());
        let e = post_with_retries(&w, &signed(), |a| {
            pauses.lock().unwrap().push(a);
            Duration::ZERO
        })
        .await
        .unwrap_err();
        assert!(e.ends_with("(3 attempts)"), "{e}");
        assert_eq!(*pauses.lock().unwrap(), [0, 1], "a pause between attempts");
    }
}
