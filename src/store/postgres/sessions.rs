//! The PostgreSQL store's session records: expired sessions, whose tokens
//! are refused from then on, and each session's owner, the user whose
//! token first used it. The first row of a session stands, on every node.

use async_trait::async_trait;

use super::deadline::{with_deadline, ANSWER_DEADLINE};
use super::PostgresStore;
use crate::clock::Millis;
use crate::store::rows::Columns;
use crate::store::{SessionRecords, StoreError};

impl PostgresStore {
    /// Runs `insert`, which adds a `(session, user, time)` row unless the
    /// session has one already: the first expiry and the first owner stand.
    async fn first_session_row(
        &self,
        insert: &'static str,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(insert)
            .bind(session)
            .bind(user)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl SessionRecords for PostgresStore {
    async fn expire_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            self.first_session_row(
                "INSERT INTO expired_sessions (session_id, user_id, expired_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (session_id) DO NOTHING",
                session,
                user,
                at,
            )
            .await
        })
        .await
    }

    async fn claim_session(
        &self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<String, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            // Two statements, not one: the read after a conflict must see
            // the row another node's claim just committed, which a single
            // statement's snapshot (taken before the wait) would not. A
            // purge between the two leaves no row: claim again.
            loop {
                self.first_session_row(
                    "INSERT INTO session_owners (session_id, user_id, claimed_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (session_id) DO NOTHING",
                    session,
                    user,
                    at,
                )
                .await?;
                let owner = sqlx::query("SELECT user_id FROM session_owners WHERE session_id = $1")
                    .bind(session)
                    .fetch_optional(&self.pool)
                    .await?;
                if let Some(row) = owner {
                    return Ok(row.text("user_id")?);
                }
            }
        })
        .await
    }

    async fn expired_sessions(&self, since: Millis) -> Result<Vec<String>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let expired =
                sqlx::query("SELECT session_id FROM expired_sessions WHERE expired_at >= $1")
                    .bind(since)
                    .fetch_all(&self.pool)
                    .await?;
            Ok(expired
                .iter()
                .map(|r| r.text("session_id"))
                .collect::<Result<_, _>>()?)
        })
        .await
    }
}
