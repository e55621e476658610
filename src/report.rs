//! The acknowledgement report: of the notifications created in a period,
//! how many were acknowledged (closed), how many are still open, how many
//! of those are overdue by their severity's escalation policy, the share
//! acknowledged within policy, and how long acknowledging took
//! (nearest-rank p50/p90/p99), overall and by severity.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::Millis;
use crate::config::escalation::EscalationConfig;
use crate::store::ReportRow;

/// The `bySeverity` key of notifications created without a severity; the
/// `severity=` filter takes it too.
pub const NO_SEVERITY: &str = "none";

/// Time to acknowledge, in milliseconds from creation to closing; `None`
/// (null) while nothing in the set was acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: Option<Millis>,
    pub p90: Option<Millis>,
    pub p99: Option<Millis>,
}

/// The figures of one set of notifications.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub count: u64,
    pub acknowledged: u64,
    pub open: u64,
    /// Open notifications whose policy's first step is due at or before
    /// `now`: someone should have answered by now. A severity without a
    /// policy is never overdue.
    pub overdue: u64,
    /// The share (0 to 1) of the notifications with a policy that were
    /// acknowledged before their policy's first step came due: the figure
    /// critical-results programs publish ("98% of critical results
    /// acknowledged within 5 minutes"). See [`within_policy`].
    pub within_policy: Option<f64>,
    pub time_to_acknowledge: Percentiles,
}

/// The whole report: the figures of every counted notification, and the
/// same figures for each severity that occurs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(flatten)]
    pub overall: Figures,
    pub by_severity: BTreeMap<String, Figures>,
}

/// The severity key a row is counted under.
fn key(row: &ReportRow) -> &str {
    row.severity.as_deref().unwrap_or(NO_SEVERITY)
}

/// The report over `rows`, narrowed to one severity key when `only` is
/// given, with overdue judged at `now` against `escalation`'s policies.
pub fn compute(
    rows: &[ReportRow],
    only: Option<&str>,
    escalation: &EscalationConfig,
    now: Millis,
) -> Report {
    let rows: Vec<&ReportRow> = rows
        .iter()
        .filter(|r| only.is_none_or(|s| key(r) == s))
        .collect();
    let mut by: BTreeMap<&str, Vec<&ReportRow>> = BTreeMap::new();
    for r in &rows {
        by.entry(key(r)).or_default().push(r);
    }
    Report {
        overall: figures(&rows, escalation, now),
        by_severity: by
            .into_iter()
            .map(|(k, rs)| (k.to_string(), figures(&rs, escalation, now)))
            .collect(),
    }
}

fn figures(rows: &[&ReportRow], escalation: &EscalationConfig, now: Millis) -> Figures {
    let mut times: Vec<Millis> = rows
        .iter()
        .filter_map(|r| r.closed_at.map(|c| c - r.created_at))
        .collect();
    times.sort_unstable();
    let due = |r: &ReportRow| {
        escalation
            .policy(r.severity.as_deref())
            .and_then(|p| p.first_due(r.created_at))
    };
    let overdue = rows
        .iter()
        .filter(|r| r.closed_at.is_none())
        .filter(|r| due(r).is_some_and(|due| due <= now))
        .count();
    let acknowledged = times.len() as u64;
    Figures {
        count: rows.len() as u64,
        acknowledged,
        open: rows.len() as u64 - acknowledged,
        overdue: overdue as u64,
        within_policy: within_policy(
            rows.iter().filter_map(|r| Some((r.closed_at, due(r)?))),
            now,
        ),
        time_to_acknowledge: Percentiles {
            p50: nearest_rank(&times, 50),
            p90: nearest_rank(&times, 90),
            p99: nearest_rank(&times, 99),
        },
    }
}

