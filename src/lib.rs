//! Herald: a real-time notification and session-monitoring server speaking
//! Socket.IO. This file only assembles the parts from a [`Config`].

pub mod admission;
pub mod api;
pub mod audit;
pub mod auth;
pub mod authenticated;
pub mod backlog;
pub mod broker;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod deadlines;
pub mod escalation;
pub mod guard;
pub mod hub;
pub mod keepalive;
pub mod notification;
pub mod ops;
pub mod origin;
pub mod outbox;
pub mod presence;
pub mod prometheus;
pub mod protocol;
pub mod rate;
pub mod registry;
pub mod rejoin;
pub mod report;
pub mod requests;
pub mod routes;
pub mod serve;
pub mod session;
pub mod socket;
pub mod sockets;
pub mod store;
pub mod throttle;
pub mod trail;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::util::{MapRequest, MapResponse};
use tower::{Layer, Service};

pub use config::Config;

use crate::broker::{Broker, LocalBroker, RedisBroker};
use crate::clock::{Millis, SharedClock, SystemClock};
use crate::cluster::{RedisLink, Resync};
use crate::guard::Guard;
use crate::hub::{Engines, Hub};
use crate::presence::{MemoryPresence, RedisPresence};
use crate::registry::{MemoryRegistry, RedisRegistry, Registry};
use crate::rejoin::Rejoin;
use crate::session::{MemorySessions, RedisSessions, SessionClocks};
use crate::sockets::Sockets;
use crate::store::{Metered, PostgresStore, SqliteStore, Store, StoreError};

/// How often retention is enforced.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The hub and, in a cluster, what keeps it joined.
pub struct Built {
    pub hub: Arc<Hub>,
    cluster: Option<ClusterParts>,
}

struct ClusterParts {
    link: Arc<RedisLink>,
    broker: Arc<RedisBroker>,
    rejoin: Arc<Rejoin>,
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
        Arc::new(LocalBroker::new(
            node.clone(),
            sockets.clone(),
            registry,
            store.clone(),
            clock.clone(),
            patience,
            max_queued,
        ))
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
            store,
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
        store,
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
        cluster: Some(ClusterParts {
            link,
            broker,
            rejoin,
        }),
    })
}

/// The whole HTTP application: Socket.IO, the API and the ops endpoints
/// (each request of those two observed: request id, access line, metrics),
/// behind the origin check and CORS.
///
/// The layers wrap the router as one service. `Router::layer` would wrap
/// every route and the fallback instead, and axum clones a route's whole
/// service stack (the CORS settings, the Socket.IO service) for every
/// request; `from_fn` middleware would box and clone the stack under it
/// (the origin check is a [`Guard`] for that reason).
pub fn app(
    hub: Arc<Hub>,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
       + Clone
       + Send
       + Sync
       + 'static {
    let origins = Arc::new(
        origin::Origins::new(&hub.config().cors_origins)
            .with_server_names(&hub.config().http.server_names)
            .logging_with(hub.clock()),
    );
    let io_layer = socket::layer(hub.clone());
    let router = requests::Observed::new(
        Router::new()
            .merge(api::router(hub.clone()))
            .merge(web::router(hub.clone()))
            .merge(ops::router(hub)),
    );
    let io = MapResponse::new(io_layer.layer(router), |r: http::Response<_>| {
        r.map(Body::new)
    });
    let owned = MapRequest::new(io, socket::own_request);
    let cors = origins.cors_layer().layer(owned);
    Guard::new(cors, move |req: &Request| origin::refusal(&origins, req))
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    task: JoinHandle<std::io::Result<()>>,
    /// The scheduler, the purger and the cluster tasks.
    background: Vec<tokio::task::AbortHandle>,
}

impl Running {
    /// Stops everything at once with no goodbye, as `kill -9` would: no
    /// socket is closed and the cluster is not told (tests of node loss).
    pub fn crash(self) {
        for task in &self.background {
            task.abort();
        }
        self.task.abort();
    }

    /// Waits for the server to finish (after its shutdown signal).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid REDIS_URL: {0}")]
    Redis(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Starts Herald with the system clock; it stops when `shutdown` resolves:
/// sockets are closed cleanly, in-flight API calls finish, the store is flushed.
pub async fn start(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    start_with_clock(config, Arc::new(SystemClock), shutdown).await
}

pub async fn start_with_clock(
    config: Config,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let addr = format!("{}:{}", config.host, config.port);
    let shutdown_timeout = config.shutdown_timeout;
    let tls = config.tls.as_ref().map(config::Tls::acceptor);
    let (http, limits) = (config.http.clone(), config.limits);
    let Built { hub, cluster } = build_hub(config, clock.clone()).await?;
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    prometheus::handle();

    let mut background = vec![tokio::spawn(hub.clone().run_scheduler())];
    let rejoin = cluster.map(|c| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        background.push(tokio::spawn(c.link.clone().supervise(tx)));
        background.push(tokio::spawn(c.broker.serve(rx)));
        background.push(tokio::spawn(c.rejoin.clone().beat_forever()));
        c.rejoin
    });
    let purger = {
        let hub = hub.clone();
        tokio::spawn(async move {
            loop {
                hub.purge().await;
                tokio::time::sleep(PURGE_EVERY).await;
            }
        })
    };

    background.push(purger);
    let handles: Vec<tokio::task::AbortHandle> =
        background.iter().map(|t| t.abort_handle()).collect();
    let app = app(hub.clone());
    let sockets = hub.clone();
    let policy = serve::Policy {
        admission: admission::Admission::new(
            limits.max_connections,
            Arc::new(move || sockets.local_sockets()),
            clock,
        ),
        header_timeout: http.header_timeout,
        idle_timeout: http.idle_timeout,
    };
    let closing = hub.clone();
    let task = tokio::spawn(async move {
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let sockets = closing.clone();
        let graceful = async move {
            shutdown.await;
            tracing::info!("shutting down: closing sockets");
            sockets.shutdown_sockets().await;
            let _ = stopped_tx.send(());
        };
        let server = serve::serve(listener, app, policy, graceful, tls);
        let result = tokio::select! {
            r = server => r,
            _ = async {
                let _ = stopped_rx.await;
                tokio::time::sleep(shutdown_timeout).await;
            } => {
                tracing::warn!("in-flight requests did not finish in time");
                Ok(())
            }
        };
        if let Some(rejoin) = &rejoin {
            rejoin.leave().await;
        }
        for task in background {
            task.abort();
        }
        closing.close_store().await;
        tracing::info!("stopped");
        result
    });
    Ok(Running {
        addr: local,
        hub,
        task,
        background: handles,
    })
}
