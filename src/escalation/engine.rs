//! The escalation engine: fires the steps of open notifications. Each due
//! step is claimed by one node (the store's lease), its durable part (new
//! recipients, its audit record) is committed, then the sockets are told,
//! then the step is done. A node that dies in between leaves a claim that
//! another node takes over when the lease runs out: the record is never
//! written twice, and the telling is repeated; the node holding each socket
//! drops a step the socket heard already, or one of a notification it is
//! done with (`connections/steps.rs`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde_json::Value;

use crate::broker::{Broker, Message, Target};
use crate::clock::{Millis, SharedClock};
use crate::config::escalation::{Action, Policy};
use crate::config::Config;
use crate::connections::connection::Handle;
use crate::escalation::{self, webhook};
use crate::notification::Notification;
use crate::protocol;
use crate::store::{ClaimedStep, Completion, StepOutcome, Store};
use crate::trail::{Entry, Kind};

/// Steps claimed per round.
const CLAIM_BATCH: u32 = 100;

/// How soon to look again at steps that are due but held, and at the
/// roles with an open escalation (another node may have added one).
const RECHECK_MS: Millis = 1_000;

/// Tells the scheduler that something falls due at the given time, so that
/// it wakes then if it sleeps until later.
pub type Wake = Box<dyn Fn(Millis) + Send + Sync>;

/// The escalation engine of this node. It reads the `escalation` section of
/// the configuration, and owns what only escalation needs: the roles with
/// an open escalation and the client webhooks are posted with.
pub struct Escalations {
    config: Arc<Config>,
    clock: SharedClock,
    store: Arc<dyn Store>,
    broker: Arc<dyn Broker>,
    /// This node's name, which its claims carry.
    node: Arc<str>,
    /// Wakes the scheduler for a webhook's retry, or for the levels it held back.
    wake: Wake,
    /// Roles that are recipients of an open notification (refreshed from
    /// the store by the scheduler), so that only their members' connects
    /// ask the store for escalations to join.
    open_roles: RwLock<HashSet<String>>,
    /// When `open_roles` was last read from the store.
    roles_refreshed: AtomicI64,
    /// The client escalation webhooks are posted with.
    webhooks: reqwest::Client,
    /// One round at a time on this node. A round claims, fires and
    /// completes; a second one beside it (a test driving rounds while the
    /// scheduler runs one) would find the first one's claims held and take
    /// their lease's end for its next deadline.
    round: tokio::sync::Mutex<()>,
}

