//! Test harness: a real Herald on a random port with a manual clock, an HTTP
//! client for the API, and a minimal raw Engine.IO v4 / Socket.IO v5
//! websocket client (the real npm and Python clients live in e2e/).

#![allow(dead_code)]

pub mod cluster;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use herald::auth::Signer;
use herald::clock::{Clock, ManualClock, SystemClock};
use herald::config::FileConfig;
use herald::hub::Hub;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "integration-test-secret-0123456789";
pub const API_KEY: &str = "integration-test-api-key-0123456789";

pub struct TestServer {
    pub base: String,
    pub ws: String,
    pub hub: Arc<Hub>,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<herald::Running>,
    _dir: Option<tempfile::TempDir>,
}

fn base_config(dir: &Path, tweak: impl FnOnce(&mut FileConfig)) -> herald::Config {
    let mut f = FileConfig {
        host: Some("127.0.0.1".into()),
        port: Some(0),
        data_dir: Some(dir.to_path_buf()),
        api_keys: Some(vec![API_KEY.into()]),
        ..Default::default()
    };
    f.jwt.secret = Some(SECRET.into());
    tweak(&mut f);
    f.resolve().expect("test config")
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut FileConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Self::start_in(dir.path(), tweak).await;
        s._dir = Some(dir);
        s
    }

    /// Starts on an existing data directory (restart tests).
    pub async fn start_in(dir: &Path, tweak: impl FnOnce(&mut FileConfig)) -> Self {
        // Whole seconds, as JWT times are: a token's exp is exactly now + ttl.
        let clock = Arc::new(ManualClock::new(SystemClock.now_ms() / 1000 * 1000));
        Self::start_with_clock(dir, clock, tweak).await
    }

    /// Starts with a clock of the caller's (nodes of one cluster test may share one).
    pub async fn start_with_clock(
        dir: &Path,
        clock: Arc<ManualClock>,
        tweak: impl FnOnce(&mut FileConfig),
    ) -> Self {
        let config = base_config(dir, tweak);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = herald::start_with_clock(config, clock.clone(), async move {
            let _ = rx.await;
        })
        .await
        .expect("server starts");
        let addr = running.addr;
        Self {
            base: format!("http://{addr}"),
            ws: format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
            hub: running.hub.clone(),
            clock,
            http: reqwest::Client::new(),
            stop: Some(tx),
            running: Some(running),
            _dir: None,
        }
    }

    /// Ends the node with no goodbye (`kill -9`).
    pub fn crash(mut self) {
        if let Some(r) = self.running.take() {
            r.crash();
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(r) = self.running.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), r.wait()).await;
        }
    }

    pub fn token(&self, user: &str, session: &str, role: &str, ttl_ms: i64) -> String {
        let config = base_config(Path::new("/nonexistent"), |_| {});
        Signer::new(&config.jwt).sign(user, session, role, self.clock.now_ms(), ttl_ms)
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(API_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.api(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.api(reqwest::Method::GET, path, None).await
    }

    /// Connects a raw client; Err is the `connect_error` message.
    pub async fn connect(&self, token: &str) -> Result<EioClient, String> {
        EioClient::connect(&self.ws, Some(token)).await
    }

    /// Connects and consumes the `connected` event.
    pub async fn connect_ok(&self, token: &str) -> (EioClient, Value) {
        let mut c = self.connect(token).await.expect("connects");
        let (name, args) = c.next_event().await.expect("first event");
        assert_eq!(name, "connected", "first event must be connected");
        (c, args[0].clone())
    }
}

/// What a raw client received.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Event(String, Vec<Value>),
    Ack(i64, Vec<Value>),
    Disconnect,
    Closed,
}

pub struct EioClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: i64,
}

const WAIT: Duration = Duration::from_secs(5);

impl EioClient {
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Self, String> {
        Self::connect_sending(url, token, &[]).await
    }

