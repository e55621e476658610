//! `[escalation]` in `herald.toml`: a policy per notification `severity`,
//! each an ordered list of steps (`after` a duration from `createdAt`, and
//! one action), validated at start-up with errors that name the step.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;

use super::values::{duration_or, is_http_url, parse_duration};
use super::{ConfigError, Secret};
use crate::clock::Millis;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationFile {
    pub webhook_secret: Option<String>,
    /// How long a node holds a step it claimed before another node may
    /// take it over (the claimer died).
    pub lease: Option<String>,
    /// How long one webhook attempt may take.
    pub webhook_timeout: Option<String>,
    #[serde(default)]
    pub policies: HashMap<String, PolicyFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub steps: Vec<StepFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    pub after: Option<String>,
    pub renotify: Option<bool>,
    pub to_role: Option<String>,
    pub to_users: Option<Vec<String>>,
    pub webhook: Option<String>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Every socket of each original recipient gets the notification again.
    Renotify,
    /// The role becomes a recipient.
    ToRole(String),
    /// The users become recipients.
    ToUsers(Vec<String>),
    /// An out-of-band POST (a pager or SMS gateway).
    Webhook(String),
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Renotify => "renotify",
            Action::ToRole(_) => "to_role",
            Action::ToUsers(_) => "to_users",
            Action::Webhook(_) => "webhook",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// From the notification's `createdAt`.
    pub after: Duration,
    pub action: Action,
}

/// One severity's steps, in firing order; step `n` (from 1) is level `n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub steps: Vec<Step>,
}

impl Policy {
    /// When each level falls due for a notification created at `created_at`.
    pub fn schedule(&self, created_at: Millis) -> Vec<(u32, Millis)> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32 + 1, created_at + s.after.as_millis() as Millis))
            .collect()
    }

    /// Step `level` (from 1).
    pub fn step(&self, level: u32) -> Option<&Step> {
        self.steps.get((level as usize).checked_sub(1)?)
    }

    /// When the first step falls due: past it, an open notification is overdue.
    pub fn first_due(&self, created_at: Millis) -> Option<Millis> {
        self.schedule(created_at).first().map(|(_, at)| *at)
    }
}

