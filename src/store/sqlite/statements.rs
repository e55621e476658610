//! The SQLite writer's statements, prepared once for the writer's life: a
//! write neither parses its SQL nor looks its statement up by text, and a
//! write that changed a row does not read it back. Audit records are
//! linked into the chain as they come and inserted together, a few
//! statements for the whole transaction, just before it commits.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Statement};

use crate::clock::Millis;
use crate::notification::Notification;
use crate::store::rows::audit_columns;
use crate::store::{
    Acknowledged, ClaimedStep, Closed, Completion, Inserted, Source, StepOutcome, StoreError,
};
use crate::trail::{record, Chain, Entry, Linker, Record};

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
    recipient_state: Statement<'c>,
    expire_session: Statement<'c>,
    grant_room: Statement<'c>,
    revoke_room: Statement<'c>,
    claim_session: Statement<'c>,
    session_owner: Statement<'c>,
    probe: Statement<'c>,
    insert_step: Statement<'c>,
    /// `INSERT INTO audit` of 1, 2, 4, ... [`MOST_AUDIT_ROWS`] records.
    append_audit: Vec<Statement<'c>>,
    /// Widens an hour's range of records in `audit_hours`.
    note_hour: Statement<'c>,
    close_notification: Statement<'c>,
    drop_steps: Statement<'c>,
    closed_users: Statement<'c>,
    closed_roles: Statement<'c>,
    /// Whether `escalation_steps` and `role_recipients` may hold rows: read
    /// from the tables at start, set when this writer (their only writer)
    /// adds one, never cleared. Without an escalation policy neither ever
    /// does, and a closing skips the two statements that would find none.
    steps_exist: bool,
    roles_exist: bool,
    /// The audit chain's head as committed, and as the open transaction
    /// has moved it (kept only when it commits).
    chain: Chain,
    staged: Chain,
    linker: Linker,
    /// The open transaction's records, linked, not yet inserted.
    linked: Vec<Linked>,
}

/// Most audit records one statement inserts. A transaction's records go
/// in statements of 32, 16, ... 1 rows: a few statements whatever their
/// number, each prepared once.
const MOST_AUDIT_ROWS: usize = 32;

/// Milliseconds in the hours `audit_hours` groups records by.
const HOUR_MS: Millis = 3_600_000;

/// The hour of `audit_hours` that holds a record made at `at`: the
/// migration's `at / 3600000`, which truncates as Rust's division does, so
/// a later time is never in an earlier hour.
pub fn audit_hour(at: Millis) -> i64 {
    at / HOUR_MS
}

/// A record linked into the open transaction's chain, with its detail as
/// the text that was hashed and is stored.
struct Linked {
    record: Record,
    detail: Option<String>,
}

/// `INSERT INTO audit` of `rows` records, ten values each. A record's
/// `prev_hash` is the record before's `hash`: after the first row it is
/// that row's parameter again, bound once.
fn audit_insert(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=10)
                .map(|c| match c {
                    9 if r > 0 => format!("?{}", r * 10),
                    _ => format!("?{}", r * 10 + c),
                })
                .collect();
            format!("({})", p.join(", "))
        })
        .collect();
    format!(
        concat!("INSERT INTO audit (", audit_columns!(), ") VALUES {}"),
        values.join(", ")
    )
}

/// The head of the stored chain: its last record, else the anchor.
fn chain_head(conn: &Connection) -> Result<Chain, StoreError> {
    let last = conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            (),
            |r| {
                Ok(Chain {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                })
            },
        )
        .optional()?;
    match last {
        Some(c) => Ok(c),
        None => Ok(
            conn.query_row("SELECT seq, hash FROM audit_anchor WHERE id = 1", (), |r| {
                Ok(Chain {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                })
            })?,
        ),
    }
}

