//! The escalation steps a store keeps for open notifications: claimed by
//! one node at a time under a lease, completed only while the claim holds,
//! and the roles that join open notifications.

use async_trait::async_trait;

use super::{ClaimedStep, Completion, StoreError};
use crate::clock::Millis;

/// Escalation steps of open notifications, each fired by one node at a
/// time, and the roles that join them.
#[async_trait]
pub trait EscalationSteps: Send + Sync + 'static {
    /// Claims up to `limit` escalation steps due at `now` of open
    /// notifications, each for `owner` until `until`: steps whose earlier
    /// levels have all fired, and that nobody holds (a claim whose lease
    /// ran out is taken over). Oldest deadline first.
    async fn claim_steps(
        &self,
        now: Millis,
        owner: &str,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedStep>, StoreError>;

    /// Commits `c` if the step is still claimed by `c.owner` (and so the
    /// notification is still open); false, changing nothing, otherwise.
    async fn complete_step(&self, c: &Completion) -> Result<bool, StoreError>;

    /// When the earliest escalation step falls due, claimed or not (an
    /// indexed read: the scheduler asks at every wake).
    async fn next_step_due(&self) -> Result<Option<Millis>, StoreError>;

    /// When the first claim held past `now` runs out: when a due step that
    /// another node holds (or waits behind) can be taken over.
    async fn next_claim_end(&self, now: Millis) -> Result<Option<Millis>, StoreError>;

    /// Roles that are recipients of some open notification.
    async fn open_roles(&self) -> Result<Vec<String>, StoreError>;

    /// Makes `user`, whose token carries `role`, a recipient of every open
    /// notification that `role` is a recipient of (`only` narrows it to one
    /// notification); returns how many it joined.
    async fn join_role(
        &self,
        user: &str,
        role: &str,
        only: Option<&str>,
        at: Millis,
    ) -> Result<u64, StoreError>;
}
