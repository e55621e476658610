//! The server under test and how clients reach it: the loopback address of
//! its API, the addresses its clients connect to (the same one for a single
//! server; other nodes of a cluster, round robin, to measure cross-node
//! delivery), the API key, the JWT secret (tokens are minted here, HS256,
//! claims `userId`/`sessionId`/`role`/`iat`/`exp`, and `rooms` when the
//! scenario's clients join study rooms), and the 127.0.0.x source
//! addresses client sockets are spread over so ephemeral ports never run out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use jsonwebtoken::{encode, EncodingKey, Header};
use serde::Serialize;
use tokio::net::{TcpSocket, TcpStream};

pub struct Target {
    /// Where the backend API calls go.
    pub addr: SocketAddr,
    /// Where client `i` connects: `clients[i % len]`.
    clients: Vec<SocketAddr>,
    pub api_key: String,
    key: EncodingKey,
    sources: Vec<Ipv4Addr>,
    /// Whether the handshake's query carries the token too.
    query_token: bool,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Claims<'a> {
    userId: &'a str,
    sessionId: &'a str,
    role: &'a str,
    iat: u64,
    exp: u64,
    /// The study rooms the user may join (patterns); absent when empty.
    #[serde(skip_serializing_if = "<[&str]>::is_empty")]
    rooms: &'a [&'a str],
}

impl Target {
    /// Every address must be on the loopback range: this tool never sends
    /// elsewhere. No `clients`: the clients connect to `addr`.
    pub fn new(
        addr: SocketAddr,
        clients: Vec<SocketAddr>,
        api_key: String,
        secret: &str,
        sources: usize,
        query_token: bool,
    ) -> Result<Self, String> {
        let clients = if clients.is_empty() {
            vec![addr]
        } else {
            clients
        };
        if let Some(far) = std::iter::once(&addr)
            .chain(&clients)
            .find(|a| !a.ip().is_loopback())
        {
            return Err(format!("{far} is not a loopback address; refusing"));
        }
        let sources = (0..sources.max(1))
            .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i as u8))
            .collect();
        Ok(Target {
            addr,
            clients,
            api_key,
            key: EncodingKey::from_secret(secret.as_bytes()),
            sources,
            query_token,
        })
    }

    /// The handshake's path and query for `transport`, with `token` in the
    /// query unless `--no-query-token`.
    pub fn handshake_path(&self, transport: &str, token: &str) -> String {
        let mut path = format!("/socket.io/?EIO=4&transport={transport}");
        if self.query_token {
            path.push_str("&token=");
            path.push_str(token);
        }
        path
    }

    /// A JWT for `user_id` in role `role`, valid for an hour, opening the
    /// study rooms `rooms` matches (none when empty).
    pub fn token(&self, user_id: &str, session_id: &str, role: &str, rooms: &[&str]) -> String {
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            userId: user_id,
            sessionId: session_id,
            role,
            iat,
            exp: iat + 3600,
            rooms,
        };
        encode(&Header::default(), &claims, &self.key).expect("HS256 signing cannot fail")
    }

    /// The server address client `index` connects to.
    pub fn client_addr(&self, index: usize) -> SocketAddr {
        self.clients[index % self.clients.len()]
    }

    /// Opens a TCP connection to `peer` from the `index`-th source address
    /// (round robin).
    pub async fn connect(&self, peer: SocketAddr, index: usize) -> std::io::Result<TcpStream> {
        let source = self.sources[index % self.sources.len()];
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
        let stream = socket.connect(peer).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}
