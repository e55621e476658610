//! The clinical closed loop's messages: what a reminder, an escalated
//! delivery, `notification_escalated` and `notification_closed` carry, and
//! the webhook to an out-of-band pager. The engine ([`Escalations`],
//! `engine.rs`) fires the steps; the store keeps them durable and claims
//! each for one node at a time.

mod engine;
pub mod webhook;

pub use engine::{Escalations, Wake};

use serde_json::{json, Value};

use crate::clock::{rfc3339, Millis};
use crate::config::escalation::{Action, Policy};

/// Why a step fired, in words a clinician reads on the alert.
pub fn reason(policy: &Policy, level: u32) -> String {
    let after = policy.step(level).map(|s| s.after).unwrap_or_default();
    format!(
        "unacknowledged for {}",
        humantime::format_duration(std::time::Duration::from_secs(after.as_secs()))
    )
}

/// The `"escalation"` field of a delivery to a recipient added at `level`.
pub fn escalation_field(policy: &Policy, level: u32) -> Value {
    json!({ "level": level, "reason": reason(policy, level) })
}

/// Which reminder step `level` is: 1 for the policy's first `renotify`, ...
pub fn reminder_number(policy: &Policy, level: u32) -> u32 {
    policy
        .steps
        .iter()
        .take(level as usize)
        .filter(|s| s.action == Action::Renotify)
        .count() as u32
}

/// The roles `policy` made recipients at the levels before `level`, with
/// their level.
pub fn roles_before(policy: &Policy, level: u32) -> Vec<(u32, String)> {
    policy
        .steps
        .iter()
        .zip(1..level)
        .filter_map(|(s, l)| match &s.action {
            Action::ToRole(role) => Some((l, role.clone())),
            _ => None,
        })
        .collect()
}

/// `notification_escalated`, for the sockets of the earlier recipients.
pub fn escalated_event(id: &str, level: u32, to: &Action, at: Millis) -> Value {
    let to = match to {
        Action::ToRole(role) => json!({ "role": role }),
        Action::ToUsers(users) => json!({ "users": users }),
        _ => Value::Null,
    };
    json!({ "notificationId": id, "level": level, "to": to, "at": rfc3339(at) })
}

/// `notification_closed`, for every socket of every recipient.
pub fn closed_event(id: &str, at: Millis, by: &str) -> Value {
    json!({ "notificationId": id, "closedAt": rfc3339(at), "closedBy": by })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::escalation::Step;
    use crate::notification::Notification;
    use std::time::Duration;

    fn policy() -> Policy {
        let step = |secs, action| Step {
            after: Duration::from_secs(secs),
            action,
        };
        Policy {
            steps: vec![
                step(300, Action::Renotify),
                step(600, Action::ToRole("attending".into())),
                step(700, Action::Renotify),
                step(900, Action::ToUsers(vec!["chief".into()])),
            ],
        }
    }

    #[test]
    fn reminders_are_numbered_among_renotify_steps_only() {
        let p = policy();
        assert_eq!(reminder_number(&p, 1), 1);
        assert_eq!(reminder_number(&p, 3), 2);
    }

    #[test]
    fn escalation_says_level_and_why() {
        let p = policy();
        assert_eq!(
            escalation_field(&p, 2),
            json!({ "level": 2, "reason": "unacknowledged for 10m" })
        );
        let e = escalated_event("n", 4, &p.steps[3].action, 0);
        assert_eq!(e["to"], json!({ "users": ["chief"] }));
        assert_eq!(e["at"], "1970-01-01T00:00:00.000Z");
        let e = escalated_event("n", 2, &p.steps[1].action, 0);
        assert_eq!(e["to"], json!({ "role": "attending" }));
    }

    #[test]
    fn only_roles_added_before_the_level_count() {
        let p = policy();
        assert_eq!(roles_before(&p, 2), vec![]);
        assert_eq!(roles_before(&p, 4), vec![(2, "attending".to_string())]);
    }

    #[test]
    fn a_delivery_adds_its_field_and_keeps_the_rest() {
        let n = Notification::from_body(json!({"id": "n", "title": "t"}), || unreachable!(), 5)
            .unwrap();
        let r = n.with_field("reminder", json!(2));
        assert_eq!(r.body()["reminder"], 2);
        assert_eq!(r.body()["title"], "t");
        assert!(!n.body().contains_key("reminder"));
        assert_eq!(
            serde_json::from_str::<Value>(r.to_json()).unwrap(),
            Value::Object(r.body().clone()),
            "the copy's text is made anew"
        );
    }
}
