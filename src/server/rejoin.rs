//! Rejoining the cluster: after Redis comes back (it may have lost what this
//! node wrote) or after this node was taken for dead, its heartbeat, its
//! sockets in the registry, its sessions' clocks and the expired sessions
//! are written again, and every socket here gets a catch-up, so a
//! notification stored elsewhere during the outage is not left waiting for
//! a reconnect. Also the node's heartbeat loop.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Millis;
use crate::cluster::{RedisLink, Resync};
use crate::hub::Hub;
use crate::registry::RedisRegistry;
use crate::session::{RedisSessions, SessionKey};

pub struct Rejoin {
    hub: Weak<Hub>,
    link: Arc<RedisLink>,
    registry: Arc<RedisRegistry>,
    sessions: Arc<RedisSessions>,
    node_timeout: Duration,
}

impl Rejoin {
    pub fn new(
        hub: Weak<Hub>,
        link: Arc<RedisLink>,
        registry: Arc<RedisRegistry>,
        sessions: Arc<RedisSessions>,
        node_timeout: Duration,
    ) -> Self {
        Self {
            hub,
            link,
            registry,
            sessions,
            node_timeout,
        }
    }

    /// A node silent this long is reaped: short enough that its sockets
    /// leave every answer within the node timeout.
    fn dead_after(&self) -> Millis {
        self.node_timeout.as_millis() as Millis * 2 / 3
    }

    /// Beats every sixth of the node timeout for the node's life; rejoins
    /// when it finds itself taken for dead.
    pub async fn beat_forever(self: Arc<Self>) {
        let every = self.node_timeout / 6;
        loop {
            tokio::time::sleep(every).await;
            let Some(hub) = self.hub.upgrade() else {
                return;
            };
            // The rejoin after a (re)connection beats first itself; a beat
            // before it is done would find the node missing and rejoin twice.
            if !self.link.is_joined() {
                continue;
            }
            // Connects whose handshake never completed give back their
            // places (their entries in the indexes) within a beat or two.
            for stray in hub.authenticated().sweep(hub.now()) {
                hub.release_place(&stray.user_id, &stray.role, stray.sid)
                    .await;
            }
            if let Ok(true) = self.registry.beat(hub.now(), self.dead_after()).await {
                tracing::warn!("this node had been taken for dead; rejoining");
                self.resync().await;
            }
        }
    }

    /// Leaves the cluster (graceful shutdown).
    pub async fn leave(&self) {
        if let Some(hub) = self.hub.upgrade() {
            self.registry.leave(hub.now()).await;
        }
    }
}

#[async_trait]
impl Resync for Rejoin {
    async fn resync(&self) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let now = hub.now();
        if let Err(e) = self.registry.beat(now, self.dead_after()).await {
            tracing::warn!(error = %e, "rejoin: heartbeat failed");
            return;
        }
        let here = || hub.local_handles().iter().map(|h| h.conn.clone()).collect();
        if let Err(e) = self.registry.rewrite(here, now).await {
            tracing::warn!(error = %e, "rejoin: could not rewrite this node's sockets");
            return;
        }
        let handles = hub.local_handles();
        // Each session here is idle since the latest activity of its
        // sockets here, not since the rejoin: an outage must not extend
        // a session nobody used.
        let mut latest: HashMap<&str, (SessionKey, Millis)> = HashMap::new();
        for c in handles.iter().map(|h| &h.conn) {
            let at = c.last_activity();
            latest
                .entry(&c.session_id)
                .and_modify(|(_, t)| *t = (*t).max(at))
                .or_insert_with(|| (SessionKey::new(&c.session_id, &c.user_id, &c.role), at));
        }
        let sessions: Vec<(SessionKey, Millis)> = latest.into_values().collect();
        let expired = hub.recently_expired_sessions().await;
        self.sessions.rejoin(&sessions, &expired, now).await;
        tracing::info!(sockets = handles.len(), "rejoined the cluster");
        // Catch-ups run in the background, a few at a time.
        let hub = hub.clone();
        tokio::spawn(async move {
            let limit = Arc::new(tokio::sync::Semaphore::new(8));
            for h in handles {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let hub = hub.clone();
                tokio::spawn(async move {
                    hub.catch_up(&h).await;
                    drop(permit);
                });
            }
        });
    }
}
