//! Group commit for the SQLite store: one thread owns the write connection
//! and commits every write waiting in its queue in one transaction (one
//! fsync), answering each caller only after that commit. Latency at low load
//! is one commit; throughput under load grows with the batch instead of
//! queueing on SQLite's write lock.
//!
//! The thread runs SQLite directly (rusqlite, statements prepared once):
//! a whole batch costs one hand-over between threads each way, where an
//! async driver pays one per statement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::pending::Pending;
use super::statements::Statements;
use crate::clock::Millis;
use crate::notification::Notification;
use crate::store::{Acknowledged, ClaimedStep, Completion, Inserted, Source, StoreError};
use crate::trail::Entry;

/// Most writes committed together.
const MAX_BATCH: usize = 512;

/// One write and the caller waiting for its committed result.
pub enum Write {
    Insert {
        n: Arc<Notification>,
        users: Vec<String>,
        steps: Vec<(u32, Millis)>,
        reply: oneshot::Sender<Result<Inserted, StoreError>>,
    },
    /// An audit record; nobody waits, it joins the next commit.
    Record { entry: Entry },
    ClaimSteps {
        now: Millis,
        owner: String,
        until: Millis,
        limit: u32,
        reply: oneshot::Sender<Result<Vec<ClaimedStep>, StoreError>>,
    },
    CompleteStep {
        c: Completion,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    JoinRole {
        user: String,
        role: String,
        only: Option<String>,
        at: Millis,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// A delivery mark, and the `delivered` audit record of the same
    /// hand-over when it has one: nobody waits; they join the next commit.
    Delivered {
        id: String,
        user: String,
        at: Millis,
        record: Option<Entry>,
    },
    Acknowledge {
        id: String,
        user: String,
        at: Millis,
        source: Source,
        reply: oneshot::Sender<Result<Option<Acknowledged>, StoreError>>,
    },
    ExpireSession {
        session: String,
        user: String,
        at: Millis,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Owners of sessions, claimed for the first user of each.
    ClaimSessions {
        claims: Vec<(String, String)>,
        at: Millis,
        reply: oneshot::Sender<Result<Vec<String>, StoreError>>,
    },
    Purge {
        acknowledged_before: Millis,
        unacknowledged_before: Millis,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// A study room granted to a user (`revoke`: taken back).
    RoomGrant {
        room: String,
        user: String,
        at: Millis,
        revoke: bool,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// A shared file's rows (`files.rs`); the rows changed.
    Files {
        op: super::file_rows::FileWrite,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// Delivery marks were set aside (`spilled.rs`): take them. Nobody waits.
    Spilled,
    /// The readiness check: a write that must commit like any other.
    Probe {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Finish what is queued, then stop.
    Close { reply: oneshot::Sender<()> },
}

/// A write's result, held until its transaction commits.
enum Done {
    Inserted(Inserted),
    Unit,
    /// What the acknowledgement did (`None`: not a recipient).
    Acknowledged(Option<Acknowledged>),
    Count(u64),
    /// The sessions' owners.
    Owners(Vec<String>),
    Claimed(Vec<ClaimedStep>),
    Flag(bool),
}

impl Write {
    fn reply(self, result: Result<Done, StoreError>) {
        match (self, result) {
            (Write::Insert { reply, .. }, Ok(Done::Inserted(i))) => drop(reply.send(Ok(i))),
            (Write::Insert { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::Delivered { .. } | Write::Spilled | Write::Record { .. }, Ok(_)) => {}
            (Write::Spilled, Err(_)) => {}
            (Write::Record { entry }, Err(e)) => {
                tracing::warn!(error = %e, kind = entry.kind.as_str(), "could not append an audit record")
            }
            (Write::ClaimSteps { reply, .. }, Ok(Done::Claimed(c))) => drop(reply.send(Ok(c))),
            (Write::ClaimSteps { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::CompleteStep { reply, .. }, Ok(Done::Flag(f)))
            | (Write::RoomGrant { reply, .. }, Ok(Done::Flag(f))) => drop(reply.send(Ok(f))),
            (Write::RoomGrant { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::CompleteStep { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::JoinRole { reply, .. }, Ok(Done::Count(n))) => drop(reply.send(Ok(n))),
            (Write::JoinRole { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::Delivered { .. }, Err(e)) => {
                tracing::warn!(error = %e, "could not record a delivery")
            }
            (Write::ExpireSession { reply, .. }, r) | (Write::Probe { reply }, r) => {
                drop(reply.send(r.map(|_| ())))
            }
            (Write::Acknowledge { reply, .. }, Ok(Done::Acknowledged(a))) => {
                drop(reply.send(Ok(a)))
            }
            (Write::Acknowledge { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::ClaimSessions { reply, .. }, Ok(Done::Owners(u))) => drop(reply.send(Ok(u))),
            (Write::ClaimSessions { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::Purge { reply, .. }, Ok(Done::Count(n)))
            | (Write::Files { reply, .. }, Ok(Done::Count(n))) => drop(reply.send(Ok(n))),
            (Write::Files { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::Purge { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
            (Write::Close { reply }, _) => drop(reply.send(())),
            (_, Ok(_)) => unreachable!("each write produces its own kind of result"),
        }
    }
}

fn apply(s: &mut Statements, w: &Write) -> Result<Done, StoreError> {
    Ok(match w {
        Write::Insert {
            n, users, steps, ..
        } => Done::Inserted(s.insert(n, users, steps)?),
        Write::Record { entry } => {
            s.append(entry.clone());
            Done::Unit
        }
        Write::ClaimSteps {
            now,
            owner,
            until,
            limit,
            ..
        } => Done::Claimed(s.claim_steps(*now, owner, *until, *limit)?),
        Write::CompleteStep { c, .. } => Done::Flag(s.complete_step(c)?),
        Write::Files { op, .. } => Done::Count(op.apply(s.conn())?),
        Write::JoinRole {
            user,
            role,
            only,
            at,
            ..
        } => Done::Count(s.join_role(user, role, only.as_deref(), *at)?),
        Write::Delivered {
            id,
            user,
            at,
            record,
        } => {
            s.mark_delivered(id, user, *at)?;
            if let Some(entry) = record {
                s.append(entry.clone());
            }
            Done::Unit
        }
        Write::Acknowledge {
            id,
            user,
            at,
            source,
            ..
        } => Done::Acknowledged(s.acknowledge(id, user, *at, source)?),
        Write::RoomGrant {
            room,
            user,
            at,
            revoke,
            ..
        } => Done::Flag(s.room_grant(room, user, *at, *revoke)?),
        Write::ExpireSession {
            session, user, at, ..
        } => {
            s.expire_session(session, user, *at)?;
            Done::Unit
        }
        Write::ClaimSessions { claims, at, .. } => Done::Owners(
            claims
                .iter()
                .map(|(session, user)| s.claim_session(session, user, *at))
                .collect::<Result<_, _>>()?,
        ),
        Write::Purge {
            acknowledged_before,
            unacknowledged_before,
            ..
        } => Done::Count(s.purge(*acknowledged_before, *unacknowledged_before)?),
        Write::Probe { .. } => {
            s.probe()?;
            Done::Unit
        }
        Write::Close { .. } | Write::Spilled => Done::Unit,
    })
}

/// Keeps the pending counts in step with a committed write.
fn account(w: &Write, d: &Done, pending: &Pending) {
    match (w, d) {
        (Write::Insert { users, .. }, Done::Inserted(i)) => {
            for (user, new) in users.iter().zip(&i.new_for) {
                if *new {
                    pending.add(user);
                }
            }
        }
        (Write::Acknowledge { user, .. }, Done::Acknowledged(Some(a))) if a.first => {
            pending.acknowledged(user)
        }
        // Over-counting is allowed, under-counting is not: every added
        // user counts, new or not.
        (Write::CompleteStep { c, .. }, Done::Flag(true)) => {
            for user in &c.add_users {
                pending.add(user);
            }
        }
        (Write::JoinRole { user, .. }, Done::Count(n)) => {
            for _ in 0..*n {
                pending.add(user);
            }
        }
        _ => {}
    }
}

fn reload(conn: &Connection, pending: &Pending) {
    if let Err(e) = pending.reload(conn) {
        tracing::error!(error = %e, "could not recount pending notifications; every catch-up queries the store until a recount succeeds");
        pending.mark_unknown();
    }
}

/// Applies `writes` in one transaction (rolled back on any error).
fn transaction(s: &mut Statements, writes: &[Write]) -> Result<Vec<Done>, StoreError> {
    s.begin()?;
    let done = writes
        .iter()
        .map(|w| apply(s, w))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|done| s.commit().map(|()| done));
    if done.is_err() {
        s.rollback();
    }
    done
}

/// Applies `batch` in one transaction; on failure, each write alone, so one
/// bad write cannot fail the others.
fn commit(s: &mut Statements, batch: Vec<Write>, pending: &Pending) {
    match transaction(s, &batch) {
        Ok(done) => {
            crate::observe::prometheus::store_batch(batch.len());
            let purged = batch.iter().any(|w| matches!(w, Write::Purge { .. }));
            for (w, d) in batch.iter().zip(&done) {
                account(w, d, pending);
            }
            if purged {
                reload(s.conn(), pending);
            }
            for (w, d) in batch.into_iter().zip(done) {
                w.reply(Ok(d));
            }
        }
        Err(_) if batch.len() > 1 => {
            for w in batch {
                let alone = transaction(s, std::slice::from_ref(&w)).map(|mut d| d.remove(0));
                if let Ok(d) = &alone {
                    account(&w, d, pending);
                }
                w.reply(alone);
            }
            reload(s.conn(), pending);
        }
        Err(e) => {
            for w in batch {
                w.reply(Err(StoreError::Unavailable(e.to_string())));
            }
        }
    }
}

/// How long a batch of nothing but delivery marks waits for a write that
/// someone is waiting on, so the marks share its commit.
const MARKS_LINGER: Duration = Duration::from_millis(20);

/// How long a batch of acknowledgements (and marks) waits for more writes
/// while notifications are flowing, so that an acknowledgement shares the
/// fsync of the next notification's insert instead of paying its own. The
/// client's acknowledgement reply waits as long; an insert never waits.
const ACKS_LINGER: Duration = Duration::from_millis(5);

/// Notifications are flowing when one was inserted this recently (ten or
/// more a second); otherwise an acknowledgement commits at once, as no
/// insert is likely to come within [`ACKS_LINGER`].
const INSERTS_FLOWING: Duration = Duration::from_millis(100);

/// How long `batch` may still wait for company, counted from its first
/// write: `None` when it commits now.
fn patience(batch: &[Write], inserts_flowing: bool) -> Option<Duration> {
    if batch.len() >= MAX_BATCH {
        return None;
    }
    let mut acks = false;
    for w in batch {
        match w {
            Write::Delivered { .. } | Write::Spilled | Write::Record { .. } => {}
            Write::Acknowledge { .. } => acks = true,
            _ => return None,
        }
    }
    match (acks, inserts_flowing) {
        (false, _) => Some(MARKS_LINGER),
        (true, true) => Some(ACKS_LINGER),
        (true, false) => None,
    }
}

/// Collects the batch that starts with `first`: everything already queued,
/// then, while [`patience`] allows, whatever comes next.
fn gather(rx: &flume::Receiver<Write>, first: Write, inserts_flowing: bool) -> Vec<Write> {
    let started = Instant::now();
    let mut batch = vec![first];
    loop {
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let Some(wait) = patience(&batch, inserts_flowing) else {
            return batch;
        };
        match rx.recv_deadline(started + wait) {
            Ok(w) => batch.push(w),
            Err(_) => return batch,
        }
    }
}

/// Starts the writer thread; it runs until a `Close` or until every sender
/// is gone.
/// `set_aside` hands over the writes that found the queue full (see
/// `spilled.rs`): each batch takes them, after the writes it gathered.
pub fn spawn(
    conn: Connection,
    rx: flume::Receiver<Write>,
    pending: Arc<Pending>,
    set_aside: impl Fn() -> Vec<Write> + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("herald-sqlite-writer".into())
        .spawn(move || run(conn, rx, &pending, set_aside))
}

fn run(
    conn: Connection,
    rx: flume::Receiver<Write>,
    pending: &Pending,
    set_aside: impl Fn() -> Vec<Write>,
) {
    let mut statements = match Statements::prepare(&conn) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the store's writer could not prepare its statements; every write fails");
            for w in rx.iter() {
                let closing = matches!(w, Write::Close { .. });
                w.reply(Err(StoreError::Unavailable(e.to_string())));
                if closing {
                    break;
                }
            }
            return;
        }
    };
    let mut last_insert: Option<Instant> = None;
    while let Ok(first) = rx.recv() {
        let flowing = last_insert.is_some_and(|at| at.elapsed() < INSERTS_FLOWING);
        let mut batch = gather(&rx, first, flowing);
        batch.extend(set_aside());
        if batch.iter().any(|w| matches!(w, Write::Insert { .. })) {
            last_insert = Some(Instant::now());
        }
        let closing = batch.iter().any(|w| matches!(w, Write::Close { .. }));
        commit(&mut statements, batch, pending);
        if closing {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark() -> Write {
        Write::Delivered {
            id: "n".into(),
            user: "u".into(),
            at: 1,
            record: None,
        }
    }

    fn ack() -> Write {
        Write::Acknowledge {
            id: "n".into(),
            user: "u".into(),
            at: 1,
            source: Source::default(),
            reply: oneshot::channel().0,
        }
    }

    fn expiry() -> Write {
        Write::ExpireSession {
            session: "s".into(),
            user: "u".into(),
            at: 1,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn only_marks_and_acknowledgements_wait_for_company() {
        for flowing in [true, false] {
            assert_eq!(patience(&[mark(), mark()], flowing), Some(MARKS_LINGER));
            assert_eq!(patience(&[ack(), expiry()], flowing), None);
            assert_eq!(patience(&[mark(), expiry()], flowing), None);
            let full: Vec<Write> = (0..MAX_BATCH).map(|_| mark()).collect();
            assert_eq!(patience(&full, flowing), None);
        }
        // Acknowledgements wait only while notifications are flowing.
        assert_eq!(patience(&[mark(), ack()], true), Some(ACKS_LINGER));
        assert_eq!(patience(&[ack()], true), Some(ACKS_LINGER));
        assert_eq!(patience(&[mark(), ack()], false), None);
        assert_eq!(patience(&[ack()], false), None);
    }

    #[test]
    fn a_batch_takes_what_is_queued_and_waits_only_as_long_as_its_patience() {
        let (tx, rx) = flume::unbounded();
        tx.send(mark()).unwrap();
        tx.send(ack()).unwrap();
        // Queued behind the acknowledgement: joins at once.
        tx.send(expiry()).unwrap();
        let batch = gather(&rx, mark(), true);
        assert_eq!(batch.len(), 4);

        // An acknowledgement alone waits its patience, then commits alone.
        let started = Instant::now();
        let batch = gather(&rx, ack(), true);
        assert_eq!(batch.len(), 1);
        assert!(started.elapsed() >= ACKS_LINGER);

        // Nothing but marks and acknowledgements queued: they all join, and
        // the batch then waits for company before it commits.
        for _ in 0..3 {
            tx.send(mark()).unwrap();
        }
        tx.send(ack()).unwrap();
        assert_eq!(gather(&rx, mark(), true).len(), 5);
    }
}
