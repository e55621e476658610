//! The webhook witness: each checkpoint POSTed to `audit.checkpoint_webhook`
//! with the escalation webhook's signature (`X-Herald-Signature`, HMAC of
//! the body with the same secret) and its backoff between attempts, until
//! the receiver answers 2xx. Checkpoints wait in memory, oldest first,
//! never on the path of a request; when the receiver stays down long enough
//! for a day of them to wait, the oldest is dropped (counted): every newer
//! one still vouches for the records before it through the chain.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::{Config, Secret};
use crate::escalation::webhook::{self, Outcome};
use crate::observe::prometheus;
use crate::trail::checkpoint::Signed;

/// Checkpoints kept waiting at most: a day of them at the default interval.
const MAX_WAITING: usize = 1440;

pub struct WebhookWitness {
    url: String,
    secret: Secret,
    timeout: Duration,
    client: reqwest::Client,
    waiting: Mutex<VecDeque<Signed>>,
    wake: Notify,
}

impl WebhookWitness {
    pub fn new(url: String, secret: Secret, timeout: Duration) -> Self {
        Self {
            url,
            secret,
            timeout,
            client: reqwest::Client::builder()
                .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            waiting: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
        }
    }

    /// The witness `audit.checkpoint_webhook` names, signed with the
    /// escalation webhook's secret and posted within its timeout; none when
    /// no URL is set.
    pub fn configured(config: &Config) -> Option<Self> {
        let url = config.audit.checkpoint_webhook.clone()?;
        // The configuration refuses a webhook without the secret.
        let secret = config.escalation.webhook_secret.clone()?;
        Some(Self::new(url, secret, config.escalation.webhook_timeout))
    }

    /// One attempt at delivering `checkpoint`.
    pub async fn post(&self, checkpoint: &Signed) -> Outcome {
        let c = &checkpoint.checkpoint;
        // The receiver may see one checkpoint twice (an answer lost on the
        // way back): the delivery names it.
        let delivery = format!("checkpoint:{}:{}", c.seq, c.at);
        webhook::post(
            &self.client,
            &self.url,
            self.secret.expose().as_bytes(),
            &delivery,
            checkpoint.to_line().into_bytes(),
            self.timeout,
        )
        .await
    }

    /// Queues `checkpoint` for delivery; never waits.
    pub fn hand(&self, checkpoint: Signed) {
        let dropped = {
            let mut waiting = self.waiting.lock();
            waiting.push_back(checkpoint);
            (waiting.len() > MAX_WAITING).then(|| waiting.pop_front())
        };
        if let Some(Some(old)) = dropped {
            prometheus::checkpoint_witness("webhook", "dropped");
            tracing::warn!(
                seq = old.checkpoint.seq,
                waiting = MAX_WAITING,
                "the checkpoint webhook has been down for too long: its oldest waiting checkpoint was dropped"
            );
        }
        self.wake.notify_one();
    }

    /// Checkpoints not delivered yet.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().len()
    }

    /// Delivers the waiting checkpoints in order, each until it is taken.
    pub async fn deliver_forever(self: Arc<Self>) {
        let mut attempts = 0;
        loop {
            let next = self.waiting.lock().front().cloned();
            let Some(checkpoint) = next else {
                self.wake.notified().await;
                continue;
            };
            let c = &checkpoint.checkpoint;
            match self.post(&checkpoint).await {
                Outcome::Sent { .. } => {
                    prometheus::checkpoint_witness("webhook", "sent");
                    let mut waiting = self.waiting.lock();
                    if waiting.front() == Some(&checkpoint) {
                        waiting.pop_front();
                    }
                    attempts = 0;
                }
                Outcome::Failed { error, .. } => {
                    prometheus::checkpoint_witness("webhook", "failed");
                    let retry = webhook::backoff(attempts);
                    tracing::warn!(seq = c.seq, attempt = attempts + 1, error, retry_in = ?retry, "the checkpoint webhook failed; it is retried");
                    attempts += 1;
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::checkpoint::{sign, Checkpoint};
    use crate::trail::Chain;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    use ed25519_dalek::SigningKey;

    const SECRET: &str = "checkpoint-webhook-secret-0123";

    /// A real receiver on loopback: it refuses the first POST (503), takes
    /// the rest, and keeps each body with its signature header.
    async fn receiver() -> (String, Arc<Mutex<Vec<(String, Bytes)>>>) {
        let got: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
        let kept = got.clone();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/witness",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let kept = kept.clone();
                let calls = calls.clone();
                async move {
                    if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let sig = headers["x-herald-signature"].to_str().unwrap().to_string();
                    kept.lock().push((sig, body));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/witness", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, got)
    }

    #[tokio::test]
    async fn checkpoints_reach_a_receiver_that_was_down_signed_and_in_order() {
        let (url, got) = receiver().await;
        let w = Arc::new(WebhookWitness::new(
            url,
            Secret::new(SECRET),
            Duration::from_secs(5),
        ));
        let key = SigningKey::from_bytes(&[3; 32]);
        let signed: Vec<Signed> = (1..=3)
            .map(|seq| {
                let head = Chain {
                    seq,
                    hash: "cd".repeat(32),
                };
                sign(&key, Checkpoint::of(&head, seq * 1000))
            })
            .collect();
        for s in &signed {
            w.hand(s.clone());
        }
        let delivering = tokio::spawn(w.clone().deliver_forever());
        // The first attempt is refused; the retry comes a second later.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while got.lock().len() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "not delivered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        delivering.abort();
        assert_eq!(w.waiting(), 0);
        let got = got.lock();
        for ((sig, body), s) in got.iter().zip(&signed) {
            assert_eq!(sig, &webhook::signature(SECRET.as_bytes(), body));
            let line = std::str::from_utf8(body).unwrap();
            assert_eq!(
                Signed::parse_verified(line, &[key.verifying_key()]).as_ref(),
                Ok(s)
            );
        }
    }

    #[test]
    fn a_witness_down_for_a_day_keeps_the_newest_checkpoints() {
        let w = WebhookWitness::new(
            "http://127.0.0.1:9/".into(),
            Secret::new(SECRET),
            Duration::from_secs(1),
        );
        let key = SigningKey::from_bytes(&[3; 32]);
        for seq in 0..(MAX_WAITING as i64 + 5) {
            let head = Chain {
                seq,
                hash: "cd".repeat(32),
            };
            w.hand(sign(&key, Checkpoint::of(&head, 0)));
        }
        assert_eq!(w.waiting(), MAX_WAITING);
        assert_eq!(w.waiting.lock().front().unwrap().checkpoint.seq, 5);
    }
}
