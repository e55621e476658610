//! The acknowledgement report: of the notifications created in a period,
//! how many were acknowledged (closed), how many are still open, how many
//! of those are overdue by their severity's escalation policy, and how long
//! acknowledging took (nearest-rank p50/p90/p99), overall and by severity.

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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub count: u64,
    pub acknowledged: u64,
    pub open: u64,
    /// Open notifications whose policy's first step is due at or before
    /// `now`: someone should have answered by now. A severity without a
    /// policy is never overdue.
    pub overdue: u64,
    pub time_to_acknowledge: Percentiles,
}

/// The whole report: the figures of every counted notification, and the
/// same figures for each severity that occurs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
    let overdue = rows
        .iter()
        .filter(|r| r.closed_at.is_none())
        .filter(|r| {
            escalation
                .policy(r.severity.as_deref())
                .and_then(|p| p.first_due(r.created_at))
                .is_some_and(|due| due <= now)
        })
        .count();
    let acknowledged = times.len() as u64;
    Figures {
        count: rows.len() as u64,
        acknowledged,
        open: rows.len() as u64 - acknowledged,
        overdue: overdue as u64,
        time_to_acknowledge: Percentiles {
            p50: nearest_rank(&times, 50),
            p90: nearest_rank(&times, 90),
            p99: nearest_rank(&times, 99),
        },
    }
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
        let routine = &r.by_severity["routine"];
        assert_eq!((routine.open, routine.overdue), (1, 0));
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
    fn an_empty_period_reads_zero_and_null() {
        let r = compute(&[], None, &policies(), 0);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "count": 0, "acknowledged": 0, "open": 0, "overdue": 0,
                "timeToAcknowledge": { "p50": null, "p90": null, "p99": null },
                "bySeverity": {},
            })
        );
    }
}
