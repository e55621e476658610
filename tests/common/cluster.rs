//! Cluster test fixtures: a private redis-server on a spare port (a test
//! may stop and start it), a fresh PostgreSQL database per test, and
//! Herald nodes joined to both.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use herald::clock::ManualClock;
use herald::config::FileConfig;

use super::TestServer;

/// A redis-server of the test's own.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Self { port, child: None };
        r.resume().await;
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port (empty: it keeps nothing on disk).
    pub async fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/setup.sh)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills it (as a crash or an outage would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh database on the local PostgreSQL, named for the test.
pub async fn fresh_database() -> String {
    let base = std::env::var("HERALD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    herald::store::testing::fresh_database(&base)
        .await
        .expect("PostgreSQL is reachable (scripts/setup.sh starts it)")
}

/// Starts a node of the cluster on `redis` and `database`.
pub async fn node(
    name: &str,
    redis: &Redis,
    database: &str,
    clock: Arc<ManualClock>,
    dir: &Path,
    tweak: impl FnOnce(&mut FileConfig),
) -> TestServer {
    let (url, database, name) = (redis.url(), database.to_string(), name.to_string());
    let s = TestServer::start_with_clock(dir, clock, move |f| {
        f.cluster.redis_url = Some(url);
        f.database_url = Some(database);
        f.cluster.node_id = Some(name);
        f.cluster.node_timeout = Some("3s".into());
        tweak(f);
    })
    .await;
    // Joined once Redis answers and the node has rewritten itself.
    for _ in 0..200 {
        if s.hub.redis_up() {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("node {} did not join the cluster", s.hub.node_id());
}
