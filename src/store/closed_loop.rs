//! What the store keeps for the clinical closed loop, in both engines:
//! where an acknowledgement came from, the escalation steps waiting on
//! their deadlines and claimed by one node at a time, what firing a step
//! commits, and the rows the acknowledgement report is computed from.

use crate::clock::Millis;
use crate::notification::Notification;
use crate::trail::Entry;

/// Who acknowledged, from where: kept in the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub socket_id: Option<String>,
    pub remote: Option<String>,
}

/// A step of an open notification, claimed by this node until its lease
/// runs out: nobody else fires it meanwhile.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedStep {
    pub notification: Notification,
    /// The step's place in its policy, from 1.
    pub level: u32,
    /// The step's durable part (new recipients, its audit record) is
    /// committed; what remains is telling the sockets. True when the node
    /// that committed it died before finishing.
    pub fired: bool,
    /// Webhook attempts made so far.
    pub attempts: u32,
    /// The step came due at this time.
    pub due_at: Millis,
}

/// What to do with a claimed step once its work is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Its durable part is committed; keep the claim while the sockets are told.
    Fired,
    /// Finished: the step is gone, and the next level may fire.
    Done,
    /// A webhook attempt failed: try again at this time. A retried webhook
    /// no longer holds back the levels after it.
    RetryAt(Millis),
}

/// Firing (part of) a claimed step, committed only while the claim is
/// still this node's and the notification still open.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub notification_id: String,
    pub level: u32,
    pub owner: String,
    pub at: Millis,
    /// Users who become recipients of the notification.
    pub add_users: Vec<String>,
    /// A role that becomes a recipient.
    pub add_role: Option<String>,
    pub audit: Vec<Entry>,
    pub then: StepOutcome,
}

/// What an acknowledgement closed, when it was the notification's first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub at: Millis,
    pub by: String,
    /// Every user recipient, original or added, and every role recipient:
    /// whose sockets hear `notification_closed`.
    pub users: Vec<String>,
    pub roles: Vec<String>,
}

/// One notification as the acknowledgement report counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub severity: Option<String>,
    pub created_at: Millis,
    pub closed_at: Option<Millis>,
}

/// Where one notification's escalation stands, as the dashboard lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Escalation {
    /// The highest level whose step has fired (reminded, escalated, or its
    /// webhook sent); 0 before the first.
    pub fired: u32,
    /// The step that falls due next, `(level, due_at)`: a step not yet
    /// fired, the earliest deadline first (a webhook being retried is due
    /// at its retry). `None` once nothing is left to fire.
    pub next: Option<(u32, Millis)>,
    /// When the notification was closed; a closed one has no steps left.
    pub closed_at: Option<Millis>,
}