impl<'c> Statements<'c> {
    pub fn prepare(conn: &'c Connection) -> Result<Self, StoreError> {
        Ok(Self {
            conn,
            begin: conn.prepare("BEGIN IMMEDIATE")?,
            commit: conn.prepare("COMMIT")?,
            rollback: conn.prepare("ROLLBACK")?,
            insert_notification: conn.prepare(
                "INSERT OR IGNORE INTO notifications (id, body, created_at, severity) \
                 VALUES (?1, ?2, ?3, ?4)",
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
            // The row is read, then changed by its rowid: cheaper than an
            // UPDATE ... RETURNING, and the writer is the only writer.
            acknowledge: conn
                .prepare("UPDATE recipients SET acknowledged_at = ?1 WHERE seq = ?2")?,
            recipient_state: conn.prepare(
                "SELECT seq, acknowledged_at, created_at FROM recipients \
                 WHERE notification_id = ?1 AND user_id = ?2",
            )?,
            expire_session: conn.prepare(
                "INSERT OR IGNORE INTO expired_sessions (session_id, user_id, expired_at) \
                 VALUES (?1, ?2, ?3)",
            )?,
            grant_room: conn.prepare(
                "INSERT OR IGNORE INTO room_grants (room, user_id, granted_at) VALUES (?1, ?2, ?3)",
            )?,
            revoke_room: conn
                .prepare("DELETE FROM room_grants WHERE room = ?1 AND user_id = ?2")?,
            claim_session: conn.prepare(
                "INSERT OR IGNORE INTO session_owners (session_id, user_id, claimed_at) \
                 VALUES (?1, ?2, ?3)",
            )?,
            session_owner: conn
                .prepare("SELECT user_id FROM session_owners WHERE session_id = ?1")?,
            probe: conn.prepare("UPDATE write_probe SET probes = probes + 1 WHERE id = 1")?,
            insert_step: conn.prepare(
                "INSERT OR IGNORE INTO escalation_steps (notification_id, level, due_at) \
                 VALUES (?1, ?2, ?3)",
            )?,
            append_audit: std::iter::successors(Some(1), |n| Some(n * 2))
                .take_while(|n| *n <= MOST_AUDIT_ROWS)
                .map(|n| conn.prepare(&audit_insert(n)))
                .collect::<Result<_, _>>()?,
            note_hour: conn.prepare(
                "INSERT INTO audit_hours (hour, first_seq, last_seq) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (hour) DO UPDATE SET first_seq = min(first_seq, excluded.first_seq), \
                 last_seq = max(last_seq, excluded.last_seq)",
            )?,
            close_notification: conn.prepare(
                "UPDATE notifications SET closed_at = ?1, closed_by = ?2 \
                 WHERE id = ?3 AND closed_at IS NULL",
            )?,
            drop_steps: conn.prepare("DELETE FROM escalation_steps WHERE notification_id = ?1")?,
            // Whom to tell of a closing: the recipients, read in the
            // order of their unique index and put in inbox order here (an
            // ORDER BY seq would make SQLite sort them in a temporary
            // table), then the roles in their key's order, by name.
            closed_users: conn
                .prepare("SELECT seq, user_id FROM recipients WHERE notification_id = ?1")?,
            closed_roles: conn.prepare(
                "SELECT role FROM role_recipients WHERE notification_id = ?1 ORDER BY role",
            )?,
            steps_exist: conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM escalation_steps)",
                (),
                |r| r.get(0),
            )?,
            roles_exist: conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM role_recipients)",
                (),
                |r| r.get(0),
            )?,
            chain: chain_head(conn)?,
            staged: Chain::default(),
            linker: Linker::default(),
            linked: Vec::new(),
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
        self.linked.clear();
        self.begin.execute(())?;
        self.staged = self.chain.clone();
        Ok(())
    }

    pub fn commit(&mut self) -> Result<(), StoreError> {
        self.insert_linked()?;
        self.commit.execute(())?;
        self.chain = self.staged.clone();
        Ok(())
    }

    /// Appends `entry` to the audit chain, in the open transaction: linked
    /// now, inserted with the transaction's other records before it
    /// commits.
    pub fn append(&mut self, entry: Entry) {
        let detail = entry.detail.as_ref().map(|d| d.to_string());
        let seq = self.staged.seq + 1;
        let hash = self
            .linker
            .link(&self.staged.hash, seq, &entry, detail.as_deref());
        let prev_hash = std::mem::replace(&mut self.staged.hash, hash.clone());
        self.staged.seq = seq;
        let record = Record {
            seq,
            entry,
            prev_hash,
            hash,
        };
        self.linked.push(Linked { record, detail });
    }

    /// Inserts the records linked so far, in chain order, and widens the
    /// ranges of the hours they were made in: one row for a transaction
    /// whose records are all of one hour, as nearly all are.
    fn insert_linked(&mut self) -> Result<(), StoreError> {
        let mut hours: Vec<(i64, i64, i64)> = Vec::new();
        for l in &self.linked {
            let (hour, seq) = (audit_hour(l.record.entry.at), l.record.seq);
            match hours.iter_mut().find(|(h, _, _)| *h == hour) {
                Some((_, first, last)) => {
                    *first = (*first).min(seq);
                    *last = (*last).max(seq);
                }
                None => hours.push((hour, seq, seq)),
            }
        }
        for range in hours {
            self.note_hour.execute(range)?;
        }
        let mut rest = &self.linked[..];
        while !rest.is_empty() {
            // The largest statement that is not too large: 2^k rows.
            let k = (usize::BITS - 1 - rest.len().min(MOST_AUDIT_ROWS).leading_zeros()) as usize;
            let (now, later) = rest.split_at(1 << k);
            let insert = &mut self.append_audit[k];
            for (i, l) in now.iter().enumerate() {
                let (r, e, at) = (&l.record, &l.record.entry, i * 10);
                insert.raw_bind_parameter(at + 1, r.seq)?;
                insert.raw_bind_parameter(at + 2, e.at)?;
                insert.raw_bind_parameter(at + 3, e.kind.as_str())?;
                insert.raw_bind_parameter(at + 4, e.notification_id.as_deref())?;
                insert.raw_bind_parameter(at + 5, e.user_id.as_deref())?;
                insert.raw_bind_parameter(at + 6, e.socket_id.as_deref())?;
                insert.raw_bind_parameter(at + 7, e.level)?;
                insert.raw_bind_parameter(at + 8, l.detail.as_deref())?;
                if i == 0 {
                    insert.raw_bind_parameter(at + 9, r.prev_hash.as_str())?;
                }
                insert.raw_bind_parameter(at + 10, r.hash.as_str())?;
            }
            insert.raw_execute()?;
            rest = later;
        }
        self.linked.clear();
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

    /// Stores `n` (an existing id keeps its first body) for each of
    /// `users`; a new one with its escalation steps and `created` record.
    pub fn insert(
        &mut self,
        n: &Arc<Notification>,
        users: &[String],
        steps: &[(u32, Millis)],
    ) -> Result<Inserted, StoreError> {
        let new =
            self.insert_notification
                .execute((&n.id, n.to_json(), n.created_at, n.severity()))?
                == 1;
        let notification = if new {
            self.steps_exist |= !steps.is_empty();
            for (level, due_at) in steps {
                self.insert_step.execute((&n.id, level, due_at))?;
            }
            self.append(record::created(&n.id, n.created_at, users));
            n.clone()
        } else {
            let (body, created_at) = self.stored_notification.query_row([&n.id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            Arc::new(
                Notification::from_stored(n.id.clone(), created_at, &body)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )
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

    /// What acknowledging did; `None` when `user` is not a recipient of
    /// `id`. The first acknowledgement by any recipient closes `id`.
    pub fn acknowledge(
        &mut self,
        id: &str,
        user: &str,
        at: Millis,
        source: &Source,
    ) -> Result<Option<Acknowledged>, StoreError> {
        let Some((row, first_at, created_at)) = self
            .recipient_state
            .query_row((id, user), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?
        else {
            return Ok(None);
        };
        if let Some(first_at) = first_at {
            return Ok(Some(Acknowledged {
                at: first_at,
                first: false,
                created_at,
                closed: None,
            }));
        }
        self.acknowledge.execute((at, row))?;
        let closed = self.close_notification(id, user, at)?;
        self.append(record::acknowledged(
            id,
            user,
            at,
            source.socket_id.as_deref(),
            source.remote.as_deref(),
            closed.is_some(),
        ));
        Ok(Some(Acknowledged {
            at,
            first: true,
            created_at,
            closed,
        }))
    }

    /// Closes `id` if it is open: its steps go, and the answer names whose
    /// sockets to tell.
    fn close_notification(
        &mut self,
        id: &str,
        by: &str,
        at: Millis,
    ) -> Result<Option<Closed>, StoreError> {
        if self.close_notification.execute((at, by, id))? == 0 {
            return Ok(None);
        }
        if self.steps_exist {
            self.drop_steps.execute([id])?;
        }
        let mut users: Vec<(i64, String)> = self
            .closed_users
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        users.sort_unstable_by_key(|(seq, _)| *seq);
        let users = users.into_iter().map(|(_, user)| user).collect();
        let roles = if self.roles_exist {
            self.closed_roles
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(Some(Closed {
            at,
            by: by.to_string(),
            users,
            roles,
        }))
    }

    /// Claims the steps due at `now` (see `EscalationSteps::claim_steps`).
    pub fn claim_steps(
        &mut self,
        now: Millis,
        owner: &str,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedStep>, StoreError> {
        let claimed = self
            .conn
            .prepare_cached(
                "UPDATE escalation_steps SET claimed_by = ?2, claimed_until = ?3 \
                 WHERE rowid IN (SELECT s.rowid FROM escalation_steps s \
                   WHERE s.due_at <= ?1 AND s.claimed_until <= ?1 \
                   AND NOT EXISTS (SELECT 1 FROM escalation_steps p \
                     WHERE p.notification_id = s.notification_id AND p.blocking = 1 \
                     AND p.level < s.level) \
                   ORDER BY s.due_at LIMIT ?4) \
                 RETURNING notification_id, level, fired, attempts, due_at",
            )?
            .query_map((now, owner, until, limit), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut steps = Vec::with_capacity(claimed.len());
        for (id, level, fired, attempts, due_at) in claimed {
            let (body, created_at) = self
                .stored_notification
                .query_row([&id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let notification = Notification::from_stored(id, created_at, &body)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            steps.push(ClaimedStep {
                notification,
                level,
                fired,
                attempts,
                due_at,
            });
        }
        steps.sort_by_key(|s| (s.due_at, s.level));
        Ok(steps)
    }

    /// Commits a claimed step's work (see `EscalationSteps::complete_step`).
    pub fn complete_step(&mut self, c: &Completion) -> Result<bool, StoreError> {
        let held = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM escalation_steps \
                 WHERE notification_id = ?1 AND level = ?2 AND claimed_by = ?3",
            )?
            .query_row((&c.notification_id, c.level, &c.owner), |_| Ok(()))
            .optional()?;
        if held.is_none() {
            return Ok(false);
        }
        for user in &c.add_users {
            self.conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO recipients \
                     (notification_id, user_id, created_at, escalation_level) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute((&c.notification_id, user, c.at, c.level))?;
        }
        if let Some(role) = &c.add_role {
            self.roles_exist = true;
            self.conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO role_recipients (notification_id, role, level, added_at) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute((&c.notification_id, role, c.level, c.at))?;
        }
        for e in &c.audit {
            self.append(e.clone());
        }
        let key = (&c.notification_id, c.level);
        match c.then {
            StepOutcome::Fired => self
                .conn
                .prepare_cached(
                    "UPDATE escalation_steps SET fired = 1 WHERE notification_id = ?1 AND level = ?2",
                )?
                .execute(key)?,
            StepOutcome::Done => self
                .conn
                .prepare_cached(
                    "DELETE FROM escalation_steps WHERE notification_id = ?1 AND level = ?2",
                )?
                .execute(key)?,
            StepOutcome::RetryAt(at) => self
                .conn
                .prepare_cached(
                    "UPDATE escalation_steps SET blocking = 0, attempts = attempts + 1, \
                     due_at = ?3, claimed_by = NULL, claimed_until = 0 \
                     WHERE notification_id = ?1 AND level = ?2",
                )?
                .execute((&c.notification_id, c.level, at))?,
        };
        Ok(true)
    }

    /// Makes `user` a recipient of the open notifications `role` is a
    /// recipient of (see `EscalationSteps::join_role`).
    pub fn join_role(
        &mut self,
        user: &str,
        role: &str,
        only: Option<&str>,
        at: Millis,
    ) -> Result<u64, StoreError> {
        let joined = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO recipients (notification_id, user_id, created_at, escalation_level) \
                 SELECT rr.notification_id, ?1, ?3, rr.level FROM role_recipients rr \
                 JOIN notifications n ON n.id = rr.notification_id \
                 WHERE rr.role = ?2 AND n.closed_at IS NULL \
                 AND (?4 IS NULL OR rr.notification_id = ?4)",
            )?
            .execute((user, role, at, only))?;
        Ok(joined as u64)
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

    /// Grants (or, with `revoke`, takes back) `room` to `user`; true when
    /// a row was added (removed).
    pub fn room_grant(
        &mut self,
        room: &str,
        user: &str,
        at: Millis,
        revoke: bool,
    ) -> Result<bool, StoreError> {
        let changed = if revoke {
            self.revoke_room.execute((room, user))?
        } else {
            self.grant_room.execute((room, user, at))?
        };
        Ok(changed == 1)
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

    /// Removes the audit records before `before` (the chain's oldest ones,
    /// up to the last of them) and keeps the last removed record's place
    /// and hash as the anchor the rest verifies from; a `purged` record
    /// says so in the chain itself.
    fn purge_audit(&mut self, before: Millis) -> Result<(), StoreError> {
        // What this transaction linked so far is part of what is read here.
        self.insert_linked()?;
        // The records made before `before` are among those up to the last
        // of its hour: the scan stops there.
        let last: Option<i64> = self.conn.query_row(
            "SELECT max(seq) FROM audit WHERE at < ?1 AND seq <= \
             (SELECT max(last_seq) FROM audit_hours WHERE hour <= ?2)",
            (before, audit_hour(before)),
            |r| r.get(0),
        )?;
        let Some(last) = last else {
            return Ok(());
        };
        let hash: String =
            self.conn
                .query_row("SELECT hash FROM audit WHERE seq = ?1", [last], |r| {
                    r.get(0)
                })?;
        let removed = self
            .conn
            .execute("DELETE FROM audit WHERE seq <= ?1", [last])?;
        // Hours all of whose records went; an hour partly removed keeps
        // a range that starts before what is left, which reads the same.
        self.conn
            .execute("DELETE FROM audit_hours WHERE last_seq <= ?1", [last])?;
        self.conn.execute(
            "UPDATE audit_anchor SET seq = ?1, hash = ?2 WHERE id = 1",
            (last, &hash),
        )?;
        self.append(record::purged(before, last, removed as u64, &hash));
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
        self.purge_audit(acknowledged_before.min(unacknowledged_before))?;
        Ok(gone as u64)
    }
}
