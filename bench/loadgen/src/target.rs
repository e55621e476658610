//! The server under test and how clients reach it: its loopback address, the
//! API key, the JWT secret (tokens are minted here, HS256, claims
//! `userId`/`sessionId`/`role`/`iat`/`exp`), and the 127.0.0.x source
//! addresses client sockets are spread over so ephemeral ports never run out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use jsonwebtoken::{encode, EncodingKey, Header};
use serde::Serialize;
use tokio::net::{TcpSocket, TcpStream};

pub struct Target {
    pub addr: SocketAddr,
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
}

impl Target {
    /// `addr` must be on the loopback range: this tool never sends elsewhere.
    pub fn new(
        addr: SocketAddr,
        api_key: String,
        secret: &str,
        sources: usize,
        query_token: bool,
    ) -> Result<Self, String> {
        if !addr.ip().is_loopback() {
            return Err(format!("{addr} is not a loopback address; refusing"));
        }
        let sources = (0..sources.max(1))
            .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i as u8))
            .collect();
        Ok(Target {
            addr,
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

    /// A JWT for `user_id` in role `role`, valid for an hour.
    pub fn token(&self, user_id: &str, session_id: &str, role: &str) -> String {
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
        };
        encode(&Header::default(), &claims, &self.key).expect("HS256 signing cannot fail")
    }

    /// Opens a TCP connection from the `index`-th source address (round robin).
    pub async fn connect(&self, index: usize) -> std::io::Result<TcpStream> {
        let source = self.sources[index % self.sources.len()];
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
        let stream = socket.connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}
