//! What the operators' dashboard reads through the Hub: every socket in the
//! cluster, the idle clock of each of their sessions, and the notifications
//! still waiting for a person, oldest first.

use futures::future::join_all;

use super::{Hub, HubError};
use crate::broker::{Listing, Target};
use crate::session::SessionSnapshot;
use crate::store::Unacknowledged;

impl Hub {
    /// Every authenticated socket on every node.
    pub async fn all_sockets(&self) -> Listing {
        self.broker.sockets(&Target::All).await
    }

    /// The idle clocks of `sessions`, in the order asked; a session the
    /// clocks no longer know (expired and forgotten) is `None`.
    pub async fn session_clocks(&self, sessions: &[String]) -> Vec<Option<SessionSnapshot>> {
        join_all(sessions.iter().map(|s| self.sessions.snapshot(s))).await
    }

    /// The oldest `limit` unacknowledged notifications of every recipient.
    pub async fn unacknowledged(&self, limit: u32) -> Result<Unacknowledged, HubError> {
        Ok(self.store.unacknowledged(limit).await?)
    }
}
