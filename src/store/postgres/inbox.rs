//! The PostgreSQL store's inbox: storing a notification for its recipients
//! (`insert.rs`), acknowledging it (`acknowledge.rs`), reading and listing
//! it, and deleting what is past retention.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::acknowledge::Ack;
use super::chain::purge_audit;
use super::deadline::{with_deadline, ANSWER_DEADLINE, PURGE_DEADLINE};
use super::insert::Insert;
use super::seal::seal_all_waiting;
use super::PostgresStore;
use crate::clock::Millis;
use crate::notification::{Notification, Recipient, StateFilter};
use crate::store::rows::{self, SELECT_USER};
use crate::store::{Acknowledged, Inbox, Inserted, Source, StoreError, UserNotification};

/// The listing of one user's notifications in `filter`'s state; the
/// unacknowledged states read the partial index.
pub(super) fn list_query(filter: StateFilter) -> String {
    let condition = rows::state_condition(filter);
    format!("{SELECT_USER} WHERE r.user_id = $1 AND r.seq > $2 {condition} ORDER BY r.seq LIMIT $3")
}

/// The first page of several users' notifications in `filter`'s state:
/// each user's own listing (`$2` rows at most, by the partial index), one
/// statement for all of them.
pub(super) fn first_pages_query(filter: StateFilter) -> String {
    let condition = rows::state_condition(filter);
    format!(
        "SELECT x.* FROM unnest($1::text[]) AS u(user_id) CROSS JOIN LATERAL \
         ({SELECT_USER} WHERE r.user_id = u.user_id {condition} ORDER BY r.seq LIMIT $2) x"
    )
}

/// `users` without repeats (the query's keys), and where each of `users`
/// finds its answer among them.
pub(super) fn distinct(users: &[String]) -> (Vec<&str>, Vec<usize>) {
    let mut keys: Vec<&str> = Vec::with_capacity(users.len());
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(users.len());
    let at = users
        .iter()
        .map(|u| {
            *seen.entry(u.as_str()).or_insert_with(|| {
                keys.push(u.as_str());
                keys.len() - 1
            })
        })
        .collect();
    (keys, at)
}

/// Sorts `items` (each with its user) into one list per key of `keys`, then
/// hands each of `at` its key's list.
pub(super) fn per_user<T: Clone>(
    keys: &[&str],
    at: &[usize],
    items: impl IntoIterator<Item = (String, T)>,
) -> Vec<Vec<T>> {
    let index: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut lists: Vec<Vec<T>> = vec![Vec::new(); keys.len()];
    for (user, item) in items {
        if let Some(&i) = index.get(user.as_str()) {
            lists[i].push(item);
        }
    }
    at.iter().map(|&i| lists[i].clone()).collect()
}

#[async_trait]
impl Inbox for PostgresStore {
    async fn insert_scheduled(
        &self,
        n: &Arc<Notification>,
        users: &[String],
        steps: &[(u32, Millis)],
    ) -> Result<Inserted, StoreError> {
        let call = Insert {
            n: n.clone(),
            users: users.to_vec(),
            steps: steps.to_vec(),
        };
        with_deadline(ANSWER_DEADLINE, self.inserts.call(call)).await
    }

    fn mark_delivered(&self, id: &str, user: &str, at: Millis) {
        self.marks.queue(id, user, at);
    }

    async fn acknowledge_from(
        &self,
        id: &str,
        user: &str,
        at: Millis,
        source: &Source,
    ) -> Result<Option<Acknowledged>, StoreError> {
        // The marks and records this node queued before commit before it.
        self.marks.settle().await;
        let call = Ack {
            id: id.to_string(),
            user: user.to_string(),
            at,
            source: source.clone(),
        };
        with_deadline(ANSWER_DEADLINE, self.acks.call(call)).await
    }

    async fn notification(
        &self,
        id: &str,
    ) -> Result<Option<(Notification, Vec<Recipient>)>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let Some(row) =
                sqlx::query("SELECT id, body, created_at FROM notifications WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
            else {
                return Ok(None);
            };
            let n = rows::notification(&row)?;
            let recipients = sqlx::query(
                "SELECT user_id, delivered_at, acknowledged_at, escalation_level FROM recipients \
                 WHERE notification_id = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            let recipients = recipients
                .iter()
                .map(rows::recipient)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((n, recipients)))
        })
        .await
    }

    async fn user_notification(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<UserNotification>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let row = sqlx::query(&format!(
                "{SELECT_USER} WHERE r.notification_id = $1 AND r.user_id = $2"
            ))
            .bind(id)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(rows::user_notification).transpose()
        })
        .await
    }

    /// `seq` is drawn when a row is inserted, and nodes commit concurrently:
    /// a row may commit after one with a higher `seq` was read. Catch-up
    /// loses nothing by it (such a row is delivered live by the node that
    /// stored it, and stays unacknowledged for the next catch-up).
    async fn list(
        &self,
        user: &str,
        filter: StateFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<UserNotification>, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let listed = sqlx::query(&list_query(filter))
                .bind(user)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            listed.iter().map(rows::user_notification).collect()
        })
        .await
    }

    async fn first_pages(
        &self,
        users: &[String],
        filter: StateFilter,
        limit: u32,
    ) -> Result<Vec<Vec<UserNotification>>, StoreError> {
        let (keys, at) = distinct(users);
        with_deadline(ANSWER_DEADLINE, async {
            let listed = sqlx::query(&first_pages_query(filter))
                .bind(&keys)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            let items = listed
                .iter()
                .map(|row| {
                    let un = rows::user_notification(row)?;
                    Ok((un.recipient.user_id.clone(), un))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(per_user(&keys, &at, items))
        })
        .await
    }

    async fn purge(
        &self,
        acknowledged_before: Millis,
        unacknowledged_before: Millis,
    ) -> Result<u64, StoreError> {
        // Retention judges the chain: what is committed is sealed first, so
        // an old record goes with the purge that finds it old, sealed or not.
        self.marks.settle().await;
        seal_all_waiting(&self.pool).await?;
        with_deadline(PURGE_DEADLINE, async {
            let mut tx = self.pool.begin().await?;
            let gone = sqlx::query(
                "DELETE FROM recipients \
                 WHERE (acknowledged_at IS NOT NULL AND acknowledged_at < $1) \
                 OR (acknowledged_at IS NULL AND created_at < $2)",
            )
            .bind(acknowledged_before)
            .bind(unacknowledged_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // A notification being stored again right now is locked by that
            // insert: it is skipped, not deleted under its new recipients.
            sqlx::query(
                "DELETE FROM notifications WHERE id IN (\
                 SELECT n.id FROM notifications n WHERE NOT EXISTS \
                 (SELECT 1 FROM recipients r WHERE r.notification_id = n.id) \
                 FOR UPDATE SKIP LOCKED)",
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM expired_sessions WHERE expired_at < $1")
                .bind(unacknowledged_before)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM session_owners WHERE claimed_at < $1")
                .bind(unacknowledged_before)
                .execute(&mut *tx)
                .await?;
            purge_audit(&mut tx, acknowledged_before.min(unacknowledged_before)).await?;
            tx.commit().await?;
            Ok(gone)
        })
        .await
    }
}
