//! Signed checkpoints of the audit chain's head, made every
//! `audit.checkpoint_interval` and handed to the outside witnesses (an
//! append-only file, a signed webhook), so that records cut off the end of
//! the chain are found by `herald audit verify --checkpoint`.
//!
//! In a cluster every node makes its own, from the one chain in
//! PostgreSQL, with the one configured key: two checkpoints of the same
//! head are both true and both verify, so duplicates are harmless and no
//! node has to be elected for it. A witness that fails never stops the
//! server: the file's failures (a full disk) are counted and logged, and
//! the webhook retries in its own task.

pub mod file;
pub mod once;
pub mod webhook;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use parking_lot::Mutex;

use crate::clock::{Millis, SharedClock};
use crate::config::Config;
use crate::observe::prometheus;
use crate::store::{Store, StoreError};
use crate::trail::checkpoint::{sign, Checkpoint, Signed};

pub use webhook::WebhookWitness;

/// Signs a checkpoint of the head `store` holds now, dated `at`.
pub async fn checkpoint(
    store: &dyn Store,
    key: &SigningKey,
    at: Millis,
) -> Result<Signed, StoreError> {
    let head = store.audit_head().await?;
    Ok(sign(key, Checkpoint::of(&head, at)))
}

/// This node's checkpoint maker.
pub struct Checkpointer {
    key: SigningKey,
    store: Arc<dyn Store>,
    clock: SharedClock,
    interval: Millis,
    /// When the next checkpoint is due.
    next: Mutex<Millis>,
    file: Option<PathBuf>,
    webhook: Option<Arc<WebhookWitness>>,
    /// Checkpoints the file witness could not keep.
    file_failures: AtomicU64,
}

impl Checkpointer {
    /// The first checkpoint is due at once: the head as this node found it.
    pub fn new(config: &Config, store: Arc<dyn Store>, clock: SharedClock) -> Self {
        let audit = &config.audit;
        let webhook = WebhookWitness::configured(config).map(Arc::new);
        Self {
            key: audit.signing_key.signing().clone(),
            store,
            next: Mutex::new(clock.now_ms()),
            clock,
            interval: audit.checkpoint_interval.as_millis() as Millis,
            file: audit.checkpoint_file.clone(),
            webhook,
            file_failures: AtomicU64::new(0),
        }
    }

    /// The webhook witness, whose deliveries run in a task of their own.
    pub fn webhook(&self) -> Option<Arc<WebhookWitness>> {
        self.webhook.clone()
    }

    /// Checkpoints the file witness failed to keep since start.
    pub fn file_failures(&self) -> u64 {
        self.file_failures.load(Ordering::Relaxed)
    }

    /// Makes a checkpoint and hands it to the witnesses when one is due;
    /// answers when the next one is. The cadence keeps to the first one's
    /// time; after a pause longer than the interval (a suspended machine)
    /// one checkpoint is made, not one per interval missed.
    pub async fn tick(&self) -> Millis {
        let now = self.clock.now_ms();
        let next = {
            let mut next = self.next.lock();
            if now < *next {
                return *next;
            }
            let mut following = *next + self.interval;
            if following <= now {
                following = now + self.interval;
            }
            *next = following;
            following
        };
        match checkpoint(self.store.as_ref(), &self.key, now).await {
            Ok(signed) => {
                prometheus::audit_checkpoint(true);
                tracing::debug!(seq = signed.checkpoint.seq, "audit checkpoint signed");
                self.hand(signed).await;
            }
            Err(e) => {
                prometheus::audit_checkpoint(false);
                tracing::warn!(error = %e, "could not read the audit chain's head for a checkpoint; trying again at the next one");
            }
        }
        next
    }

    async fn hand(&self, signed: Signed) {
        if let Some(w) = &self.webhook {
            w.hand(signed.clone());
        }
        let Some(path) = self.file.clone() else {
            return;
        };
        match file::append_off_thread(path, signed.to_line()).await {
            Ok(()) => prometheus::checkpoint_witness("file", "sent"),
            Err(e) => {
                self.file_failures.fetch_add(1, Ordering::Relaxed);
                prometheus::checkpoint_witness("file", "failed");
                tracing::warn!(
                    error = %e,
                    path = %self.file.as_deref().unwrap_or_else(|| std::path::Path::new("")).display(),
                    seq = signed.checkpoint.seq,
                    "could not append a checkpoint to audit.checkpoint_file; the next one is tried as usual"
                );
            }
        }
    }

