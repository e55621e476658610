//! The cluster registry in Redis: each node's sockets, indexed by user and
//! session for routing and counts, the set of connected users, and node
//! heartbeats. Adding and removing sockets also starts and ends presence
//! in the same script (see [`crate::presence`]). Every change is one Lua script, so indexes never
//! disagree; a node that stops beating is reaped (its sockets leave every
//! index) by the first live node that sees it, once.
//!
//! Keys (see [`crate::cluster::Keys`]): `nodes` (node -> last beat),
//! `node:N:sockets` (sid -> entry), `user:{U}:sockets` and
//! `session:{S}:sockets` (`sid@node` -> role / user), `users`,
//! `user:{U}:reserved` (`sid@node` -> when the place lapses: connects
//! under way, counted against the per-user cap),
//! and, for presence, `presence:{U}` and `presence-due` (user -> end of
//! the offline grace).
//!
//! While Redis cannot be reached, answers come from this node's own socket
//! table, marked partial: an operator still sees who is connected here.

use std::sync::Arc;

use ::redis::{Script, ScriptInvocation};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use socketioxide::socket::Sid;

use super::{Attached, Registry};
use crate::clock::Millis;
use crate::cluster::{scripts, Answer, RedisLink};
use crate::connections::connection::Conn;
use crate::connections::handover::STRAY_AFTER_MS;
use crate::connections::table::Sockets;

/// A socket's entry in its node's hash: enough to remove it from the
/// indexes when the node is reaped. The short names are what the scripts
/// read (`e.u`, `e.s`) and what Redis already holds.
#[derive(Debug, Serialize, Deserialize)]
struct SocketEntry<'a> {
    #[serde(rename = "u")]
    user: &'a str,
    #[serde(rename = "s")]
    session: &'a str,
    #[serde(rename = "r")]
    role: &'a str,
}

pub struct RedisRegistry {
    link: Arc<RedisLink>,
    /// This node's sockets: the answer while Redis is unreachable.
    here: Arc<Sockets>,
    grace: Millis,
    reserve: Script,
    attach: Script,
    detach: Script,
    reap: Script,
    clear_node: Script,
    prune_node: Script,
}

impl RedisRegistry {
    pub fn new(link: Arc<RedisLink>, here: Arc<Sockets>, presence_grace: Millis) -> Self {
        Self {
            link,
            here,
            grace: presence_grace,
            reserve: scripts::reserve(),
            attach: scripts::attach(),
            detach: scripts::detach(),
            reap: scripts::reap(),
            clear_node: scripts::clear_node(),
            prune_node: scripts::prune_node(),
        }
    }

