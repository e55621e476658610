//! Starts a built Hub on its listener with its background tasks (the
//! scheduler, the hourly purge, the audit checkpoints, the cluster's link,
//! broker and heartbeat),
//! and stops it gracefully or, for tests of node loss, at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, Tls};
use crate::hub::Hub;
use crate::store::StoreError;
use crate::witness::Checkpointer;
use crate::{http::admission, http::serve, observe::prometheus};

use super::app::app;
use super::build::{build_hub, Built};

/// How often retention is enforced.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Longest a cluster node waits at start for Redis before it serves: a
/// node that served at once would take API calls in the moment before it
/// has joined, and a notification it stored then would reach only its own
/// sockets (none yet), the others' only at their next connection. With
/// Redis down the node starts anyway, after this wait, serving alone.
const JOIN_BEFORE_SERVING: Duration = Duration::from_secs(5);

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
    let tls = config.tls.as_ref().map(Tls::acceptor);
    let (http, limits) = (config.http.clone(), config.limits);
    let Built {
        hub,
        store,
        cluster,
    } = build_hub(config.clone(), clock.clone()).await?;
    let checkpointer = Arc::new(Checkpointer::new(&config, store, clock.clone()));
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

    // No upload is in flight yet: every staging file is a dead one.
    hub.sweep_files(crate::clock::Millis::MAX).await;
    let mut background = vec![tokio::spawn(hub.clone().run_scheduler())];
    let mut link = None;
    let rejoin = cluster.map(|c| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        background.push(tokio::spawn(c.link.clone().supervise(tx)));
        background.push(tokio::spawn(c.broker.serve(rx)));
        background.push(tokio::spawn(c.rejoin.clone().beat_forever()));
        link = Some(c.link);
        c.rejoin
    });
    if let Some(link) = link {
        wait_until_joined(&link, JOIN_BEFORE_SERVING).await;
    }
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
    if let Some(webhook) = checkpointer.webhook() {
        background.push(tokio::spawn(webhook.deliver_forever()));
    }
    background.push(tokio::spawn(checkpointer.run()));
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

/// Waits until `link` has connected and this node has rejoined, or
/// `bound` has passed. Connections arriving meanwhile wait in the
/// listener's queue: served late, never by a node outside the cluster.
async fn wait_until_joined(link: &crate::cluster::RedisLink, bound: Duration) {
    let deadline = tokio::time::Instant::now() + bound;
    while !link.is_joined() {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                "not joined to the cluster after {bound:?}; serving this node's sockets alone until redis answers"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
