//! The period a read of the audit trail or a report covers: `from` and
//! `to` as RFC 3339 times (the format of every time Herald answers with),
//! `from` included and `to` excluded; by default the last 24 hours.

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::ApiError;
use crate::clock::Millis;

/// The span a period covers when `from` is not given.
pub const DEFAULT_SPAN: Millis = 24 * 3600 * 1000;

/// `from` and `to` as the query gave them.
#[derive(Debug, Default, Deserialize)]
pub struct PeriodQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Millis,
    pub to: Millis,
}

impl PeriodQuery {
    /// The period asked for, with the defaults counted from `now`; a time
    /// that does not parse, or a `from` after `to`, is a 400 saying so.
    pub fn resolve(&self, now: Millis) -> Result<Period, ApiError> {
        let to = match &self.to {
            Some(t) => parse("to", t)?,
            None => now,
        };
        let from = match &self.from {
            Some(f) => parse("from", f)?,
            None => to - DEFAULT_SPAN,
        };
        if from > to {
            return Err(ApiError::bad_request(
                "invalid_query",
                "from must not be after to",
            ));
        }
        Ok(Period { from, to })
    }
}

fn parse(name: &str, value: &str) -> Result<Millis, ApiError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis)
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("{name} must be an RFC 3339 time such as 2026-11-25T10:00:00Z"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: Option<&str>, to: Option<&str>) -> PeriodQuery {
        PeriodQuery {
            from: from.map(str::to_string),
            to: to.map(str::to_string),
        }
    }

    #[test]
    fn defaults_to_the_last_day_and_parses_offsets_and_fractions() {
        let now = 1_795_600_800_123;
        assert_eq!(
            q(None, None).resolve(now).unwrap(),
            Period {
                from: now - DEFAULT_SPAN,
                to: now
            }
        );
        let p = q(
            Some("2026-11-25T11:00:00+01:00"),
            Some("2026-11-25T10:00:00.123Z"),
        )
        .resolve(0)
        .unwrap();
        assert_eq!(p.from, 1_795_600_800_000);
        assert_eq!(p.to, 1_795_600_800_123);
        let only_to = q(None, Some("2026-11-25T10:00:00Z")).resolve(0).unwrap();
        assert_eq!(only_to.from, 1_795_600_800_000 - DEFAULT_SPAN);
    }

    #[test]
    fn a_bad_time_or_a_reversed_period_is_a_clear_400() {
        let e = q(Some("yesterday"), None).resolve(0).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.starts_with("from must be an RFC 3339 time"));
        let e = q(None, Some("1795600800000")).resolve(0).unwrap_err();
        assert!(e.message.starts_with("to must be"));
        let e = q(Some("2026-11-26T00:00:00Z"), Some("2026-11-25T00:00:00Z"))
            .resolve(0)
            .unwrap_err();
        assert_eq!(e.message, "from must not be after to");
    }
}
