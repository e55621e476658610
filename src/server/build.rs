//! Builds the Hub from the configuration: SQLite or PostgreSQL for the
//! store, and with a Redis URL the cluster engines (registry, presence,
//! broker, session clocks) and what keeps this node joined.

use std::sync::Arc;

use crate::broker::{Broker, LocalBroker, RedisBroker};
use crate::clock::{Millis, SharedClock};
use crate::cluster::{RedisLink, Resync};
use crate::config::Config;
use crate::connections::table::Sockets;
use crate::hub::{Engines, Hub};
use crate::presence::{MemoryPresence, RedisPresence};
use crate::registry::{MemoryRegistry, RedisRegistry, Registry};
use crate::session::{MemorySessions, RedisSessions, SessionClocks};
use crate::store::{Metered, PostgresStore, SqliteStore, Store};

use super::rejoin::Rejoin;
use super::StartError;

/// The hub and, in a cluster, what keeps it joined.
pub struct Built {
    pub hub: Arc<Hub>,
    /// The store the hub uses, which the checkpoint maker reads too.
    pub store: Arc<dyn Store>,
    pub(super) cluster: Option<ClusterParts>,
}

pub(super) struct ClusterParts {
    pub(super) link: Arc<RedisLink>,
    pub(super) broker: Arc<RedisBroker>,
    pub(super) rejoin: Arc<Rejoin>,
}

/// Builds the hub from `config`: SQLite or PostgreSQL for the store, and
/// with a Redis URL the cluster engines (registry, presence, broker,
/// session clocks).
pub async fn build_hub(config: Config, clock: SharedClock) -> Result<Built, StartError> {
    let config = Arc::new(config);
    let node: Arc<str> = Arc::from(config.cluster.node_id.as_str());
    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => Arc::new(Metered::new(PostgresStore::connect(url.expose()).await?)),
        None => Arc::new(Metered::new(SqliteStore::open(&config.data_dir).await?)),
    };
    let sockets = Arc::new(Sockets::default());
    let grace = config.presence.grace.as_millis() as Millis;
    let patience = config.socket.ping_timeout;
    let max_queued = config.socket.max_queued_bytes;
    let local_broker = |registry: Arc<dyn Registry>| {
        Arc::new(
            LocalBroker::new(
                node.clone(),
                sockets.clone(),
                registry,
                store.clone(),
                clock.clone(),
                patience,
                max_queued,
            )
            .with_closed_loop(!config.escalation.policies.is_empty()),
        )
    };
    let Some(url) = &config.cluster.redis_url else {
        let presence = Arc::new(MemoryPresence::new(sockets.clone(), grace));
        let registry: Arc<dyn Registry> =
            Arc::new(MemoryRegistry::new(sockets.clone(), presence.clone()));
        let local = local_broker(registry.clone());
        let sessions: Arc<dyn SessionClocks> =
            Arc::new(MemorySessions::new(config.session.clone()));
        let since = clock.now_ms() - config.retention.unacknowledged.as_millis() as i64;
        sessions
            .restore_expired(store.expired_sessions(since).await?, clock.now_ms())
            .await;
        let engines = Engines {
            store: store.clone(),
            sessions,
            registry,
            presence,
            broker: local.clone(),
            local,
            sockets,
            node,
            redis: None,
        };
        return Ok(Built {
            hub: Hub::new(config, clock, engines),
            store,
            cluster: None,
        });
    };
    let link = RedisLink::new(url.expose(), node.clone(), config.cluster.request_timeout)
        .map_err(|e| StartError::Redis(e.to_string()))?;
    let registry = Arc::new(RedisRegistry::new(link.clone(), sockets.clone(), grace));
    let local = local_broker(registry.clone());
    let broker = Arc::new(RedisBroker::new(
        local.clone(),
        link.clone(),
        registry.clone(),
    ));
    let sessions = Arc::new(RedisSessions::new(link.clone(), config.session.clone()));
    let engines = Engines {
        store: store.clone(),
        sessions: sessions.clone(),
        registry: registry.clone(),
        presence: Arc::new(RedisPresence::new(link.clone(), sockets.clone())),
        broker: broker.clone() as Arc<dyn Broker>,
        local,
        sockets,
        node,
        redis: Some(link.health()),
    };
    let node_timeout = config.cluster.node_timeout;
    let hub = Hub::new(config, clock, engines);
    let rejoin = Arc::new(Rejoin::new(
        Arc::downgrade(&hub),
        link.clone(),
        registry,
        sessions,
        node_timeout,
    ));
    // The rejoin holds the hub weakly: no cycle through the link.
    link.on_resync(rejoin.clone() as Arc<dyn Resync>);
    Ok(Built {
        hub,
        store,
        cluster: Some(ClusterParts {
            link,
            broker,
            rejoin,
        }),
    })
}
