//! What the dashboard shows of an open notification's escalation: how many
//! steps of its policy have fired, which step is next and when, and from
//! when it is overdue (its policy's first step is past: someone should
//! have answered). Times are absolute, as everywhere in the picture, so
//! the page counts down to the next step and judges overdue itself.

use serde_json::{json, Value};

use crate::clock::{rfc3339, Millis};
use crate::config::escalation::{Action, Policy};
use crate::store::Escalation;

/// The `escalation` of a listed notification created at `created_at`:
/// `null` when its severity has no policy and nothing ever fired, or when
/// the store did not say (`state` is `None`).
pub fn view(policy: Option<&Policy>, created_at: Millis, state: Option<&Escalation>) -> Value {
    let Some(state) = state else {
        return Value::Null;
    };
    if policy.is_none() && state.fired == 0 {
        return Value::Null;
    }
    let next = state.next.map(|(level, due_at)| {
        let mut step = json!({ "level": level, "dueAt": rfc3339(due_at) });
        // The action the step takes when it fires: the configured policy's.
        if let Some(action) = policy.and_then(|p| p.step(level)).map(|s| &s.action) {
            step["action"] = json!(action.name());
            if let Some(to) = whom(action) {
                step["to"] = to;
            }
        }
        step
    });
    let open = state.closed_at.is_none();
    json!({
        "level": state.fired,
        "levels": policy.map(|p| p.steps.len()),
        "next": next,
        "overdueAt": policy
            .filter(|_| open)
            .and_then(|p| p.first_due(created_at))
            .map(rfc3339),
        "closedAt": state.closed_at.map(rfc3339),
    })
}

/// Who a step adds. Never a webhook's address: it may carry a token of
/// the pager gateway's.
fn whom(action: &Action) -> Option<Value> {
    match action {
        Action::ToRole(role) => Some(json!({ "role": role })),
        Action::ToUsers(users) => Some(json!({ "users": users })),
        Action::Renotify | Action::Webhook(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::escalation::Step;

    fn policy() -> Policy {
        let step = |s, action| Step {
            after: Duration::from_secs(s),
            action,
        };
        Policy {
            steps: vec![
                step(300, Action::Renotify),
                step(600, Action::ToRole("attending".into())),
                step(
                    1200,
                    Action::Webhook("https://pager.example/hook?t=x".into()),
                ),
            ],
        }
    }

    #[test]
    fn the_next_step_says_its_action_and_whom_never_a_webhook_address() {
        let p = policy();
        let state = Escalation {
            fired: 1,
            next: Some((2, 600_000)),
            closed_at: None,
        };
        assert_eq!(
            view(Some(&p), 0, Some(&state)),
            json!({
                "level": 1, "levels": 3,
                "next": { "level": 2, "dueAt": rfc3339(600_000), "action": "to_role",
                          "to": { "role": "attending" } },
                "overdueAt": rfc3339(300_000),
                "closedAt": null,
            })
        );
        let webhook = Escalation {
            fired: 2,
            next: Some((3, 1_200_000)),
            closed_at: None,
        };
        let v = view(Some(&p), 0, Some(&webhook));
        assert_eq!(v["next"]["action"], "webhook");
        assert!(!v.to_string().contains("pager.example"));
    }

    #[test]
    fn without_a_policy_or_an_answer_there_is_nothing_to_show() {
        let none = Escalation::default();
        assert_eq!(view(None, 0, Some(&none)), Value::Null);
        assert_eq!(view(Some(&policy()), 0, None), Value::Null);
        // A policy removed since: what fired still shows, with no next action.
        let fired = Escalation {
            fired: 1,
            next: None,
            closed_at: None,
        };
        let v = view(None, 0, Some(&fired));
        assert_eq!(
            (v["level"].clone(), v["levels"].clone()),
            (json!(1), Value::Null)
        );
    }

    #[test]
    fn a_closed_notification_is_never_overdue() {
        let closed = Escalation {
            fired: 1,
            next: None,
            closed_at: Some(400_000),
        };
        let v = view(Some(&policy()), 0, Some(&closed));
        assert_eq!(v["overdueAt"], Value::Null);
        assert_eq!(v["closedAt"], rfc3339(400_000));
    }
}
