//! The PostgreSQL store's read models: where each listed notification's
//! escalation stands, the report's rows, every recipient's unacknowledged
//! notifications and their count. Reads only.

use std::collections::HashMap;

use async_trait::async_trait;

use super::deadline::{with_deadline, ANSWER_DEADLINE};
use super::PostgresStore;
use crate::clock::Millis;
use crate::store::rows::{self, PENDING_COUNT};
use crate::store::{Escalation, ReadModels, ReportRow, StoreError, Unacknowledged};

/// The sealed and the unsealed audit records: a step fired a moment ago
/// shows before its record is sealed.
const EVERY_RECORD: &str = "(SELECT notification_id, kind, level FROM audit \
     UNION ALL SELECT notification_id, kind, level FROM audit_unsealed)";

#[async_trait]
impl ReadModels for PostgresStore {
    async fn escalations(&self, ids: &[String]) -> Result<HashMap<String, Escalation>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        with_deadline(ANSWER_DEADLINE, async {
            let found = sqlx::query(&rows::escalations_query("n.id = ANY($1)", EVERY_RECORD))
                .bind(ids)
                .fetch_all(&self.pool)
                .await?;
            found.iter().map(rows::escalation).collect()
        })
        .await
    }

    async fn report_rows(&self, from: Millis, to: Millis) -> Result<Vec<ReportRow>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let found = sqlx::query(rows::REPORT_ROWS_POSTGRES)
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
            found.iter().map(rows::report_row).collect()
        })
        .await
    }

    async fn unacknowledged(&self, limit: u32) -> Result<Unacknowledged, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let oldest = sqlx::query(&rows::unacknowledged_query("$1"))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            let total = sqlx::query(rows::COUNT_UNACKNOWLEDGED)
                .fetch_one(&self.pool)
                .await?;
            rows::unacknowledged(&total, &oldest)
        })
        .await
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let n: i64 = sqlx::query_scalar(PENDING_COUNT)
                .fetch_one(&self.pool)
                .await?;
            Ok(n.max(0) as u64)
        })
        .await
    }
}
