//! The cluster registry in Redis: each node's sockets, indexed by user and
//! session for routing and counts, the set of connected users, presence,
//! and node heartbeats. Every change is one Lua script, so indexes never
//! disagree; a node that stops beating is reaped (its sockets leave every
//! index) by the first live node that sees it, once.
//!
//! Keys (see [`crate::cluster::Keys`]): `nodes` (node -> last beat),
//! `node:N:sockets` (sid -> entry), `user:{U}:sockets` and
//! `session:{S}:sockets` (`sid@node` -> role / user), `users`,
//! `presence:{U}`, `presence-due` (user -> end of the offline grace) and
//! `presence-leased` (claimed offline changes not yet announced).
//!
//! While Redis cannot be reached, answers come from this node's own socket
//! table, marked partial: an operator still sees who is connected here.

use std::collections::HashMap;
use std::sync::Arc;

use ::redis::Script;
use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{Answer, Attached, PresenceChange, PresenceInfo, PresenceStatus, Registry};
use crate::clock::Millis;
use crate::cluster::RedisLink;
use crate::conn::Conn;
use crate::sockets::Sockets;

/// A socket's entry in its node's hash: enough to remove it from the
/// indexes when the node is reaped.
#[derive(Debug, Serialize, Deserialize)]
struct Entry<'a> {
    u: &'a str,
    s: &'a str,
    r: &'a str,
}

/// Removing one socket, or every socket of a node, from every index;
/// shared by detach, reap and rejoin.
/// When it was the user's last socket, the offline grace starts.
const REMOVE_SOCKET: &str = r#"
local function remove_socket(p, node, sid, user, session, now, grace)
  local field = sid .. '@' .. node
  local uk = p .. ':user:{' .. user .. '}:sockets'
  local role = redis.call('HGET', uk, field)
  redis.call('HDEL', p .. ':node:' .. node .. ':sockets', sid)
  redis.call('HDEL', uk, field)
  redis.call('HDEL', p .. ':session:{' .. session .. '}:sockets', field)
  if role and redis.call('HLEN', uk) == 0 then
    redis.call('SREM', p .. ':users', user)
    redis.call('HSET', p .. ':presence:{' .. user .. '}', 'left', now, 'role', role)
    redis.call('ZADD', p .. ':presence-due', now + grace, user)
  end
end

local function remove_node(p, node, now, grace)
  local nk = p .. ':node:' .. node .. ':sockets'
  local entries = redis.call('HGETALL', nk)
  for i = 1, #entries, 2 do
    local e = cjson.decode(entries[i + 1])
    remove_socket(p, node, entries[i], e.u, e.s, now, grace)
  end
  redis.call('DEL', nk)
  return #entries / 2
end
"#;

/// Adding one socket to every index; returns the user's socket count and
/// 1 when the user just came online.
const ADD_SOCKET: &str = r#"
local function add_socket(p, node, sid, user, session, role, entry, now)
  local field = sid .. '@' .. node
  local uk = p .. ':user:{' .. user .. '}:sockets'
  redis.call('HSET', p .. ':node:' .. node .. ':sockets', sid, entry)
  redis.call('HSET', uk, field, role)
  redis.call('HSET', p .. ':session:{' .. session .. '}:sockets', field, user)
  redis.call('SADD', p .. ':users', user)
  local n = redis.call('HLEN', uk)
  local online = 0
  if n == 1 then
    local pk = p .. ':presence:{' .. user .. '}'
    local in_grace = redis.call('ZREM', p .. ':presence-due', user)
    local status = redis.call('HGET', pk, 'status')
    if not (in_grace == 1 and status == 'online') and status ~= 'online' then
      redis.call('HSET', pk, 'status', 'online', 'since', now, 'role', role)
      redis.call('PERSIST', pk)
      online = 1
    end
  end
  return {n, online}
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{REMOVE_SOCKET}{ADD_SOCKET}{body}"))
}

/// How long an offline user's presence is remembered.
const PRESENCE_KEPT_S: i64 = 30 * 24 * 3600;

/// How long a claimed offline change is reserved for its claimer to
/// announce before another node announces it.
const OFFLINE_LEASE: Millis = 10_000;

pub struct RedisRegistry {
    link: Arc<RedisLink>,
    /// This node's sockets: the answer while Redis is unreachable.
    here: Arc<Sockets>,
    grace: Millis,
    attach: Script,
    detach: Script,
    reap: Script,
    clear_node: Script,
    prune_node: Script,
    due_offline: Script,
    /// Offline changes this node claimed and has not yet announced.
    claimed: Mutex<HashMap<PresenceChange, String>>,
}

