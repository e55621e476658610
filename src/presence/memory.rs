//! Presence on a single node: the in-process book, with connection counts
//! read from this node's socket table.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::book::PresenceBook;
use super::{Presence, PresenceChange, PresenceInfo};
use crate::clock::Millis;
use crate::cluster::Answer;
use crate::connections::table::Sockets;

pub struct MemoryPresence {
    sockets: Arc<Sockets>,
    book: Mutex<PresenceBook>,
}

impl MemoryPresence {
    pub fn new(sockets: Arc<Sockets>, grace: Millis) -> Self {
        Self {
            sockets,
            book: Mutex::new(PresenceBook::new(grace)),
        }
    }

    /// A user's first socket connected: true when this is news (not a
    /// return within the grace).
    pub fn first_socket(&self, user: &Arc<str>, role: &Arc<str>, now: Millis) -> bool {
        self.book.lock().first_socket(user, role, now)
    }

    /// A user's last socket left: offline after the grace, unless one comes back.
    pub fn last_socket_left(&self, user: &Arc<str>, role: &Arc<str>, now: Millis) {
        self.book.lock().last_socket_left(user, role, now);
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn presence(&self, users: &[String], _now: Millis) -> Answer<Vec<PresenceInfo>> {
        let book = self.book.lock();
        Answer::whole(
            users
                .iter()
                .map(|u| book.info(u, self.sockets.user_count(u)))
                .collect(),
        )
    }

    async fn due_offline(&self, now: Millis) -> Vec<PresenceChange> {
        self.book.lock().due(now)
    }

    async fn next_offline(&self) -> Option<Millis> {
        self.book.lock().next_due()
    }
}
