//! The registry of a single node: the socket table is the whole truth, so
//! counts are read from it; a user's first and last sockets are told to
//! the node's presence book.

use std::sync::Arc;

use async_trait::async_trait;
use socketioxide::socket::Sid;

use super::{Attached, Joined, Joining, Registry};
use crate::clock::Millis;
use crate::cluster::Answer;
use crate::connections::connection::Conn;
use crate::connections::table::Sockets;
use crate::presence::MemoryPresence;

pub struct MemoryRegistry {
    sockets: Arc<Sockets>,
    presence: Arc<MemoryPresence>,
}

impl MemoryRegistry {
    /// Reads counts from `sockets`, which the caller keeps: a socket is in
    /// the table before `attach` and out of it before `detach`.
    pub fn new(sockets: Arc<Sockets>, presence: Arc<MemoryPresence>) -> Self {
        Self { sockets, presence }
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    /// The table's place ([`Sockets::reserve`]) is the whole count on a
    /// single node.
    async fn join(&self, _: &Joining<'_>) -> Joined {
        Joined::Held { clock: false }
    }

    async fn release(&self, _: &str, _: &str, _: Sid, _: Millis) {}

    async fn attach(&self, conn: &Conn, now: Millis) -> Attached {
        let user_sockets = self.sockets.user_count(&conn.user_id);
        let came_online =
            user_sockets == 1 && self.presence.first_socket(&conn.user_id, &conn.role, now);
        Attached {
            user_sockets,
            came_online,
            partial: false,
            session_expired: None,
        }
    }

    async fn detach(&self, conn: &Conn, now: Millis) {
        if self.sockets.user_count(&conn.user_id) == 0 {
            self.presence
                .last_socket_left(&conn.user_id, &conn.role, now);
        }
    }

    async fn connected_users(&self) -> Answer<Vec<String>> {
        Answer::whole(self.sockets.users())
    }

    async fn user_socket_count(&self, user: &str) -> Answer<usize> {
        Answer::whole(self.sockets.user_count(user))
    }
}
