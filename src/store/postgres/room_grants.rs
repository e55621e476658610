//! The PostgreSQL store's room grants: one row per room and user, the
//! first grant's time standing.

use async_trait::async_trait;

use super::deadline::{with_deadline, ANSWER_DEADLINE};
use super::PostgresStore;
use crate::clock::Millis;
use crate::store::{RoomGrants, StoreError};

#[async_trait]
impl RoomGrants for PostgresStore {
    async fn grant_room(&self, room: &str, user: &str, at: Millis) -> Result<bool, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let done = sqlx::query(
                "INSERT INTO room_grants (room, user_id, granted_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (room, user_id) DO NOTHING",
            )
            .bind(room)
            .bind(user)
            .bind(at)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn revoke_room(&self, room: &str, user: &str) -> Result<bool, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let done = sqlx::query("DELETE FROM room_grants WHERE room = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn room_granted(&self, room: &str, user: &str) -> Result<bool, StoreError> {
        with_deadline(ANSWER_DEADLINE, async {
            let row = sqlx::query("SELECT 1 FROM room_grants WHERE room = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.is_some())
        })
        .await
    }
}
