//! Which users have unacknowledged notifications, counted by the SQLite
//! writer as it commits, so that a connection of a user with nothing
//! pending costs no query. It may over-count (a query that finds nothing),
//! never under-count: it is reloaded from the database after a purge or a
//! failed batch.
//!
//! Only SQLite keeps such a count: its writer thread is the only writer by
//! construction, since a cluster of nodes requires PostgreSQL. Nodes that
//! share one PostgreSQL database would each count wrong; that store reads
//! a partial index of the unacknowledged instead.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::store::StoreError;

#[derive(Debug, Default)]
struct Counts {
    per_user: HashMap<String, u32>,
    /// A recount failed: the counts cannot be trusted until one succeeds.
    unknown: bool,
}

#[derive(Debug, Default)]
pub struct Pending(Mutex<Counts>);

impl Pending {
    /// True when `user` may have unacknowledged notifications.
    pub fn has(&self, user: &str) -> bool {
        let c = self.0.lock();
        c.unknown || c.per_user.get(user).is_some_and(|n| *n > 0)
    }

    pub fn add(&self, user: &str) {
        *self.0.lock().per_user.entry(user.to_string()).or_default() += 1;
    }

    /// Until the next successful recount, every user may have some.
    pub fn mark_unknown(&self) {
        self.0.lock().unknown = true;
    }

    /// One of `user`'s notifications was acknowledged for the first time.
    pub fn acknowledged(&self, user: &str) {
        let mut guard = self.0.lock();
        let map = &mut guard.per_user;
        if let Some(n) = map.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(user);
            }
        }
    }

    /// Recounts from the database.
    pub fn reload(&self, c: &rusqlite::Connection) -> Result<(), StoreError> {
        let mut query = c.prepare_cached(
            "SELECT user_id, COUNT(*) FROM recipients WHERE acknowledged_at IS NULL GROUP BY user_id",
        )?;
        let counts = query
            .query_map((), |r| {
                let n: i64 = r.get(1)?;
                Ok((r.get::<_, String>(0)?, n.clamp(0, u32::MAX as i64) as u32))
            })?
            .collect::<Result<HashMap<_, _>, _>>()?;
        *self.0.lock() = Counts {
            per_user: counts,
            unknown: false,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_and_down_and_never_below_zero() {
        let p = Pending::default();
        assert!(!p.has("u"));
        p.add("u");
        p.add("u");
        p.acknowledged("u");
        assert!(p.has("u"));
        p.acknowledged("u");
        assert!(!p.has("u"));
        p.acknowledged("u");
        p.add("u");
        assert!(
            p.has("u"),
            "an extra acknowledgement cannot hide a new notification"
        );
    }
}
