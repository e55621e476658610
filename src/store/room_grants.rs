//! The backend's grants of study rooms (`PUT /api/v1/rooms/{room}/members/{userId}`):
//! a user may join a granted room whatever their token says, on every
//! node and after every restart, until the grant is revoked.

use async_trait::async_trait;

use super::StoreError;
use crate::clock::Millis;

/// Durable room grants, one row per room and user.
#[async_trait]
pub trait RoomGrants: Send + Sync + 'static {
    /// Grants `user` entry to `room`; true when the grant is new (a grant
    /// already held keeps its first time).
    async fn grant_room(&self, room: &str, user: &str, at: Millis) -> Result<bool, StoreError>;

    /// Revokes `user`'s grant of `room`; true when there was one.
    async fn revoke_room(&self, room: &str, user: &str) -> Result<bool, StoreError>;

    /// Whether `user` holds a grant of `room`.
    async fn room_granted(&self, room: &str, user: &str) -> Result<bool, StoreError>;
}
