//! Presence in a cluster, in Redis: `presence:{U}` (status, since, and
//! while the grace runs, when the last socket left and its role),
//! `presence-due` (user -> end of the offline grace) and `presence-leased`
//! (claimed offline changes not yet announced). The registry's attach and
//! detach scripts start and end the grace; here presence is read and each
//! offline change whose grace ran out is claimed by one node.
//!
//! While Redis cannot be reached, answers come from this node's own socket
//! table, marked partial.

use std::sync::Arc;

use ::redis::Script;
use async_trait::async_trait;

use super::{Presence, PresenceChange, PresenceInfo, PresenceStatus};
use crate::clock::Millis;
use crate::cluster::{scripts, Answer, Leases, RedisLink};
use crate::connections::table::Sockets;

/// How long an offline user's presence is remembered.
const PRESENCE_KEPT_S: i64 = 30 * 24 * 3600;

/// How long a claimed offline change is reserved for its claimer to
/// announce before another node announces it.
const OFFLINE_LEASE: Millis = 10_000;

pub struct RedisPresence {
    link: Arc<RedisLink>,
    /// This node's sockets: the answer while Redis is unreachable.
    here: Arc<Sockets>,
    due_offline: Script,
    /// Offline changes this node claimed and has not yet announced.
    claimed: Leases<PresenceChange>,
}

impl RedisPresence {
    pub fn new(link: Arc<RedisLink>, here: Arc<Sockets>) -> Self {
        Self {
            claimed: Leases::new(link.clone(), link.keys().offline_leased()),
            link,
            here,
            due_offline: scripts::offline_due(),
        }
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn presence(&self, users: &[String], _now: Millis) -> Answer<Vec<PresenceInfo>> {
        let (user_sockets, presence) =
            (self.link.keys().user_sockets(), self.link.keys().presence());
        let users_owned = users.to_vec();
        let rows: Result<Vec<(usize, Option<String>, Option<i64>)>, _> = self
            .link
            .run(|mut c| async move {
                let mut pipe = ::redis::pipe();
                for u in &users_owned {
                    pipe.cmd("HLEN").arg(user_sockets.of(u));
                    pipe.cmd("HMGET")
                        .arg(presence.of(u))
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
        let keys = self.link.keys();
        let mut claim = self.due_offline.key(keys.offline_leased());
        claim
            .key(keys.offline_due())
            .arg(keys.user_sockets())
            .arg(keys.presence())
            .arg(now)
            .arg(PRESENCE_KEPT_S)
            .arg(OFFLINE_LEASE);
        self.claimed
            .claim(claim, |m| {
                let (user_id, role, at) = serde_json::from_str::<(String, String, f64)>(m).ok()?;
                Some(PresenceChange {
                    user_id,
                    role,
                    status: PresenceStatus::Offline,
                    at: at as Millis,
                })
            })
            .await
    }

    async fn announced(&self, change: &PresenceChange) {
        self.claimed.release(change).await;
    }

    async fn next_offline(&self) -> Option<Millis> {
        // The scheduler of a cluster node looks at the shared clocks every
        // second anyway; grace periods are seconds long.
        None
    }
}
