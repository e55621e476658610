//! The cluster registry in Redis: each node's sockets, indexed by user and
//! session for routing and counts, the set of connected users, and node
//! heartbeats. Adding and removing sockets also starts and ends presence
//! in the same script (see [`crate::presence`]). Every change is one Lua script, so indexes never
//! disagree; a node that stops beating is reaped (its sockets leave every
//! index) by the first live node that sees it, once.
//!
//! Keys (see [`crate::cluster::Keys`]): `nodes` (node -> last beat),
//! `node:N:sockets` (sid -> entry), `user:{U}:sockets` (`sid@node` ->
//! role), `users`, and, for presence, `presence:{U}` and `presence-due`
//! (user -> end of the offline grace).
//!
//! A connect is one script ([`Registry::join`]): its place under the
//! per-user cap is the socket's own entry, written with the session's
//! clock and the user's presence, so the attachment that follows costs
//! Redis nothing. A connect that fails after it gives the entry back; one
//! whose handshake never completed is given back by the node's sweep of
//! strays ([`crate::connections::handover`]), and a node that dies
//! mid-connect is reaped with its sockets.
//!
//! While Redis cannot be reached, answers come from this node's own socket
//! table, marked partial: an operator still sees who is connected here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ::redis::{Script, ScriptInvocation};
use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use socketioxide::socket::Sid;

use super::{Attached, Joined, Joining, Registry};
use crate::clock::Millis;
use crate::cluster::{scripts, Answer, RedisLink};
use crate::connections::connection::Conn;
use crate::connections::table::Sockets;

/// A socket's entry in its node's hash: enough to remove it from the
/// indexes when the node is reaped. The short names are what the scripts
/// read (`e.u`, `e.r`) and what Redis already holds. The session is no
/// longer read, but nodes of the previous version read it when they reap.
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
    /// Sockets joined (their entries written) and not yet attached: what
    /// their join found, for their attachment.
    joined: Mutex<HashMap<Sid, Attached>>,
    /// Sockets whose join is under way: Redis may already hold their
    /// entries before the answer comes back, so a rejoin's prune must keep
    /// them as it keeps the joined ones.
    joining: Mutex<HashSet<Sid>>,
    join: Script,
    register: Script,
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
            joined: Mutex::new(HashMap::new()),
            joining: Mutex::new(HashSet::new()),
            join: scripts::join(),
            register: scripts::register(),
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
            .arg(keys.presence());
        inv
    }

    /// Starts a script on one socket of `user` with the five keys it is
    /// indexed under.
    fn on_socket<'s>(&self, script: &'s Script, user: &str) -> ScriptInvocation<'s> {
        let mut inv = script.prepare_invoke();
        for key in self.link.keys().socket(self.link.node(), user) {
            inv.key(key);
        }
        inv
    }

    /// Starts the script that adds `conn` to every index (when its join
    /// could not).
    fn registering(&self, conn: &Conn, now: Millis) -> ScriptInvocation<'_> {
        let mut inv = self.on_socket(&self.register, &conn.user_id);
        inv.key(self.link.keys().expired())
            .arg(&**self.link.node())
            .arg(conn.sid.to_string())
            .arg(&*conn.user_id)
            .arg(&*conn.role)
            .arg(entry_json(&conn.user_id, &conn.session_id, &conn.role))
            .arg(now)
            .arg(&*conn.session_id);
        inv
    }

    /// Removes the socket `sid` of `user` from every index.
    async fn remove(&self, user: &str, role: &str, sid: Sid, now: Millis) {
        let mut detach = self.on_socket(&self.detach, user);
        detach
            .arg(&**self.link.node())
            .arg(sid.to_string())
            .arg(user)
            .arg(role)
            .arg(now)
            .arg(self.grace);
        let _ = self
            .link
            .run(|mut c| async move { detach.invoke_async::<i64>(&mut c).await })
            .await;
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
                    self.register.load_async(&mut c).await?;
                    let mut pipe = ::redis::pipe();
                    for conn in chunk {
                        pipe.invoke_script(&self.registering(conn, now)).ignore();
                    }
                    pipe.query_async::<()>(&mut c).await
                })
                .await?;
        }
        // Sockets joined and not yet attached keep their entries too, and
        // so do those whose join is under way (its script may have run).
        let mut keep: Vec<String> = here().iter().map(|c| c.sid.to_string()).collect();
        keep.extend(self.joining.lock().iter().map(|sid| sid.to_string()));
        keep.extend(self.joined.lock().keys().map(|sid| sid.to_string()));
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

fn entry_json(user: &str, session: &str, role: &str) -> String {
    serde_json::to_string(&SocketEntry {
        user,
        session,
        role,
    })
    .unwrap_or_default()
}

/// Takes a socket out of the joins under way when its join's answer has
/// been dealt with (at the end of [`RedisRegistry::join`]).
struct JoiningEnds<'a>(&'a Mutex<HashSet<Sid>>, Sid);

impl Drop for JoiningEnds<'_> {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

#[async_trait]
impl Registry for RedisRegistry {
    async fn join(&self, j: &Joining<'_>) -> Joined {
        let keys = self.link.keys();
        let mut join = self.on_socket(&self.join, j.user);
        join.key(keys.expired())
            .key(keys.session_clock().of(j.session))
            .key(keys.clock_due())
            .arg(&**self.link.node())
            .arg(j.sid.to_string())
            .arg(j.user)
            .arg(j.role)
            .arg(entry_json(j.user, j.session, j.role))
            .arg(j.now)
            .arg(j.session)
            .arg(j.cap)
            .arg(j.idle)
            .arg(j.warn);
        // Joining until this returns (or is dropped), and joined (below)
        // before that: a rejoin's prune always finds it in one or the other.
        self.joining.lock().insert(j.sid);
        let _joining = JoiningEnds(&self.joining, j.sid);
        let result: Result<Vec<i64>, _> = self
            .link
            .run(|mut c| async move { join.invoke_async(&mut c).await })
            .await;
        match result.as_deref() {
            Ok([-1]) => Joined::Full,
            Ok([-2]) => Joined::SessionExpired,
            Ok(&[n, online]) => {
                self.joined.lock().insert(
                    j.sid,
                    Attached {
                        user_sockets: n.max(1) as usize,
                        came_online: online == 1,
                        partial: false,
                        session_expired: Some(false),
                    },
                );
                Joined::Held { clock: true }
            }
            Ok(other) => {
                tracing::warn!(answer = ?other, "unexpected answer to a join; checked on this node only");
                Joined::Held { clock: false }
            }
            Err(e) => {
                tracing::debug!(error = %e, "socket cap checked on this node only: redis unreachable");
                Joined::Held { clock: false }
            }
        }
    }

    async fn release(&self, user: &str, role: &str, sid: Sid, now: Millis) {
        if self.joined.lock().remove(&sid).is_some() {
            self.remove(user, role, sid, now).await;
        }
    }

    /// Nothing to write when the connect's join did it; else (Redis was
    /// unreachable then) the socket is registered now.
    async fn attach(&self, conn: &Conn, now: Millis) -> Attached {
        if let Some(joined) = self.joined.lock().remove(&conn.sid) {
            return joined;
        }
        let register = self.registering(conn, now);
        let result: Result<(i64, i64, i64), _> = self
            .link
            .run(|mut c| async move { register.invoke_async(&mut c).await })
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
        self.remove(&conn.user_id, &conn.role, conn.sid, now).await;
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