#[derive(Debug, Clone)]
pub struct EscalationConfig {
    /// By severity; severities without a policy are never escalated.
    pub policies: BTreeMap<String, Policy>,
    pub webhook_secret: Option<Secret>,
    pub lease: Duration,
    pub webhook_timeout: Duration,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        Self {
            policies: BTreeMap::new(),
            webhook_secret: None,
            lease: Duration::from_secs(30),
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

impl EscalationConfig {
    /// The policy for a notification's `severity`, if it has one.
    pub fn policy(&self, severity: Option<&str>) -> Option<&Policy> {
        self.policies.get(severity?)
    }
}

fn step(severity: &str, level: usize, f: StepFile) -> Result<Step, ConfigError> {
    let setting = format!("escalation.policies.{severity}.steps[{level}]");
    let bad = |m: String| ConfigError::invalid(&setting, m);
    let after = match &f.after {
        Some(a) => parse_duration(&format!("{setting}.after"), a)?,
        None => return Err(bad("needs `after` (e.g. after = \"5m\")".into())),
    };
    let mut actions = Vec::new();
    match f.renotify {
        Some(true) => actions.push(Action::Renotify),
        Some(false) => return Err(bad("renotify = false does nothing: remove the step".into())),
        None => {}
    }
    if let Some(role) = f.to_role {
        if role.trim().is_empty() {
            return Err(bad("to_role must name a role".into()));
        }
        actions.push(Action::ToRole(role.trim().to_string()));
    }
    if let Some(users) = f.to_users {
        let users: Vec<String> = users
            .into_iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if users.is_empty() {
            return Err(bad("to_users must name at least one user".into()));
        }
        actions.push(Action::ToUsers(users));
    }
    if let Some(url) = f.webhook {
        if !is_http_url(&url) {
            return Err(bad(format!(
                "webhook {url:?} is not an http:// or https:// URL"
            )));
        }
        actions.push(Action::Webhook(url.trim().to_string()));
    }
    match actions.len() {
        1 => Ok(Step {
            after,
            action: actions.remove(0),
        }),
        0 => Err(bad(
            "needs one action: renotify = true, to_role, to_users or webhook".into(),
        )),
        _ => Err(bad(format!(
            "has {} actions ({}); give each its own step",
            actions.len(),
            actions
                .iter()
                .map(Action::name)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

impl EscalationFile {
    pub fn resolve(self) -> Result<EscalationConfig, ConfigError> {
        let defaults = EscalationConfig::default();
        let lease = duration_or("escalation.lease", &self.lease, defaults.lease)?;
        if lease < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "escalation.lease",
                "must be at least 1s",
            ));
        }
        let webhook_timeout = duration_or(
            "escalation.webhook_timeout",
            &self.webhook_timeout,
            defaults.webhook_timeout,
        )?;
        if webhook_timeout.is_zero() || webhook_timeout >= lease {
            return Err(ConfigError::invalid(
                "escalation.webhook_timeout",
                "must be greater than zero and shorter than escalation.lease",
            ));
        }
        let webhook_secret = match self.webhook_secret {
            Some(s) if s.trim().is_empty() => None,
            Some(s) if s.len() < 16 => {
                return Err(ConfigError::invalid(
                    "HERALD_ESCALATION_WEBHOOK_SECRET",
                    "must be at least 16 characters",
                ))
            }
            Some(s) => Some(Secret::new(s)),
            None => None,
        };
        let mut policies = BTreeMap::new();
        for (severity, p) in self.policies {
            let mut steps = Vec::with_capacity(p.steps.len());
            for (i, f) in p.steps.into_iter().enumerate() {
                let s = step(&severity, i + 1, f)?;
                let setting = format!("escalation.policies.{severity}.steps[{}]", i + 1);
                if let Some(prev) = steps.last().map(|p: &Step| p.after) {
                    if s.after < prev {
                        return Err(ConfigError::invalid(
                            &setting,
                            "steps fire in order: its `after` must not be earlier than the step before",
                        ));
                    }
                }
                if matches!(s.action, Action::Webhook(_)) && webhook_secret.is_none() {
                    return Err(ConfigError::invalid(
                        &setting,
                        "a webhook is signed: set escalation.webhook_secret or HERALD_ESCALATION_WEBHOOK_SECRET",
                    ));
                }
                steps.push(s);
            }
            if steps.is_empty() {
                return Err(ConfigError::invalid(
                    &format!("escalation.policies.{severity}"),
                    "has no steps",
                ));
            }
            policies.insert(severity, Policy { steps });
        }
        Ok(EscalationConfig {
            policies,
            webhook_secret,
            lease,
            webhook_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(toml: &str) -> Result<EscalationConfig, String> {
        let f: EscalationFile = toml::from_str(toml).map_err(|e| e.to_string())?;
        f.resolve().map_err(|e| e.to_string())
    }

    #[test]
    fn the_contracts_example_resolves_in_order() {
        let c = resolve(
            r#"
            webhook_secret = "0123456789abcdef-secret"
            [policies.critical]
            steps = [
              { after = "5m",  renotify = true },
              { after = "10m", to_role = "attending" },
              { after = "15m", to_users = ["chief-radiologist"] },
              { after = "20m", webhook = "https://pager.example/hook" },
            ]"#,
        )
        .unwrap();
        let p = c.policy(Some("critical")).unwrap();
        assert_eq!(
            p.schedule(1_000),
            vec![(1, 301_000), (2, 601_000), (3, 901_000), (4, 1_201_000)]
        );
        assert_eq!(
            p.step(2).unwrap().action,
            Action::ToRole("attending".into())
        );
        assert_eq!(p.first_due(0), Some(300_000));
        assert!(c.policy(Some("info")).is_none());
        assert!(c.policy(None).is_none());
    }

    #[test]
    fn errors_name_the_step() {
        let cases = [
            ("[policies.critical]\nsteps = [{ renotify = true }]", "steps[1]", "after"),
            ("[policies.critical]\nsteps = [{ after = \"1m\" }]", "steps[1]", "one action"),
            (
                "[policies.critical]\nsteps = [{ after = \"1m\", renotify = true }, { after = \"2m\", renotify = true, to_role = \"a\" }]",
                "steps[2]",
                "2 actions",
            ),
            (
                "[policies.critical]\nsteps = [{ after = \"2m\", renotify = true }, { after = \"1m\", renotify = true }]",
                "steps[2]",
                "in order",
            ),
            ("[policies.critical]\nsteps = [{ after = \"1m\", webhook = \"https://p/h\" }]", "steps[1]", "webhook_secret"),
            (
                "webhook_secret = \"0123456789abcdef-x\"\n[policies.critical]\nsteps = [{ after = \"1m\", webhook = \"ftp://p/h\" }]",
                "steps[1]",
                "not an http",
            ),
            ("[policies.critical]\nsteps = [{ after = \"soon\", renotify = true }]", "steps[1].after", ""),
            ("[policies.critical]\nsteps = [{ after = \"1m\", to_users = [] }]", "steps[1]", "at least one"),
            ("[policies.critical]\nsteps = [{ after = \"1m\", renotify = false }]", "steps[1]", "remove"),
            ("[policies.critical]\nsteps = []", "escalation.policies.critical", "no steps"),
            ("[policies.critical]\nsteps = [{ after = \"1m\", page = true }]", "unknown field", ""),
        ];
        for (toml, setting, why) in cases {
            let e = resolve(toml).unwrap_err();
            assert!(e.contains(setting) && e.contains(why), "{toml}: {e}");
        }
    }

    #[test]
    fn lease_and_timeout_are_checked() {
        assert!(resolve("lease = \"0s\"")
            .unwrap_err()
            .contains("escalation.lease"));
        assert!(resolve("lease = \"5s\"\nwebhook_timeout = \"5s\"")
            .unwrap_err()
            .contains("escalation.webhook_timeout"));
        assert!(resolve("webhook_secret = \"short\"")
            .unwrap_err()
            .contains("HERALD_ESCALATION_WEBHOOK_SECRET"));
        let c = resolve("").unwrap();
        assert!(c.policies.is_empty() && c.webhook_secret.is_none());
    }
}
