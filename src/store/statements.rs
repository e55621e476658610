//! The SQLite writer's statements, prepared once for the writer's life: a
//! write neither parses its SQL nor looks its statement up by text, and a
//! write that changed a row does not read it back.

use rusqlite::{Connection, OptionalExtension, Statement};

use super::{Acknowledged, Inserted, StoreError};
use crate::clock::Millis;
use crate::notification::Notification;

pub struct Statements<'c> {
    conn: &'c Connection,
    begin: Statement<'c>,
    commit: Statement<'c>,
    rollback: Statement<'c>,
    insert_notification: Statement<'c>,
    stored_notification: Statement<'c>,
    add_recipient: Statement<'c>,
    mark_delivered: Statement<'c>,
    acknowledge: Statement<'c>,
    acknowledged_at: Statement<'c>,
    expire_session: Statement<'c>,
    claim_session: Statement<'c>,
    session_owner: Statement<'c>,
    probe: Statement<'c>,
}

impl<'c> Statements<'c> {
    pub fn prepare(conn: &'c Connection) -> Result<Self, StoreError> {
        Ok(Self {
            conn,
            begin: conn.prepare("BEGIN IMMEDIATE")?,
            commit: conn.prepare("COMMIT")?,
            rollback: conn.prepare("ROLLBACK")?,
            insert_notification: conn.prepare(
                "INSERT OR IGNORE INTO notifications (id, body, created_at) VALUES (?1, ?2, ?3)",
            )?,
            stored_notification: conn
                .prepare("SELECT body, created_at FROM notifications WHERE id = ?1")?,
            add_recipient: conn.prepare(
                "INSERT OR IGNORE INTO recipients (notification_id, user_id, created_at) \
                 VALUES (?1, ?2, ?3)",
            )?,
            mark_delivered: conn.prepare(
                "UPDATE recipients SET delivered_at = ?1 \
                 WHERE notification_id = ?2 AND user_id = ?3 AND delivered_at IS NULL",
            )?,
            acknowledge: conn.prepare(
                "UPDATE recipients SET acknowledged_at = ?1 \
                 WHERE notification_id = ?2 AND user_id = ?3 AND acknowledged_at IS NULL \
                 RETURNING created_at",
            )?,
            acknowledged_at: conn.prepare(
                "SELECT acknowledged_at, created_at FROM recipients \
                 WHERE notification_id = ?1 AND user_id = ?2",
            )?,
            expire_session: conn.prepare(
                "INSERT OR IGNORE INTO expired_sessions (session_id, user_id, expired_at) \
                 VALUES (?1, ?2, ?3)",
            )?,
            claim_session: conn.prepare(
                "INSERT OR IGNORE INTO session_owners (session_id, user_id, claimed_at) \
                 VALUES (?1, ?2, ?3)",
            )?,
            session_owner: conn
                .prepare("SELECT user_id FROM session_owners WHERE session_id = ?1")?,
            probe: conn.prepare("UPDATE write_probe SET probes = probes + 1 WHERE id = 1")?,
        })
    }

    /// The connection the statements run on.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    pub fn begin(&mut self) -> Result<(), StoreError> {
        // A transaction left open by a failed rollback would make every
        // later BEGIN fail: end it first.
        self.rollback();
        self.begin.execute(())?;
        Ok(())
    }

    pub fn commit(&mut self) -> Result<(), StoreError> {
        self.commit.execute(())?;
        Ok(())
    }

    /// Ends the open transaction, if any, undoing it.
    pub fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = self.rollback.execute(()) {
                tracing::error!(error = %e, "could not roll back a failed batch");
            }
        }
    }

    /// Stores `n` (an existing id keeps its first body) for each of `users`.
    pub fn insert(&mut self, n: &Notification, users: &[String]) -> Result<Inserted, StoreError> {
        let new = self
            .insert_notification
            .execute((&n.id, n.to_json(), n.created_at))?
            == 1;
        let notification = if new {
            n.clone()
        } else {
            let (body, created_at) = self.stored_notification.query_row([&n.id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            Notification::from_stored(n.id.clone(), created_at, &body)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
        };
        let mut new_for = Vec::with_capacity(users.len());
        for user in users {
            new_for.push(self.add_recipient.execute((&n.id, user, n.created_at))? == 1);
        }
        Ok(Inserted {
            notification,
            new_for,
        })
    }

    pub fn mark_delivered(&mut self, id: &str, user: &str, at: Millis) -> Result<(), StoreError> {
        self.mark_delivered.execute((at, id, user))?;
        Ok(())
    }

    /// What acknowledging did; `None` when `user` is not a recipient of `id`.
    pub fn acknowledge(
        &mut self,
        id: &str,
        user: &str,
        at: Millis,
    ) -> Result<Option<Acknowledged>, StoreError> {
        let first = self
            .acknowledge
            .query_row((at, id, user), |r| r.get::<_, i64>(0))
            .optional()?;
        if let Some(created_at) = first {
            return Ok(Some(Acknowledged {
                at,
                first: true,
                created_at,
            }));
        }
        let stored = self
            .acknowledged_at
            .query_row((id, user), |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?;
        Ok(stored.and_then(|(first_at, created_at)| {
            first_at.map(|at| Acknowledged {
                at,
                first: false,
                created_at,
            })
        }))
    }

    pub fn expire_session(
        &mut self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.expire_session.execute((session, user, at))?;
        Ok(())
    }

    /// Makes `user` the owner of `session` unless it has one; the owner.
    pub fn claim_session(
        &mut self,
        session: &str,
        user: &str,
        at: Millis,
    ) -> Result<String, StoreError> {
        if self.claim_session.execute((session, user, at))? == 1 {
            return Ok(user.to_string());
        }
        Ok(self
            .session_owner
            .query_row([session], |r| r.get::<_, String>(0))?)
    }

    /// Rewrites the probe row: the readiness check's proof that a write commits.
    pub fn probe(&mut self) -> Result<(), StoreError> {
        self.probe.execute(())?;
        Ok(())
    }

    /// Deletes what is past retention; returns how many recipient rows went.
    /// Rare (a timer), so its statements are not kept prepared.
    pub fn purge(
        &mut self,
        acknowledged_before: Millis,
        unacknowledged_before: Millis,
    ) -> Result<u64, StoreError> {
        let gone = self.conn.execute(
            "DELETE FROM recipients WHERE (acknowledged_at IS NOT NULL AND acknowledged_at < ?1) \
             OR (acknowledged_at IS NULL AND created_at < ?2)",
            (acknowledged_before, unacknowledged_before),
        )?;
        self.conn.execute(
            "DELETE FROM notifications WHERE NOT EXISTS \
             (SELECT 1 FROM recipients r WHERE r.notification_id = notifications.id)",
            (),
        )?;
        self.conn.execute(
            "DELETE FROM expired_sessions WHERE expired_at < ?1",
            [unacknowledged_before],
        )?;
        self.conn.execute(
            "DELETE FROM session_owners WHERE claimed_at < ?1",
            [unacknowledged_before],
        )?;
        Ok(gone as u64)
    }
}