    /// Starts a script that removes a node's sockets with the keys and
    /// families it takes first (`node_indexes` in `sockets.lua`).
    fn removing<'s>(&self, script: &'s Script) -> ScriptInvocation<'s> {
        let keys = self.link.keys();
        let mut inv = script.prepare_invoke();
        inv.key(keys.users())
            .key(keys.offline_due())
            .arg(keys.user_sockets())
            .arg(keys.session_sockets())
            .arg(keys.presence());
        inv
    }

    /// Starts a script on one socket with the six keys it is indexed under.
    fn on_socket<'s>(&self, script: &'s Script, conn: &Conn) -> ScriptInvocation<'s> {
        let mut inv = script.prepare_invoke();
        let keys = self.link.keys();
        for key in keys.socket(self.link.node(), &conn.user_id, &conn.session_id) {
            inv.key(key);
        }
        inv
    }

    /// Starts the script that adds `conn` to every index and gives back
    /// the place its connect took.
    fn attaching(&self, conn: &Conn, now: Millis) -> ScriptInvocation<'_> {
        let mut inv = self.on_socket(&self.attach, conn);
        inv.key(self.link.keys().user_reserved().of(&conn.user_id))
            .key(self.link.keys().expired())
            .arg(&**self.link.node())
            .arg(conn.sid.to_string())
            .arg(&*conn.user_id)
            .arg(&*conn.role)
            .arg(entry_json(conn))
            .arg(now)
            .arg(&*conn.session_id);
        inv
    }

    /// A socket's field in its user's and session's indexes.
    fn field(&self, sid: Sid) -> String {
        format!("{sid}@{}", self.link.node())
    }

    /// Records this node's heartbeat and reaps nodes silent for longer than
    /// `dead_after`. True when this node had itself been taken for dead (or
    /// is new): it must rewrite its sockets ([`RedisRegistry::rewrite`]).
    pub async fn beat(
        &self,
        now: Millis,
        dead_after: Millis,
    ) -> Result<bool, crate::cluster::LinkError> {
        let nodes = self.link.keys().nodes();
        let node = self.link.node().to_string();
        let added: i64 = self
            .link
            .query(::redis::cmd("ZADD").arg(&nodes).arg(now).arg(&node))
            .await?;
        let mut reap = self.removing(&self.reap);
        reap.key(&nodes)
            .arg(self.link.keys().node_sockets())
            .arg(now - dead_after)
            .arg(now)
            .arg(self.grace);
        let reaped: Vec<String> = self
            .link
            .run(|mut c| async move { reap.invoke_async(&mut c).await })
            .await?;
        for node in &reaped {
            tracing::warn!(node = %node, "a node stopped beating; its sockets are no longer counted");
        }
        Ok(added == 1)
    }

    /// Leaves the cluster cleanly (shutdown): this node's sockets go at once.
    pub async fn leave(&self, now: Millis) {
        let _ = self.clear(now).await;
        let (nodes, node) = (self.link.keys().nodes(), self.link.node().to_string());
        let _ = self
            .link
            .query::<i64>(::redis::cmd("ZREM").arg(&nodes).arg(&node))
            .await;
    }

    async fn clear(&self, now: Millis) -> Result<i64, crate::cluster::LinkError> {
        let node = self.link.node();
        let mut clear = self.removing(&self.clear_node);
        clear
            .key(self.link.keys().node_sockets().of(node))
            .arg(&**node)
            .arg(now)
            .arg(self.grace);
        self.link
            .run(|mut c| async move { clear.invoke_async(&mut c).await })
            .await
    }

    /// Makes what Redis holds of this node match the sockets `here` lists
    /// (after Redis came back, or after this node was taken for dead):
    /// every listed socket is added first, then entries of sockets no
    /// longer here are pruned, so a live socket never drops out of the
    /// indexes meanwhile (a delivery routed during a rejoin still finds
    /// it). `here` is asked again for the prune: a socket that left after
    /// the first list is pruned, one that came registers itself.
    pub async fn rewrite(
        &self,
        here: impl Fn() -> Vec<Arc<Conn>>,
        now: Millis,
    ) -> Result<usize, crate::cluster::LinkError> {
        let conns = here();
        let node = self.link.node();
        for chunk in conns.chunks(500) {
            self.link
                .run(|mut c| async move {
                    // A pipeline does not reload a script Redis has lost
                    // (it restarted empty): load it first.
                    self.attach.load_async(&mut c).await?;
                    let mut pipe = ::redis::pipe();
                    for conn in chunk {
                        pipe.invoke_script(&self.attaching(conn, now)).ignore();
                    }
                    pipe.query_async::<()>(&mut c).await
                })
                .await?;
        }
        let keep: Vec<String> = here().iter().map(|c| c.sid.to_string()).collect();
        let mut prune = self.removing(&self.prune_node);
        prune
            .key(self.link.keys().node_sockets().of(node))
            .arg(&**node)
            .arg(now)
            .arg(self.grace)
            .arg(&keep);
        self.link
            .run(|mut c| async move { prune.invoke_async::<i64>(&mut c).await })
            .await?;
        Ok(conns.len())
    }

    /// The nodes holding sockets of one user or session (by the index key).
    pub async fn nodes_of_index(
        &self,
        keys: &[String],
    ) -> Result<Vec<Vec<String>>, crate::cluster::LinkError> {
        let keys = keys.to_vec();
        let fields: Vec<Vec<String>> = self
            .link
            .run(|mut c| async move {
                let mut pipe = ::redis::pipe();
                for k in &keys {
                    pipe.cmd("HKEYS").arg(k);
                }
                pipe.query_async(&mut c).await
            })
            .await?;
        Ok(fields
            .into_iter()
            .map(|fs| {
                let mut nodes: Vec<String> = fs
                    .iter()
                    .filter_map(|f| f.split_once('@').map(|(_, n)| n.to_string()))
                    .collect();
                nodes.sort();
                nodes.dedup();
                nodes
            })
            .collect())
    }
}