    /// Makes checkpoints for the life of the server.
    pub async fn run(self: Arc<Self>) {
        loop {
            let next = self.tick().await;
            let wait = (next - self.clock.now_ms()).max(1) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::store::SqliteStore;
    use crate::trail::witnessed::read_lines;

    const MINUTE: Millis = 60_000;

    type Setup = (
        Checkpointer,
        Arc<ManualClock>,
        Arc<dyn Store>,
        tempfile::TempDir,
    );

    async fn setup(file: &std::path::Path) -> Setup {
        setup_with(file, None).await
    }

    async fn setup_with(file: &std::path::Path, webhook: Option<&str>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::FileConfig {
            data_dir: Some(dir.path().to_path_buf()),
            audit: crate::config::audit::AuditFile {
                checkpoint_file: Some(file.to_path_buf()),
                checkpoint_webhook: webhook.map(String::from),
                ..Default::default()
            },
            escalation: crate::config::escalation::EscalationFile {
                webhook_secret: Some("checkpoint-webhook-secret-0123".into()),
                ..Default::default()
            },
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let clock = Arc::new(ManualClock::new(1_795_600_800_000));
        let c = Checkpointer::new(&config, store.clone(), clock.clone());
        (c, clock, store, dir)
    }

    fn lines(c: &Checkpointer, path: &std::path::Path) -> Vec<Signed> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        read_lines(&text, &[c.key.verifying_key()]).unwrap()
    }

    #[tokio::test]
    async fn one_checkpoint_per_interval_on_the_clock() {
        let out = tempfile::tempdir().unwrap();
        let path = out.path().join("checkpoints.jsonl");
        let (c, clock, store, _dir) = setup(&path).await;
        let start = clock.now_ms();
        assert_eq!(c.tick().await, start + MINUTE, "the first is made at start");
        assert_eq!(lines(&c, &path).len(), 1);
        clock.advance(MINUTE - 1);
        assert_eq!(c.tick().await, start + MINUTE, "not due yet");
        assert_eq!(lines(&c, &path).len(), 1);
        // Records appended meanwhile: the next checkpoint signs the new head.
        let body = serde_json::json!({"id": "n", "title": "t"});
        let n =
            crate::notification::Notification::from_body(body, || unreachable!(), clock.now_ms())
                .unwrap();
        store.insert(&n, &["u".into()]).await.unwrap();
        clock.advance(1);
        assert_eq!(c.tick().await, start + 2 * MINUTE);
        let made = lines(&c, &path);
        assert_eq!(made.len(), 2);
        let head = store.audit_head().await.unwrap();
        assert_eq!(
            (made[1].checkpoint.seq, &made[1].checkpoint.hash),
            (head.seq, &head.hash)
        );
        assert_eq!(made[0].checkpoint.seq, 0);
        // Ten minutes asleep: one checkpoint, and the cadence from now.
        clock.advance(10 * MINUTE);
        let now = clock.now_ms();
        assert_eq!(c.tick().await, now + MINUTE);
        assert_eq!(lines(&c, &path).len(), 3);
    }

    #[tokio::test]
    async fn a_full_disk_under_the_checkpoint_file_is_counted_and_the_maker_goes_on() {
        let (c, clock, _store, _dir) = setup(std::path::Path::new("/dev/full")).await;
        let start = clock.now_ms();
        assert_eq!(c.tick().await, start + MINUTE);
        clock.advance(MINUTE);
        assert_eq!(c.tick().await, start + 2 * MINUTE);
        assert_eq!(c.file_failures(), 2);
    }

    #[tokio::test]
    async fn a_witness_webhook_that_is_down_holds_nothing_up() {
        // Nothing listens on the discard port: every attempt would fail.
        let out = tempfile::tempdir().unwrap();
        let path = out.path().join("checkpoints.jsonl");
        let (c, clock, _store, _dir) = setup_with(&path, Some("http://127.0.0.1:9/witness")).await;
        let start = clock.now_ms();
        // Handing a checkpoint to the webhook queues it and returns: the
        // file still gets it, and the next tick comes on time.
        let ticked = tokio::time::timeout(Duration::from_secs(2), c.tick()).await;
        assert_eq!(ticked.unwrap(), start + MINUTE);
        clock.advance(MINUTE);
        c.tick().await;
        assert_eq!(c.webhook().unwrap().waiting(), 2);
        assert_eq!(lines(&c, &path).len(), 2);
    }
}
