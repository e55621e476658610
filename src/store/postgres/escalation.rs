//! The PostgreSQL store's escalation steps: claiming the due ones (each by
//! exactly one node, under a lease), committing what firing one did while
//! the claim holds, and the roles that join open notifications.

use async_trait::async_trait;
use sqlx::Row;

use super::deadline::{with_deadline, ANSWER_DEADLINE};
use super::unsealed::queue;
use super::PostgresStore;
use crate::clock::Millis;
use crate::store::rows::{self, Columns};
use crate::store::{ClaimedStep, Completion, EscalationSteps, StepOutcome, StoreError};

/// A level or count stored as BIGINT, back to the `u32` the store hands
/// out: a value out of its range is corrupt data.
fn u32_in_range(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value} out of range")))
}

#[async_trait]
impl EscalationSteps for PostgresStore {
    async fn claim_steps(
        &self,
        now: Millis,
        owner: &str,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedStep>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            // A step another node is claiming right now is locked: skipped,
            // not waited for, so each due step goes to exactly one node. A
            // row locked and claimed meanwhile is read again once unlocked,
            // and its new lease leaves it out.
            let claimed = sqlx::query(
                "WITH claimed AS (\
                   UPDATE escalation_steps SET claimed_by = $2, claimed_until = $3 \
                   WHERE (notification_id, level) IN (\
                     SELECT s.notification_id, s.level FROM escalation_steps s \
                     WHERE s.due_at <= $1 AND s.claimed_until <= $1 \
                     AND NOT EXISTS (SELECT 1 FROM escalation_steps p \
                       WHERE p.notification_id = s.notification_id AND p.blocking \
                       AND p.level < s.level) \
                     ORDER BY s.due_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
                   RETURNING notification_id, level, fired, attempts, due_at) \
                 SELECT c.level, c.fired, c.attempts, c.due_at, n.id, n.body, n.created_at \
                 FROM claimed c JOIN notifications n ON n.id = c.notification_id",
            )
            .bind(now)
            .bind(owner)
            .bind(until)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            let mut steps = claimed
                .iter()
                .map(|row| {
                    Ok(ClaimedStep {
                        notification: rows::notification(row)?,
                        level: u32_in_range(row.integer("level")?, "escalation level")?,
                        fired: row.try_get("fired")?,
                        attempts: u32_in_range(row.integer("attempts")?, "webhook attempts")?,
                        due_at: row.integer("due_at")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            steps.sort_by_key(|s| (s.due_at, s.level));
            Ok(steps)
        })
        .await
    }

    async fn complete_step(&self, c: &Completion) -> Result<bool, StoreError> {
        // Records this node queued before the step (its deliveries) come
        // before the step's own in the chain, as on SQLite.
        self.marks.settle().await;
        with_deadline(ANSWER_DEADLINE, async {
            let mut tx = self.pool.begin().await?;
            let level = i64::from(c.level);
            // Locked until the commit: a node taking the claim over, or an
            // acknowledgement closing the notification (which deletes its
            // steps), waits for this one, or this one sees what they did.
            let held = sqlx::query(
                "SELECT 1 FROM escalation_steps \
                 WHERE notification_id = $1 AND level = $2 AND claimed_by = $3 FOR UPDATE",
            )
            .bind(&c.notification_id)
            .bind(level)
            .bind(&c.owner)
            .fetch_optional(&mut *tx)
            .await?;
            if held.is_none() {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO recipients (notification_id, user_id, created_at, escalation_level) \
                 SELECT $1, u.user_id, $3, $4 \
                 FROM UNNEST($2::text[]) WITH ORDINALITY AS u(user_id, position) \
                 ORDER BY u.position \
                 ON CONFLICT (notification_id, user_id) DO NOTHING",
            )
            .bind(&c.notification_id)
            .bind(&c.add_users)
            .bind(c.at)
            .bind(level)
            .execute(&mut *tx)
            .await?;
            if let Some(role) = &c.add_role {
                sqlx::query(
                    "INSERT INTO role_recipients (notification_id, role, level, added_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (notification_id, role) DO NOTHING",
                )
                .bind(&c.notification_id)
                .bind(role)
                .bind(level)
                .bind(c.at)
                .execute(&mut *tx)
                .await?;
            }
            let (then, retry_at) = match c.then {
                StepOutcome::Fired => (
                    "UPDATE escalation_steps SET fired = TRUE \
                     WHERE notification_id = $1 AND level = $2",
                    None,
                ),
                StepOutcome::Done => (
                    "DELETE FROM escalation_steps WHERE notification_id = $1 AND level = $2",
                    None,
                ),
                StepOutcome::RetryAt(at) => (
                    "UPDATE escalation_steps SET blocking = FALSE, attempts = attempts + 1, \
                     due_at = $3, claimed_by = NULL, claimed_until = 0 \
                     WHERE notification_id = $1 AND level = $2",
                    Some(at),
                ),
            };
            let mut then = sqlx::query(then).bind(&c.notification_id).bind(level);
            if let Some(at) = retry_at {
                then = then.bind(at);
            }
            then.execute(&mut *tx).await?;
            queue(&mut *tx, &c.audit).await?;
            tx.commit().await?;
            if !c.audit.is_empty() {
                self.committed_records();
            }
            Ok(true)
        })
        .await
    }

    async fn next_step_due(&self) -> Result<Option<Millis>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            Ok(
                sqlx::query_scalar("SELECT min(due_at) FROM escalation_steps")
                    .fetch_one(&self.pool)
                    .await?,
            )
        })
        .await
    }

    async fn next_claim_end(&self, now: Millis) -> Result<Option<Millis>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            Ok(sqlx::query_scalar(rows::NEXT_CLAIM_END_POSTGRES)
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
        })
        .await
    }

    async fn open_roles(&self) -> Result<Vec<String>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            Ok(sqlx::query_scalar(rows::OPEN_ROLES)
                .fetch_all(&self.pool)
                .await?)
        })
        .await
    }

    async fn join_role(
        &self,
        user: &str,
        role: &str,
        only: Option<&str>,
        at: Millis,
    ) -> Result<u64, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            // The share lock orders a join against a closing on another
            // node: the join waits for the closing and then leaves the
            // notification out, or the closing waits for the join and
            // names the new recipient among those to tell.
            let joined = sqlx::query(
                "INSERT INTO recipients (notification_id, user_id, created_at, escalation_level) \
                 SELECT rr.notification_id, $1, $3, rr.level FROM role_recipients rr \
                 JOIN notifications n ON n.id = rr.notification_id \
                 WHERE rr.role = $2 AND n.closed_at IS NULL \
                 AND ($4::text IS NULL OR rr.notification_id = $4) \
                 ORDER BY rr.notification_id FOR SHARE OF n \
                 ON CONFLICT (notification_id, user_id) DO NOTHING",
            )
            .bind(user)
            .bind(role)
            .bind(at)
            .bind(only)
            .execute(&self.pool)
            .await?
            .rows_affected();
            Ok(joined)
        })
        .await
    }
}
