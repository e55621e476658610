//! The store's contract, tested once and run against both engines: each
//! test is an async function of a `&dyn Store`, in the file of its concept
//! (`inbox.rs`, `escalation_steps.rs`, ...), and `conformance!`
//! makes of it one test on SQLite (in a temporary directory) and one on
//! PostgreSQL (in a database of its own); `shared!` runs a test of two
//! nodes on two PostgreSQL stores of one database. Also the two fixtures,
//! for the engines' own tests.

use serde_json::json;

use super::{
    Acknowledged, Closed, Completion, Escalation, PostgresStore, Source, SqliteStore, StepOutcome,
    Store, UserNotification,
};
use crate::clock::Millis;
use crate::notification::{Notification, StateFilter};
use crate::trail::{self, Chain, Entry, Kind};

/// Where the PostgreSQL tests create their databases, unless
/// `HERALD_TEST_POSTGRES` says otherwise.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn note(id: &str, title: &str, at: Millis) -> Notification {
    Notification::from_body(json!({"id": id, "title": title}), || unreachable!(), at).unwrap()
}

pub async fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteStore::open(dir.path()).await.unwrap(), dir)
}

/// A PostgreSQL database for one test, dropped by [`TestDatabase::drop`]
/// (one a failed test leaves behind goes a day later).
pub struct TestDatabase {
    base: String,
    pub url: String,
}

impl TestDatabase {
    /// Fails the test, saying why, when PostgreSQL cannot be reached: CI
    /// has it, so a missing server is an error, not a reason to skip.
    pub async fn create() -> Self {
        let base =
            std::env::var("HERALD_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
        match super::testing::fresh_database(&base).await {
            Ok(url) => Self { base, url },
            Err(e) => panic!(
                "the PostgreSQL store tests need a server at {base} (set HERALD_TEST_POSTGRES, \
                 or start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) \
                 main start): {e}"
            ),
        }
    }

    /// A store on this database: one Herald node.
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url).await.unwrap()
    }

    pub async fn drop(self) {
        super::testing::drop_fresh_database(&self.base, &self.url)
            .await
            .unwrap();
    }
}

mod audit_trail;
mod escalation_steps;
mod files;
mod inbox;
mod read_models;
mod room_grants;
mod session_records;

macro_rules! conformance {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = super::sqlite().await;
                    super::$module::$name(&store).await;
                    crate::store::Store::close(&store).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDatabase::create().await;
                    let store = db.store().await;
                    super::$module::$name(&store).await;
                    crate::store::Store::close(&store).await;
                    db.drop().await;
                }
            )*
        }
    };
}

conformance!(
    inbox::first_body_stands_and_recipients_are_idempotent,
    inbox::acknowledgement_is_per_recipient_and_first_time_stands,
    inbox::a_closing_names_the_recipients_in_inbox_order,
    inbox::lists_filter_by_state_oldest_first_and_page,
    inbox::first_pages_are_each_users_listing_in_the_order_asked,
    inbox::a_first_delivery_mark_stands_and_precedes_a_later_acknowledgement,
    inbox::purge_respects_both_retentions,
    inbox::concurrent_writes_are_each_answered,
    inbox::the_stored_notification_is_the_one_answered,
    session_records::an_expired_session_keeps_its_first_time_until_purged,
    session_records::a_session_belongs_to_its_first_user_until_purged,
    session_records::claims_written_together_answer_each_owner_in_order,
    inbox::unknown_ids_and_users_read_as_absent,
    read_models::every_users_unacknowledged_oldest_first_with_their_total,
    escalation_steps::escalation_steps_fire_once_in_order_and_are_taken_over_after_a_lease,
    escalation_steps::closing_ends_escalation_and_the_escalated_recipients_catch_up,
    audit_trail::the_audit_trail_is_one_verifiable_chain_with_each_timeline,
    audit_trail::retention_keeps_what_remains_of_the_chain_verifiable,
    audit_trail::a_hand_over_to_several_sockets_is_one_record_and_its_mark,
    audit_trail::a_period_holds_every_record_of_its_time_across_hours,
    read_models::the_report_reads_severity_and_closing_of_each_notification,
    read_models::escalations_read_the_fired_level_and_the_next_step_of_each_id,
    room_grants::a_room_grant_stands_until_revoked,
);

/// The tests of an engine that several nodes share: each runs on two
/// PostgreSQL stores ("nodes") of one database.
macro_rules! shared {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod shared_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDatabase::create().await;
                    let (a, b) = (db.store().await, db.store().await);
                    super::$module::$name(&a, &b).await;
                    crate::store::Store::close(&a).await;
                    crate::store::Store::close(&b).await;
                    db.drop().await;
                }
            )*
        }
    };
}

shared!(audit_trail::two_nodes_writing_at_once_leave_one_chain_with_each_record_once);

/// The tests of shared files, which also need a folder to stage uploads in
/// (for SQLite, the store's own `files/` folder, as the API uses).
macro_rules! with_staging {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod files_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, dir) = super::sqlite().await;
                    let staging = dir.path().join(crate::store::FILES_DIR);
                    super::$module::$name(&store, &staging).await;
                    crate::store::Store::close(&store).await;
                }
            )*
        }

        mod files_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDatabase::create().await;
                    let store = db.store().await;
                    let dir = tempfile::tempdir().unwrap();
                    super::$module::$name(&store, dir.path()).await;
                    crate::store::Store::close(&store).await;
                    db.drop().await;
                }
            )*
        }
    };
}

with_staging!(
    files::a_file_is_kept_for_its_recipients_and_read_by_range,
    files::an_expired_file_is_neither_offered_nor_served_and_purge_removes_it,
    files::a_file_whose_rows_fail_is_not_kept,
    files::a_sweep_never_removes_the_bytes_of_a_row_that_exists,
);

pub fn ids(v: Vec<UserNotification>) -> Vec<String> {
    v.into_iter().map(|x| x.notification.id).collect()
}

pub fn completion(id: &str, level: u32, owner: &str, at: Millis, then: StepOutcome) -> Completion {
    Completion {
        notification_id: id.into(),
        level,
        owner: owner.into(),
        at,
        add_users: vec![],
        add_role: None,
        audit: vec![],
        then,
    }
}

pub async fn levels(s: &dyn Store, now: Millis, owner: &str) -> Vec<(u32, bool, u32)> {
    s.claim_steps(now, owner, now + 1000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.level, c.fired, c.attempts))
        .collect()
}