impl Escalations {
    pub fn new(
        config: Arc<Config>,
        clock: SharedClock,
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        node: Arc<str>,
        wake: Wake,
    ) -> Self {
        Self {
            config,
            clock,
            store,
            broker,
            node,
            wake,
            open_roles: RwLock::new(HashSet::new()),
            roles_refreshed: AtomicI64::new(Millis::MIN),
            webhooks: reqwest::Client::builder()
                .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            round: tokio::sync::Mutex::new(()),
        }
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    fn node_id(&self) -> &str {
        &self.node
    }

    /// The escalation steps of a new notification with `severity`.
    pub fn schedule(&self, n: &Notification) -> Vec<(u32, Millis)> {
        self.config
            .escalation
            .policy(n.severity())
            .map(|p| p.schedule(n.created_at))
            .unwrap_or_default()
    }

    /// Fires every step due now that this node can claim; returns when to
    /// look again. Costs one indexed read when nothing is due, so the
    /// scheduler's other deadlines do not turn into store writes.
    pub async fn run_due(self: &Arc<Self>) -> Option<Millis> {
        let _round = self.round.lock().await;
        let lease = self.config.escalation.lease.as_millis() as Millis;
        let mut next = self.next_step_due().await;
        while next.is_some_and(|at| at <= self.now()) {
            let now = self.now();
            let claimed = match self
                .store
                .claim_steps(now, self.node_id(), now + lease, CLAIM_BATCH)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim due escalation steps; trying again shortly");
                    return Some(now + RECHECK_MS);
                }
            };
            if claimed.is_empty() {
                // What is due is held by another node (or by a webhook in
                // flight here), or waits for an earlier level that is: look
                // again when that claim can be taken over, not in a spin.
                next = match self.store.next_claim_end(now).await {
                    Ok(Some(end)) => Some(end),
                    _ => Some(now + RECHECK_MS),
                };
                break;
            }
            // Firing a level unblocks the next one: a notification whose
            // steps all fell due while no node ran fires them in one round.
            // The webhook steps go first: their POSTs start at once, each
            // bounded by `webhook_timeout` (shorter than the lease), so no
            // POST waits behind the other steps' store writes until the
            // claim has run out and another node posts the page again.
            let (webhooks, others): (Vec<_>, Vec<_>) =
                claimed.into_iter().partition(|s| self.is_webhook(s));
            for step in webhooks.into_iter().chain(others) {
                self.fire(step, now + lease).await;
            }
            next = self.next_step_due().await;
        }
        self.refresh_open_roles().await;
        next
    }

    /// When the next step falls due; a second from now when the store
    /// cannot say.
    async fn next_step_due(&self) -> Option<Millis> {
        match self.store.next_step_due().await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the next escalation deadline");
                Some(self.now() + RECHECK_MS)
            }
        }
    }

    /// Roles with an open escalation, so that a connect of one of their
    /// members costs a store write only when there is something to join.
    async fn refresh_open_roles(&self) {
        let now = self.now();
        let last = self.roles_refreshed.load(Ordering::Relaxed);
        if now >= last && now.saturating_sub(last) < RECHECK_MS {
            return;
        }
        if let Ok(roles) = self.store.open_roles().await {
            *self.open_roles.write() = roles.into_iter().collect();
            self.roles_refreshed.store(now, Ordering::Relaxed);
        }
    }

    /// Makes `h`'s user a recipient of the open notifications escalated to
    /// its role (`only`: of that one), when there are any.
    pub async fn join_role(&self, h: &Handle, only: Option<&str>) -> u64 {
        let role = &*h.conn.role;
        if !self.open_roles.read().contains(role) {
            return 0;
        }
        match self
            .store
            .join_role(&h.conn.user_id, role, only, self.now())
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, sid = %h.conn.sid, "could not join the escalations of the socket's role");
                0
            }
        }
    }

    fn completion(&self, step: &ClaimedStep, audit: Vec<Entry>, then: StepOutcome) -> Completion {
        Completion {
            notification_id: step.notification.id.clone(),
            level: step.level,
            owner: self.node_id().to_string(),
            at: self.now(),
            add_users: vec![],
            add_role: None,
            audit,
            then,
        }
    }

    /// Commits `c`; false when the claim was lost (the notification closed,
    /// or another node took the step over).
    async fn commit_step(&self, c: &Completion) -> bool {
        match self.store.complete_step(c).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, id = %c.notification_id, level = c.level, "could not record an escalation step; it fires again when its claim runs out");
                false
            }
        }
    }

    /// Whether `step` is a webhook step of its policy.
    fn is_webhook(&self, step: &ClaimedStep) -> bool {
        self.config
            .escalation
            .policy(step.notification.severity())
            .and_then(|p| p.step(step.level))
            .is_some_and(|s| matches!(s.action, Action::Webhook(_)))
    }

    /// Fires `step`, claimed until `claim_end`.
    async fn fire(self: &Arc<Self>, step: ClaimedStep, claim_end: Millis) {
        let n = &step.notification;
        let Some(policy) = self.config.escalation.policy(n.severity()).cloned() else {
            // The policy was removed from the configuration since.
            let done = self.completion(&step, vec![], StepOutcome::Done);
            self.commit_step(&done).await;
            return;
        };
        let Some(action) = policy.step(step.level).map(|s| s.action.clone()) else {
            let done = self.completion(&step, vec![], StepOutcome::Done);
            self.commit_step(&done).await;
            return;
        };
        if let Action::Webhook(url) = &action {
            // A retry is an attempt of the same step (counted by the
            // webhook attempts), not a step fired again.
            if step.attempts == 0 {
                crate::observe::prometheus::escalation_step(action.name());
            }
            let timeout = self.config.escalation.webhook_timeout.as_millis() as Millis;
            if !posts_within_claim(self.now(), timeout, claim_end) {
                // Its claim runs out before a POST could end: the step is
                // posted when claimed again, once, rather than twice.
                tracing::warn!(id = %n.id, level = step.level, "an escalation webhook's claim ran out before it could be posted; it is posted when claimed again");
                return;
            }
            let engine = self.clone();
            let url = url.clone();
            tokio::spawn(async move { engine.post_webhook(step, &url).await });
            return;
        }
        if !step.fired {
            let mut c = self.completion(
                &step,
                vec![self.step_record(&step, &policy, &action)],
                StepOutcome::Fired,
            );
            match &action {
                Action::ToUsers(users) => c.add_users = users.clone(),
                Action::ToRole(role) => c.add_role = Some(role.clone()),
                _ => {}
            }
            if !self.commit_step(&c).await {
                return;
            }
            // Counted once, when recorded: a node taking a fired step over
            // only tells the sockets.
            crate::observe::prometheus::escalation_step(action.name());
            if let Action::ToRole(role) = &action {
                self.open_roles.write().insert(role.clone());
            }
        }
        self.tell(&step, &policy, &action).await;
        let done = self.completion(&step, vec![], StepOutcome::Done);
        self.commit_step(&done).await;
    }

    fn step_record(&self, step: &ClaimedStep, policy: &Policy, action: &Action) -> Entry {
        let id = &step.notification.id;
        let at = self.now();
        match action {
            Action::Renotify => Entry::new(Kind::Reminded, at)
                .notification(id)
                .level(step.level)
                .detail(serde_json::json!({
                    "reminder": escalation::reminder_number(policy, step.level),
                })),
            Action::ToRole(role) => Entry::new(Kind::Escalated, at)
                .notification(id)
                .level(step.level)
                .detail(serde_json::json!({
                    "to": { "role": role },
                    "reason": escalation::reason(policy, step.level),
                })),
            Action::ToUsers(users) => Entry::new(Kind::Escalated, at)
                .notification(id)
                .level(step.level)
                .detail(serde_json::json!({
                    "to": { "users": users },
                    "reason": escalation::reason(policy, step.level),
                })),
            Action::Webhook(_) => Entry::new(Kind::WebhookSent, at).notification(id),
        }
    }

    /// The sockets' part of a step that is recorded.
    async fn tell(&self, step: &ClaimedStep, policy: &Policy, action: &Action) {
        let n = &step.notification;
        let recipients = match self.store.notification(&n.id).await {
            Ok(Some((_, r))) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, id = %n.id, "could not read a notification's recipients to escalate it");
                return;
            }
        };
        match action {
            Action::Renotify => {
                let originals: Vec<String> = recipients
                    .into_iter()
                    .filter(|r| r.escalation_level.is_none())
                    .map(|r| r.user_id)
                    .collect();
                let reminder = escalation::reminder_number(policy, step.level);
                let again = n.with_field("reminder", reminder.into());
                let message = Message::Event {
                    name: protocol::CRITICAL_NOTIFICATION.into(),
                    data: Some(Value::Object(again.into_body())),
                };
                self.broker
                    .deliver(&Target::Users(originals), &message)
                    .await;
            }
            Action::ToRole(_) | Action::ToUsers(_) => {
                let escalated = n.with_field(
                    "escalation",
                    escalation::escalation_field(policy, step.level),
                );
                let message = Message::Notification(Arc::new(escalated));
                let added: Vec<String> = match action {
                    Action::ToUsers(users) => users.clone(),
                    _ => vec![],
                };
                let target = match action {
                    Action::ToRole(role) => Target::Role(role.clone()),
                    _ => Target::Users(added.clone()),
                };
                self.broker.deliver(&target, &message).await;
                // A role added earlier is an earlier recipient: its sockets
                // hear it through the role, and the members who joined
                // through it through the role or, connected with a token
                // for another role, as users; each socket once.
                let roles: Vec<String> = escalation::roles_before(policy, step.level)
                    .into_iter()
                    .map(|(_, role)| role)
                    .collect();
                let earlier: Vec<String> = recipients
                    .into_iter()
                    .filter(|r| r.escalation_level.is_none_or(|l| l < step.level))
                    .map(|r| r.user_id)
                    .filter(|u| !added.contains(u))
                    .collect();
                let event = Message::Event {
                    name: protocol::NOTIFICATION_ESCALATED.into(),
                    data: Some(escalation::escalated_event(
                        &n.id,
                        step.level,
                        action,
                        self.now(),
                    )),
                };
                let earlier = if roles.is_empty() {
                    Target::Users(earlier)
                } else {
                    Target::Recipients {
                        users: earlier,
                        roles,
                    }
                };
                self.broker.deliver(&earlier, &event).await;
            }
            Action::Webhook(_) => {}
        }
    }

    /// One webhook attempt, recorded as sent or failed; a failure is
    /// retried later (durably: the step stays in the store).
    async fn post_webhook(&self, step: ClaimedStep, url: &str) {
        let cfg = &self.config.escalation;
        let Some(secret) = cfg.webhook_secret.as_ref() else {
            return;
        };
        let n = &step.notification;
        let delivery = format!("{}:{}", n.id, step.level);
        let body = webhook::body(n, step.level, self.now());
        let outcome = webhook::post(
            &self.webhooks,
            url,
            secret.expose().as_bytes(),
            &delivery,
            body,
            cfg.webhook_timeout,
        )
        .await;
        let attempt = step.attempts + 1;
        let at = self.now();
        let (record, then) = match &outcome {
            webhook::Outcome::Sent { status } => (
                Entry::new(Kind::WebhookSent, at)
                    .notification(&n.id)
                    .level(step.level)
                    .detail(serde_json::json!({ "status": status, "attempt": attempt })),
                StepOutcome::Done,
            ),
            webhook::Outcome::Failed { status, error } => {
                let retry = webhook::backoff(step.attempts);
                tracing::warn!(id = %n.id, level = step.level, attempt, error, retry_in = ?retry, "an escalation webhook failed; it is retried");
                (
                    Entry::new(Kind::WebhookFailed, at)
                        .notification(&n.id)
                        .level(step.level)
                        .detail(serde_json::json!({
                            "status": status,
                            "error": error,
                            "attempt": attempt,
                        })),
                    StepOutcome::RetryAt(at + millis(retry)),
                )
            }
        };
        crate::observe::prometheus::webhook_attempt(matches!(
            outcome,
            webhook::Outcome::Sent { .. }
        ));
        let c = self.completion(&step, vec![record], then);
        if self.commit_step(&c).await {
            // A retry, or the levels this attempt held back, are due.
            let due = match then {
                StepOutcome::RetryAt(due) => due,
                _ => at,
            };
            (self.wake)(due);
        }
    }
}

fn millis(d: Duration) -> Millis {
    d.as_millis() as Millis
}

/// Whether a webhook POST started at `now`, which may take `timeout`,
/// ends before its step's claim does at `claim_end`: past it, another node
/// may claim the step and post it too.
fn posts_within_claim(now: Millis, timeout: Millis, claim_end: Millis) -> bool {
    now.saturating_add(timeout) < claim_end
}

#[cfg(test)]
mod tests {
    use super::posts_within_claim;

    #[test]
    fn a_post_starts_only_when_it_can_end_within_its_claim() {
        assert!(posts_within_claim(1_000, 10_000, 31_000));
        assert!(!posts_within_claim(21_000, 10_000, 31_000));
        assert!(!posts_within_claim(25_000, 10_000, 31_000));
    }
}