    /// Connects, sending `early` packets the moment the CONNECT reply arrives,
    /// before reading anything else (as socket.io-client flushes the emits it
    /// buffered while connecting).
    pub async fn connect_sending(
        url: &str,
        token: Option<&str>,
        early: &[&str],
    ) -> Result<Self, String> {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| e.to_string())?;
        Self::handshake(ws, token, early).await
    }

    /// Connects with a receive buffer of a few KiB, so that a client that
    /// stops reading fills the server's send buffer after a few MiB
    /// rather than the tens the kernel would otherwise take on loopback.
    pub async fn connect_small_buffer(url: &str, token: &str) -> Result<Self, String> {
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        tcp.set_recv_buffer_size(4096).unwrap();
        let tcp = tcp.connect(addr).await.map_err(|e| e.to_string())?;
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
            .await
            .map_err(|e| e.to_string())?;
        Self::handshake(ws, Some(token), &[]).await
    }

    async fn handshake(
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        token: Option<&str>,
        early: &[&str],
    ) -> Result<Self, String> {
        let mut c = Self { ws, next_ack: 0 };
        let open = c.raw().await.ok_or("no open packet")?;
        assert!(open.starts_with('0'), "engine.io open: {open}");
        let auth = match token {
            Some(t) => format!("40{}", serde_json::json!({ "token": t })),
            None => "40".to_string(),
        };
        c.ws.send(Message::text(auth))
            .await
            .map_err(|e| e.to_string())?;
        let reply = c.raw().await.ok_or("no connect reply")?;
        if let Some(rest) = reply.strip_prefix("44") {
            let v: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
            return Err(v["message"].as_str().unwrap_or_default().to_string());
        }
        assert!(reply.starts_with("40"), "connect reply: {reply}");
        for p in early {
            c.ws.send(Message::text(p.to_string()))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(c)
    }

    /// The next Socket.IO text packet, answering pings.
    async fn raw(&mut self) -> Option<String> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Text(t) => {
                    let t = t.to_string();
                    if t == "2" {
                        let _ = self.ws.send(Message::text("3")).await;
                        continue;
                    }
                    return Some(t);
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    pub async fn next(&mut self) -> Incoming {
        let Some(p) = self.raw().await else {
            return Incoming::Closed;
        };
        if let Some(rest) = p.strip_prefix("42") {
            let v: Vec<Value> = serde_json::from_str(rest).expect("event array");
            let name = v[0].as_str().unwrap_or_default().to_string();
            return Incoming::Event(name, v[1..].to_vec());
        }
        if let Some(rest) = p.strip_prefix("43") {
            let split = rest.find('[').unwrap_or(rest.len());
            let id = rest[..split].parse().unwrap_or(-1);
            let args: Vec<Value> = serde_json::from_str(&rest[split..]).unwrap_or_default();
            return Incoming::Ack(id, args);
        }
        if p.starts_with("41") {
            return Incoming::Disconnect;
        }
        if p.starts_with('1') {
            return Incoming::Closed;
        }
        panic!("unexpected packet {p}");
    }

    pub async fn next_event(&mut self) -> Option<(String, Vec<Value>)> {
        match self.next().await {
            Incoming::Event(n, a) => Some((n, a)),
            _ => None,
        }
    }

    /// The next event named `name`, skipping others.
    pub async fn expect_event(&mut self, name: &str) -> Value {
        loop {
            match self.next().await {
                Incoming::Event(n, a) if n == name => {
                    return a.into_iter().next().unwrap_or(Value::Null)
                }
                Incoming::Event(..) | Incoming::Ack(..) => continue,
                other => panic!("wanted {name}, got {other:?}"),
            }
        }
    }

    /// True if nothing but pings arrives within `ms`.
    pub async fn silent_for(&mut self, ms: u64) -> bool {
        tokio::time::timeout(Duration::from_millis(ms), self.raw())
            .await
            .is_err()
    }

    pub async fn emit(&mut self, event: &str, data: Option<Value>) {
        let mut arr = vec![Value::String(event.into())];
        arr.extend(data);
        self.ws
            .send(Message::text(format!("42{}", Value::Array(arr))))
            .await
            .unwrap();
    }

    /// Emits with an acknowledgement callback and returns its first argument.
    pub async fn call(&mut self, event: &str, data: Option<Value>) -> Value {
        self.call_seeing(event, data).await.1
    }

    /// [`EioClient::call`], with the names of the events that arrived before
    /// the acknowledgement: what the server sent before it took this event
    /// (a positive signal that nothing else was sent by then).
    pub async fn call_seeing(&mut self, event: &str, data: Option<Value>) -> (Vec<String>, Value) {
        let mut seen = Vec::new();
        self.next_ack += 1;
        let id = self.next_ack;
        let mut arr = vec![Value::String(event.into())];
        arr.extend(data);
        self.ws
            .send(Message::text(format!("42{id}{}", Value::Array(arr))))
            .await
            .unwrap();
        loop {
            match self.next().await {
                Incoming::Ack(got, args) if got == id => {
                    return (seen, args.into_iter().next().unwrap_or(Value::Null))
                }
                Incoming::Event(name, _) => seen.push(name),
                other => panic!("wanted ack {id}, got {other:?}"),
            }
        }
    }
}

impl TestServer {
    /// Connects over HTTP long-polling, as a polling client does (open,
    /// CONNECT with `auth.token`, then the poll that brings the reply).
    /// Ok is the Engine.IO session id; Err is the `connect_error` message.
    pub async fn connect_polling(&self, token: &str) -> Result<String, String> {
        let url = format!("{}/socket.io/?EIO=4&transport=polling", self.base);
        let open = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let open = open.text().await.map_err(|e| e.to_string())?;
        let open: Value = serde_json::from_str(open.trim_start_matches('0'))
            .map_err(|_| format!("engine.io open: {open}"))?;
        let sid = open["sid"].as_str().ok_or("no sid")?.to_string();
        let url = format!("{url}&sid={sid}");
        let connect = format!("40{}", serde_json::json!({ "token": token }));
        let posted = self.http.post(&url).body(connect).send().await;
        posted.map_err(|e| e.to_string())?;
        // Packets of one poll are separated by the record separator; an
        // Engine.IO ping may come before the reply.
        let mut first = None;
        for _ in 0..5 {
            let reply = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let reply = reply.text().await.map_err(|e| e.to_string())?;
            first = reply
                .split('\u{1e}')
                .find(|p| p.starts_with('4'))
                .map(str::to_string);
            if first.is_some() {
                break;
            }
        }
        let first = first.ok_or("no connect reply")?;
        if let Some(rest) = first.strip_prefix("44") {
            let v: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
            return Err(v["message"].as_str().unwrap_or_default().to_string());
        }
        if !first.starts_with("40") {
            return Err(format!("connect reply: {first}"));
        }
        Ok(sid)
    }
}

/// Opens `n` polling connects with one token at once; the number accepted
/// and the distinct refusal messages.
pub async fn polling_storm(nodes: &[&TestServer], token: &str, n: usize) -> (usize, Vec<String>) {
    let tries = (0..n).map(|i| nodes[i % nodes.len()].connect_polling(token));
    let results = futures::future::join_all(tries).await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let mut refusals: Vec<String> = results.into_iter().filter_map(|r| r.err()).collect();
    refusals.sort();
    refusals.dedup();
    (accepted, refusals)
}