/// Of `judged` (when each notification with a policy was closed, if it was,
/// and when its first step comes due), the share acknowledged strictly before that moment (at the
/// moment itself the step fires: too late). A notification still open
/// whose first step is not due yet at `now` counts neither way: it may
/// still be answered in time, and counting it as a miss would lower the
/// figure of every period that ends now. `None` (null) when no
/// notification is judged, as the times are while none was acknowledged:
/// no share is not a share of 0.
fn within_policy(
    judged: impl Iterator<Item = (Option<Millis>, Millis)>,
    now: Millis,
) -> Option<f64> {
    let (mut within, mut decided) = (0u64, 0u64);
    for (closed_at, due) in judged {
        match closed_at {
            Some(closed) if closed < due => {
                within += 1;
                decided += 1;
            }
            Some(_) => decided += 1,
            None if due <= now => decided += 1,
            None => {}
        }
    }
    (decided > 0).then(|| within as f64 / decided as f64)
}

/// The `p`th percentile of `sorted` by nearest rank: the smallest value
/// with at least `p`% of the values at or below it (always one of them,
/// never an interpolation a clinician could not point to).
fn nearest_rank(sorted: &[Millis], p: usize) -> Option<Millis> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::escalation::{Action, Policy, Step};

    fn row(severity: Option<&str>, created_at: Millis, closed_at: Option<Millis>) -> ReportRow {
        ReportRow {
            severity: severity.map(str::to_string),
            created_at,
            closed_at,
        }
    }

    /// `critical` escalates 5 minutes after creation; `routine` has no policy.
    fn policies() -> EscalationConfig {
        let mut e = EscalationConfig::default();
        e.policies.insert(
            "critical".into(),
            Policy {
                steps: vec![Step {
                    after: Duration::from_secs(300),
                    action: Action::Renotify,
                }],
            },
        );
        e
    }

    #[test]
    fn nearest_rank_picks_a_value_that_occurred() {
        let ten: Vec<Millis> = (1..=10).map(|i| i * 100).collect();
        assert_eq!(nearest_rank(&ten, 50), Some(500));
        assert_eq!(nearest_rank(&ten, 90), Some(900));
        assert_eq!(nearest_rank(&ten, 99), Some(1000));
        assert_eq!(nearest_rank(&[7], 50), Some(7));
        assert_eq!(nearest_rank(&[7], 99), Some(7));
        // Four values: p50 is rank 2, p90 and p99 rank 4.
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 90), Some(4));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    #[test]
    fn counts_and_times_overall_and_by_severity() {
        let now = 1_000_000;
        let rows = [
            // critical: acknowledged after 60 s and 120 s
            row(Some("critical"), 0, Some(60_000)),
            row(Some("critical"), 10_000, Some(130_000)),
            // critical, open, created 10 min before now: overdue
            row(Some("critical"), now - 600_000, None),
            // critical, open, created 1 min before now: not yet
            row(Some("critical"), now - 60_000, None),
            // critical, open, first step due exactly now: overdue
            row(Some("critical"), now - 300_000, None),
            // routine: no policy, never overdue however old
            row(Some("routine"), 0, Some(30_000)),
            row(Some("routine"), 0, None),
            // no severity
            row(None, 5_000, Some(5_500)),
        ];
        let r = compute(&rows, None, &policies(), now);
        assert_eq!(
            r.overall,
            Figures {
                count: 8,
                acknowledged: 4,
                open: 4,
                overdue: 2,
                // critical: 2 in time, 2 overdue, 1 not yet due (unjudged)
                within_policy: Some(0.5),
                // sorted: 500, 30 000, 60 000, 120 000
                time_to_acknowledge: Percentiles {
                    p50: Some(30_000),
                    p90: Some(120_000),
                    p99: Some(120_000),
                },
            }
        );
        let keys: Vec<&str> = r.by_severity.keys().map(String::as_str).collect();
        assert_eq!(keys, ["critical", "none", "routine"]);
        let critical = &r.by_severity["critical"];
        assert_eq!(
            (
                critical.count,
                critical.acknowledged,
                critical.open,
                critical.overdue
            ),
            (5, 2, 3, 2)
        );
        assert_eq!(
            critical.time_to_acknowledge,
            Percentiles {
                p50: Some(60_000),
                p90: Some(120_000),
                p99: Some(120_000),
            }
        );
        assert_eq!(critical.within_policy, Some(0.5));
        let routine = &r.by_severity["routine"];
        assert_eq!((routine.open, routine.overdue), (1, 0));
        // No policy: nothing to be within.
        assert_eq!(routine.within_policy, None);
        assert_eq!(r.by_severity["none"].within_policy, None);
        assert_eq!(r.by_severity["none"].time_to_acknowledge.p50, Some(500));
    }

    #[test]
    fn the_severity_filter_narrows_everything_and_none_names_the_unset() {
        let rows = [
            row(Some("critical"), 0, Some(1_000)),
            row(Some("routine"), 0, Some(2_000)),
            row(None, 0, None),
        ];
        let r = compute(&rows, Some("routine"), &policies(), 10_000);
        assert_eq!(r.overall.count, 1);
        assert_eq!(r.overall.time_to_acknowledge.p50, Some(2_000));
        assert_eq!(r.by_severity.keys().collect::<Vec<_>>(), ["routine"]);
        let unset = compute(&rows, Some(NO_SEVERITY), &policies(), 10_000);
        assert_eq!((unset.overall.count, unset.overall.open), (1, 1));
        assert_eq!(unset.overall.time_to_acknowledge, Percentiles::default());
    }

    #[test]
    fn within_policy_is_acknowledged_before_the_first_step_came_due() {
        // `critical`'s first step is due 300 000 ms after creation.
        let due = 300_000;
        let share = |rows: &[ReportRow], now| compute(rows, None, &policies(), now).overall;
        let at = |closed| row(Some("critical"), 0, closed);
        // One millisecond before the step: in time; at the step: too late.
        assert_eq!(share(&[at(Some(due - 1))], due).within_policy, Some(1.0));
        assert_eq!(share(&[at(Some(due))], due).within_policy, Some(0.0));
        assert_eq!(
            share(&[at(Some(due + 60_000))], due).within_policy,
            Some(0.0)
        );
        // Open: not judged before its step is due, a miss from then on,
        // as the clock moves and nothing else changes.
        assert_eq!(share(&[at(None)], due - 1).within_policy, None);
        assert_eq!(share(&[at(None)], due).within_policy, Some(0.0));
        // Three judged, two in time.
        let rows = [
            at(Some(1_000)),
            at(Some(due - 1)),
            at(None),
            row(Some("critical"), 10 * due, None), // not due yet: unjudged
            row(Some("routine"), 0, None),         // no policy: unjudged
        ];
        let f = share(&rows, 2 * due);
        assert_eq!((f.count, f.overdue), (5, 1));
        assert_eq!(f.within_policy, Some(2.0 / 3.0));
    }

    #[test]
    fn within_policy_moves_with_the_injectable_clock() {
        use crate::clock::{Clock, ManualClock};
        let clock = ManualClock::new(0);
        let rows = [
            row(Some("critical"), 0, None),
            row(Some("critical"), 0, Some(10)),
        ];
        let at_now = |c: &ManualClock| compute(&rows, None, &policies(), c.now_ms()).overall;
        assert_eq!(at_now(&clock).within_policy, Some(1.0));
        clock.advance(300_000);
        assert_eq!(at_now(&clock).within_policy, Some(0.5));
    }

    #[test]
    fn an_empty_period_reads_zero_and_null() {
        let r = compute(&[], None, &policies(), 0);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "count": 0, "acknowledged": 0, "open": 0, "overdue": 0,
                "withinPolicy": null,
                "timeToAcknowledge": { "p50": null, "p90": null, "p99": null },
                "bySeverity": {},
            })
        );
    }
}
