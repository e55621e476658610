//! What the read side of the closed loop asks the Hub: a notification's
//! audit timeline, where the escalation of open notifications stands,
//! pages of the audit trail, and the acknowledgement report over a period.

use std::collections::HashMap;

use super::{Hub, HubError};
use crate::clock::Millis;
use crate::report::{self, Report};
use crate::store::Escalation;
use crate::trail::{Entry, Record};

impl Hub {
    /// The audit records of notification `id`, oldest first; `None` when
    /// the store knows neither the notification nor any record of it (its
    /// records outlive the notification's own retention, and still answer).
    pub async fn timeline(&self, id: &str) -> Result<Option<Vec<Entry>>, HubError> {
        let records = self.store.timeline(id).await?;
        if records.is_empty() && self.store.notification(id).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(records))
    }

    /// Where the escalation of each of `ids` stands (for the dashboard's
    /// list: one read per picture).
    pub async fn escalations(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Escalation>, HubError> {
        Ok(self.store.escalations(ids).await?)
    }

    /// Audit records with `seq > after` and `from <= at < to`, in chain
    /// order, at most `limit`.
    pub async fn audit_page(
        &self,
        after: i64,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<Record>, HubError> {
        Ok(self.store.audit_page(after, from, to, limit).await?)
    }

    /// The acknowledgement report of the notifications created in
    /// `from <= createdAt < to`, narrowed to one severity key when `only`
    /// is given; overdue is judged now, by the configured policies.
    pub async fn acknowledgement_report(
        &self,
        from: Millis,
        to: Millis,
        only: Option<&str>,
    ) -> Result<Report, HubError> {
        let rows = self.store.report_rows(from, to).await?;
        Ok(report::compute(
            &rows,
            only,
            &self.config.escalation,
            self.now(),
        ))
    }
}