fn entry_json(conn: &Conn) -> String {
    serde_json::to_string(&SocketEntry {
        user: &conn.user_id,
        session: &conn.session_id,
        role: &conn.role,
    })
    .unwrap_or_default()
}

#[async_trait]
impl Registry for RedisRegistry {
    /// One script in place of the count it replaces: no extra round trip
    /// per connect.
    async fn reserve(&self, user: &str, sid: Sid, cap: usize, now: Millis) -> bool {
        let keys = self.link.keys();
        let mut reserve = self.reserve.prepare_invoke();
        reserve
            .key(keys.user_sockets().of(user))
            .key(keys.user_reserved().of(user))
            .arg(self.field(sid))
            .arg(now)
            .arg(STRAY_AFTER_MS)
            .arg(cap);
        let taken: Result<i64, _> = self
            .link
            .run(|mut c| async move { reserve.invoke_async(&mut c).await })
            .await;
        match taken {
            Ok(taken) => taken == 1,
            Err(e) => {
                tracing::debug!(error = %e, "socket cap checked on this node only: redis unreachable");
                true
            }
        }
    }

    async fn release(&self, user: &str, sid: Sid) {
        let key = self.link.keys().user_reserved().of(user);
        let _ = self
            .link
            .query::<i64>(::redis::cmd("ZREM").arg(&key).arg(self.field(sid)))
            .await;
    }

    async fn attach(&self, conn: &Conn, now: Millis) -> Attached {
        let attach = self.attaching(conn, now);
        let result: Result<(i64, i64, i64), _> = self
            .link
            .run(|mut c| async move { attach.invoke_async(&mut c).await })
            .await;
        match result {
            Ok((n, online, expired)) => Attached {
                user_sockets: n.max(1) as usize,
                came_online: online == 1,
                partial: false,
                session_expired: Some(expired == 1),
            },
            Err(e) => {
                tracing::debug!(error = %e, "socket not registered in redis; it is when redis is back");
                Attached {
                    user_sockets: 1,
                    came_online: false,
                    partial: true,
                    session_expired: None,
                }
            }
        }
    }

    async fn detach(&self, conn: &Conn, now: Millis) {
        let mut detach = self.on_socket(&self.detach, conn);
        detach
            .arg(&**self.link.node())
            .arg(conn.sid.to_string())
            .arg(&*conn.user_id)
            .arg(now)
            .arg(self.grace);
        let _ = self
            .link
            .run(|mut c| async move { detach.invoke_async::<i64>(&mut c).await })
            .await;
    }

    async fn connected_users(&self) -> Answer<Vec<String>> {
        let key = self.link.keys().users();
        match self
            .link
            .query::<Vec<String>>(::redis::cmd("SMEMBERS").arg(&key))
            .await
        {
            Ok(mut users) => {
                users.sort();
                Answer::whole(users)
            }
            Err(_) => Answer {
                value: self.here.users(),
                partial: true,
            },
        }
    }

    async fn user_socket_count(&self, user: &str) -> Answer<usize> {
        let key = self.link.keys().user_sockets().of(user);
        match self
            .link
            .query::<usize>(::redis::cmd("HLEN").arg(&key))
            .await
        {
            Ok(n) => Answer::whole(n),
            Err(_) => Answer {
                value: self.here.user_count(user),
                partial: true,
            },
        }
    }
}
