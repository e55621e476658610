//! The link to Redis: one multiplexed command connection shared by every
//! engine, each command bounded by the cluster's request timeout; one
//! subscription to this node's channel and the everyone channel; health as
//! `/readyz` reports it ([`super::Health`]); and, after every
//! (re)connection, what was registered to be redone then ([`Resync`]: the
//! rejoin of the cluster, beside where the Hub is built).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, RedisResult};
use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, Notify};

use super::{Health, Keys};

/// Something to redo after Redis comes back: Redis may have lost what this
/// node wrote, or other nodes may have taken this one for dead.
#[async_trait]
pub trait Resync: Send + Sync + 'static {
    async fn resync(&self);
}

/// Why a Redis call did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("redis is unreachable")]
    Down,
    #[error("redis did not answer in time")]
    Timeout,
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
}

pub struct RedisLink {
    client: Client,
    conn: RwLock<Option<ConnectionManager>>,
    up: Health,
    /// Up, and this connection's rejoin is done.
    joined: AtomicBool,
    keys: Keys,
    node: Arc<str>,
    timeout: Duration,
    resyncs: Mutex<Vec<Arc<dyn Resync>>>,
    /// A command failed: the supervisor reconnects and rejoins.
    trouble: Notify,
}

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl RedisLink {
    /// Prepares the link (nothing is connected until [`RedisLink::supervise`] runs).
    pub fn new(url: &str, node: Arc<str>, timeout: Duration) -> Result<Arc<Self>, RedisError> {
        Ok(Arc::new(Self {
            client: Client::open(url)?,
            conn: RwLock::new(None),
            up: Health::default(),
            joined: AtomicBool::new(false),
            keys: Keys::default(),
            node,
            timeout,
            resyncs: Mutex::new(Vec::new()),
            trouble: Notify::new(),
        }))
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn node(&self) -> &Arc<str> {
        &self.node
    }

    /// How long a node waits for Redis or for other nodes.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True while the subscription is up and commands succeed.
    pub fn is_up(&self) -> bool {
        self.up.is_up()
    }

    /// A handle on [`RedisLink::is_up`] for those who only watch it.
    pub fn health(&self) -> Health {
        self.up.clone()
    }

    /// True once the rejoin after the current connection is done (and the
    /// link still up): until then a heartbeat finding this node missing is
    /// the rejoin's business, not a sign that the node was taken for dead.
    pub fn is_joined(&self) -> bool {
        self.joined.load(Ordering::SeqCst) && self.is_up()
    }

    /// Adds something to redo after each (re)connection.
    pub fn on_resync(&self, r: Arc<dyn Resync>) {
        self.resyncs.lock().push(r);
    }

    /// Runs Redis commands on the shared connection, bounded by the request
    /// timeout. A failure marks the link down; the supervisor reconnects.
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, LinkError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self.conn.read().clone();
        let Some(conn) = conn else {
            return Err(LinkError::Down);
        };
        if !self.is_up() {
            return Err(LinkError::Down);
        }
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(self.timeout, f(conn)).await;
        crate::observe::prometheus::redis_call(started.elapsed(), !matches!(answer, Ok(Ok(_))));
        let result = match answer {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if matches!(e.kind(), ::redis::ErrorKind::Server(_)) => {
                // The command itself was refused (a script error): Redis is fine.
                tracing::error!(error = %e, "redis refused a command");
                return Err(LinkError::Redis(e));
            }
            Ok(Err(e)) => Err(LinkError::Redis(e)),
            Err(_) => Err(LinkError::Timeout),
        };
        if result.is_err() {
            if self.up.set(false) {
                tracing::warn!(
                    "redis stopped answering; serving this node's sockets alone until it is back"
                );
            }
            self.trouble.notify_one();
        }
        result
    }

    /// Runs one command, as [`RedisLink::run`] does.
    pub async fn query<T: ::redis::FromRedisValue>(
        &self,
        cmd: &mut ::redis::Cmd,
    ) -> Result<T, LinkError> {
        let cmd = cmd.clone();
        self.run(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    async fn connect(&self) -> Result<::redis::aio::PubSub, RedisError> {
        let timeout = Some(self.timeout.max(Duration::from_millis(200)));
        let missing = self.conn.read().is_none();
        if missing {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout)
                .set_number_of_retries(1)
                .set_max_delay(MAX_BACKOFF);
            let conn = self
                .client
                .get_connection_manager_with_config(config)
                .await?;
            *self.conn.write() = Some(conn);
        }
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub
            .subscribe(&[self.keys.node_channel(&self.node), self.keys.everyone()])
            .await?;
        // The command connection must answer too before the link counts as up.
        let conn = self.conn.read().clone();
        if let Some(mut conn) = conn {
            let _: String = ::redis::cmd("PING").query_async(&mut conn).await?;
        }
        Ok(pubsub)
    }

    async fn resync_all(&self) {
        let resyncs: Vec<_> = self.resyncs.lock().clone();
        for r in resyncs {
            r.resync().await;
        }
    }

    /// Keeps the link for the life of the node: connects, subscribes,
    /// rejoins, passes every message to `inbox`, and on any loss of Redis
    /// reconnects with a backoff (from 100 ms up to a second), so a node
    /// rejoins well within the cluster's node timeout.
    pub async fn supervise(self: Arc<Self>, inbox: mpsc::UnboundedSender<Vec<u8>>) {
        let mut backoff = Duration::from_millis(100);
        let mut warned = false;
        loop {
            match tokio::time::timeout(self.timeout.max(Duration::from_secs(1)), self.connect())
                .await
            {
                Ok(Ok(pubsub)) => {
                    backoff = Duration::from_millis(100);
                    warned = false;
                    self.up.set(true);
                    tracing::info!(node = %self.node, "connected to redis; rejoining the cluster");
                    self.resync_all().await;
                    self.joined.store(true, Ordering::SeqCst);
                    let mut messages = pubsub.into_on_message();
                    loop {
                        tokio::select! {
                            m = messages.next() => match m {
                                Some(m) => {
                                    let _ = inbox.send(m.get_payload_bytes().to_vec());
                                }
                                None => break,
                            },
                            _ = self.trouble.notified() => break,
                        }
                    }
                    if self.up.set(false) {
                        tracing::warn!(
                            "lost redis; serving this node's sockets alone until it is back"
                        );
                    }
                }
                Ok(Err(e)) if !warned => {
                    tracing::warn!(error = %e, "cannot reach redis; retrying");
                    warned = true;
                }
                Err(_) if !warned => {
                    tracing::warn!("redis did not answer in time; retrying");
                    warned = true;
                }
                _ => {}
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
