//! The registry of a single node: the socket table is the whole truth, so
//! counts are read from it; presence is kept in an in-process book.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::presence::PresenceBook;
use super::{Answer, Attached, PresenceChange, PresenceInfo, Registry};
use crate::clock::Millis;
use crate::conn::Conn;
use crate::sockets::Sockets;

pub struct MemoryRegistry {
    sockets: Arc<Sockets>,
    presence: Mutex<PresenceBook>,
}

impl MemoryRegistry {
    /// Reads counts from `sockets`, which the caller keeps: a socket is in
    /// the table before `attach` and out of it before `detach`.
    pub fn new(sockets: Arc<Sockets>, presence_grace: Millis) -> Self {
        Self {
            sockets,
            presence: Mutex::new(PresenceBook::new(presence_grace)),
        }
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn attach(&self, conn: &Conn, now: Millis) -> Attached {
        let user_sockets = self.sockets.user_count(&conn.user_id);
        let came_online = user_sockets == 1
            && self
                .presence
                .lock()
                .first_socket(&conn.user_id, &conn.role, now);
        Attached {
            user_sockets,
            came_online,
            partial: false,
        }
    }

    async fn detach(&self, conn: &Conn, now: Millis) {
        if self.sockets.user_count(&conn.user_id) == 0 {
            self.presence
                .lock()
                .last_socket_left(&conn.user_id, &conn.role, now);
        }
    }

    async fn connected_users(&self) -> Answer<Vec<String>> {
        Answer::whole(self.sockets.users())
    }

    async fn user_socket_count(&self, user: &str) -> Answer<usize> {
        Answer::whole(self.sockets.user_count(user))
    }

    async fn presence(&self, users: &[String], _now: Millis) -> Answer<Vec<PresenceInfo>> {
        let book = self.presence.lock();
        Answer::whole(
            users
                .iter()
                .map(|u| book.info(u, self.sockets.user_count(u)))
                .collect(),
        )
    }

    async fn due_offline(&self, now: Millis) -> Vec<PresenceChange> {
        self.presence.lock().due(now)
    }

    async fn next_offline(&self) -> Option<Millis> {
        self.presence.lock().next_due()
    }
}