impl RedisRegistry {
    pub fn new(link: Arc<RedisLink>, here: Arc<Sockets>, presence_grace: Millis) -> Self {
        Self {
            link,
            here,
            grace: presence_grace,
            attach: script(
                "return add_socket(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]))",
            ),
            detach: script(
                "remove_socket(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])) return 1",
            ),
            reap: script(
                r#"
local p, dead_before, now, grace = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local reaped = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', p .. ':nodes', '-inf', '(' .. dead_before)) do
  if redis.call('ZREM', p .. ':nodes', node) == 1 then
    remove_node(p, node, now, grace)
    table.insert(reaped, node)
  end
end
return reaped
"#,
            ),
            clear_node: script(
                "return remove_node(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))",
            ),
            prune_node: script(
                r#"
local p, node, now, grace = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local keep = {}
for i = 5, #ARGV do keep[ARGV[i]] = true end
local entries = redis.call('HGETALL', p .. ':node:' .. node .. ':sockets')
local pruned = 0
for i = 1, #entries, 2 do
  if not keep[entries[i]] then
    local e = cjson.decode(entries[i + 1])
    remove_socket(p, node, entries[i], e.u, e.s, now, grace)
    pruned = pruned + 1
  end
end
return pruned
"#,
            ),
            due_offline: script(
                r#"
local p, now, kept, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local leased = p .. ':presence-leased'
local out = {}
-- Claims whose claimer did not announce in time; a user back online
-- since was announced online, so the offline is dropped.
for _, m in ipairs(redis.call('ZRANGEBYSCORE', leased, '-inf', now, 'LIMIT', 0, 100)) do
  local user = cjson.decode(m)[1]
  if redis.call('HLEN', p .. ':user:{' .. user .. '}:sockets') == 0 then
    redis.call('ZADD', leased, now + lease, m)
    table.insert(out, m)
  else
    redis.call('ZREM', leased, m)
  end
end
for _, user in ipairs(redis.call('ZRANGEBYSCORE', p .. ':presence-due', '-inf', now, 'LIMIT', 0, 200)) do
  redis.call('ZREM', p .. ':presence-due', user)
  if redis.call('HLEN', p .. ':user:{' .. user .. '}:sockets') == 0 then
    local pk = p .. ':presence:{' .. user .. '}'
    local left = tonumber(redis.call('HGET', pk, 'left')) or now
    local role = redis.call('HGET', pk, 'role') or ''
    redis.call('HSET', pk, 'status', 'offline', 'since', left)
    redis.call('EXPIRE', pk, kept)
    local m = cjson.encode({user, role, left})
    redis.call('ZADD', leased, now + lease, m)
    table.insert(out, m)
  end
end
return out
"#,
            ),
            claimed: Mutex::new(HashMap::new()),
        }
    }

    fn prefix(&self) -> String {
        self.link.keys().prefix().to_string()
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
        let (p, grace) = (self.prefix(), self.grace);
        let reaped: Vec<String> = self
            .link
            .run(|mut c| async move {
                self.reap
                    .arg(&p)
                    .arg(now - dead_after)
                    .arg(now)
                    .arg(grace)
                    .invoke_async(&mut c)
                    .await
            })
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
        let (p, node, grace) = (self.prefix(), self.link.node().to_string(), self.grace);
        self.link
            .run(|mut c| async move {
                self.clear_node
                    .arg(&p)
                    .arg(&node)
                    .arg(now)
                    .arg(grace)
                    .invoke_async(&mut c)
                    .await
            })
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
        for chunk in conns.chunks(500) {
            let p = self.prefix();
            let node = self.link.node().to_string();
            self.link
                .run(|mut c| async move {
                    // A pipeline does not reload a script Redis has lost
                    // (it restarted empty): load it first.
                    self.attach.load_async(&mut c).await?;
                    let mut pipe = ::redis::pipe();
                    for conn in chunk {
                        let entry = entry_json(conn);
                        let mut inv = self.attach.prepare_invoke();
                        inv.arg(&p)
                            .arg(&node)
                            .arg(conn.sid.to_string())
                            .arg(&*conn.user_id)
                            .arg(&*conn.session_id)
                            .arg(&*conn.role)
                            .arg(entry)
                            .arg(now);
                        pipe.invoke_script(&inv).ignore();
                    }
                    pipe.query_async::<()>(&mut c).await
                })
                .await?;
        }
        let keep: Vec<String> = here().iter().map(|c| c.sid.to_string()).collect();
        let (p, node, grace) = (self.prefix(), self.link.node().to_string(), self.grace);
        self.link
            .run(|mut c| async move {
                self.prune_node
                    .arg(&p)
                    .arg(&node)
                    .arg(now)
                    .arg(grace)
                    .arg(&keep)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
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
    serde_json::to_string(&Entry {
        u: &conn.user_id,
        s: &conn.session_id,
        r: &conn.role,
    })
    .unwrap_or_default()
}

#[async_trait]
impl Registry for RedisRegistry {
    async fn attach(&self, conn: &Conn, now: Millis) -> Attached {
        let (p, node) = (self.prefix(), self.link.node().to_string());
        let entry = entry_json(conn);
        let sid = conn.sid.to_string();
        let result: Result<(i64, i64), _> = self
            .link
            .run(|mut c| async move {
                self.attach
                    .arg(&p)
                    .arg(&node)
                    .arg(&sid)
                    .arg(&*conn.user_id)
                    .arg(&*conn.session_id)
                    .arg(&*conn.role)
                    .arg(entry)
                    .arg(now)
                    .invoke_async(&mut c)
                    .await
            })
            .await;
        match result {
            Ok((n, online)) => Attached {
                user_sockets: n.max(1) as usize,
                came_online: online == 1,
                partial: false,
            },
            Err(e) => {
                tracing::debug!(error = %e, "socket not registered in redis; it is when redis is back");
                Attached {
                    user_sockets: 1,
                    came_online: false,
                    partial: true,
                }
            }
        }
    }

    async fn detach(&self, conn: &Conn, now: Millis) {
        let (p, node, grace) = (self.prefix(), self.link.node().to_string(), self.grace);
        let sid = conn.sid.to_string();
        let _ = self
            .link
            .run(|mut c| async move {
                self.detach
                    .arg(&p)
                    .arg(&node)
                    .arg(&sid)
                    .arg(&*conn.user_id)
                    .arg(&*conn.session_id)
                    .arg(now)
                    .arg(grace)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
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
        let key = self.link.keys().user_sockets(user);
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

    async fn presence(&self, users: &[String], _now: Millis) -> Answer<Vec<PresenceInfo>> {
        let keys = self.link.keys().clone();
        let users_owned = users.to_vec();
        let rows: Result<Vec<(usize, Option<String>, Option<i64>)>, _> = self
            .link
            .run(|mut c| async move {
                let mut pipe = ::redis::pipe();
                for u in &users_owned {
                    pipe.cmd("HLEN").arg(keys.user_sockets(u));
                    pipe.cmd("HMGET")
                        .arg(keys.presence(u))
                        .arg("status")
                        .arg("since");
                }
                let flat: Vec<::redis::Value> = pipe.query_async(&mut c).await?;
                let mut rows = Vec::with_capacity(users_owned.len());
                for pair in flat.chunks(2) {
                    let n: usize = ::redis::from_redis_value(pair[0].clone())?;
                    let (status, since): (Option<String>, Option<i64>) =
                        ::redis::from_redis_value(pair[1].clone())?;
                    rows.push((n, status, since));
                }
                Ok(rows)
            })
            .await;
        match rows {
            Ok(rows) => Answer::whole(
                users
                    .iter()
                    .zip(rows)
                    .map(|(u, (n, status, since))| PresenceInfo {
                        user_id: u.clone(),
                        status: if status.as_deref() == Some("online") {
                            PresenceStatus::Online
                        } else {
                            PresenceStatus::Offline
                        },
                        since,
                        connections: n,
                    })
                    .collect(),
            ),
            // Online here is online; offline here may be online elsewhere,
            // and when either began is not known without Redis.
            Err(_) => Answer {
                value: users
                    .iter()
                    .map(|u| {
                        let connections = self.here.user_count(u);
                        PresenceInfo {
                            user_id: u.clone(),
                            status: if connections > 0 {
                                PresenceStatus::Online
                            } else {
                                PresenceStatus::Offline
                            },
                            since: None,
                            connections,
                        }
                    })
                    .collect(),
                partial: true,
            },
        }
    }

    async fn due_offline(&self, now: Millis) -> Vec<PresenceChange> {
        let p = self.prefix();
        let members: Vec<String> = self
            .link
            .run(|mut c| async move {
                self.due_offline
                    .arg(&p)
                    .arg(now)
                    .arg(PRESENCE_KEPT_S)
                    .arg(OFFLINE_LEASE)
                    .invoke_async(&mut c)
                    .await
            })
            .await
            .unwrap_or_default();
        let mut claimed = self.claimed.lock();
        members
            .into_iter()
            .filter_map(|m| {
                let (user_id, role, at) = serde_json::from_str::<(String, String, f64)>(&m).ok()?;
                let change = PresenceChange {
                    user_id,
                    role,
                    status: PresenceStatus::Offline,
                    at: at as Millis,
                };
                claimed.insert(change.clone(), m);
                Some(change)
            })
            .collect()
    }

    async fn announced(&self, change: &PresenceChange) {
        let Some(member) = self.claimed.lock().remove(change) else {
            return;
        };
        let key = self.link.keys().offline_leased();
        let _ = self
            .link
            .query::<i64>(::redis::cmd("ZREM").arg(&key).arg(&member))
            .await;
    }

    async fn next_offline(&self) -> Option<Millis> {
        // The scheduler of a cluster node looks at the shared clocks every
        // second anyway; grace periods are seconds long.
        None
    }
}
