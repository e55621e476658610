//! The PostgreSQL store's session records: expired sessions, whose tokens
//! are refused from then on, and each session's owner, the user whose
//! token first used it. The first row of a session stands, on every node.

use std::collections::{HashMap, HashSet};

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

    async fn claim_sessions(
        &self,
        claims: &[(String, String)],
        at: Millis,
    ) -> Result<Vec<String>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            // One INSERT for every claim (one commit, however many connects
            // a storm brings together), then one read of the owners. Two
            // statements, not one: the read after a conflict must see the
            // row another node's claim just committed, which a single
            // statement's snapshot (taken before the wait) would not. A
            // purge between the two leaves no row: those claim again.
            let named: HashSet<&str> = claims.iter().map(|(s, _)| s.as_str()).collect();
            let mut owners: HashMap<&str, String> = HashMap::with_capacity(claims.len());
            loop {
                let (mut sessions, mut users) = (Vec::new(), Vec::new());
                for (session, user) in claims {
                    if !owners.contains_key(session.as_str()) {
                        sessions.push(session.as_str());
                        users.push(user.as_str());
                    }
                }
                if sessions.is_empty() {
                    break;
                }
                // WITH ORDINALITY and DISTINCT ON keep the first claim of
                // a session named twice (ON CONFLICT cannot see a row of
                // its own statement).
                sqlx::query(
                    "INSERT INTO session_owners (session_id, user_id, claimed_at) \
                     SELECT DISTINCT ON (s) s, u, $3 \
                     FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS c(s, u, i) \
                     ORDER BY s, i \
                     ON CONFLICT (session_id) DO NOTHING",
                )
                .bind(&sessions)
                .bind(&users)
                .bind(at)
                .execute(&self.pool)
                .await?;
                let rows = sqlx::query(
                    "SELECT session_id, user_id FROM session_owners WHERE session_id = ANY($1)",
                )
                .bind(&sessions)
                .fetch_all(&self.pool)
                .await?;
                for row in rows {
                    let session = row.text("session_id")?;
                    if let Some(s) = named.get(session.as_str()) {
                        owners.insert(s, row.text("user_id")?);
                    }
                }
            }
            Ok(claims
                .iter()
                .map(|(s, _)| owners[s.as_str()].clone())
                .collect())
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
