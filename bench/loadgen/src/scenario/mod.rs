//! What every scenario shares: the context (target, board, what to measure,
//! timeouts), spawning a fleet of clients with a bound on connections in
//! flight, and the backend API calls the scenarios make.

pub mod catchup;
pub mod fanout;
pub mod idle;
pub mod notify;
pub mod room;
pub mod storm;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::board::Board;
use crate::http::HttpConn;
use crate::measure::Probe;
use crate::session::Session;
use crate::target::Target;
use crate::{polling, ws};

pub type Outcome = Result<Value, String>;

#[derive(Clone, Copy, PartialEq)]
pub enum Transport {
    Websocket,
    Polling,
}

pub struct Ctx {
    pub target: Arc<Target>,
    pub board: Arc<Board>,
    pub probe: Probe,
    pub timeout: Duration,
}

impl Ctx {
    /// Starts clients `u{from}..u{to}` (at most `inflight` connecting at once)
    /// and waits until each is connected or has failed.
    pub async fn connect(
        &self,
        transport: Transport,
        from: usize,
        to: usize,
        inflight: usize,
    ) -> Result<(), String> {
        self.connect_opening(transport, from, to, inflight, &[])
            .await
    }

    /// As [`Ctx::connect`], with tokens whose `rooms` claim holds `rooms`.
    pub async fn connect_opening(
        &self,
        transport: Transport,
        from: usize,
        to: usize,
        inflight: usize,
        rooms: &[&str],
    ) -> Result<(), String> {
        let slots = Arc::new(Semaphore::new(inflight.max(1)));
        let board = &self.board;
        let mut spawned = from;
        for i in from..to {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
                _ = tokio::time::sleep(self.timeout) => return Err(format!("connect stalled at {i}")),
            };
            if Board::get(&board.failed) > 0 {
                break;
            }
            let user = format!("u{i}");
            let token = self
                .target
                .token(&user, &format!("s-{user}"), "bench", rooms);
            let session = Session::new(user, token, board.clone());
            let (target, board) = (self.target.clone(), board.clone());
            match transport {
                Transport::Websocket => {
                    tokio::spawn(ws::run(target, i, session, board, Some(permit)))
                }
                Transport::Polling => {
                    tokio::spawn(polling::run(target, i, session, board, Some(permit)))
                }
            };
            spawned = i + 1;
        }
        let settled = || Board::get(&board.connected) + Board::get(&board.failed) >= spawned;
        if !board.wait_until(self.timeout, settled).await {
            return Err(format!(
                "timed out: {} of {to} connected",
                Board::get(&board.connected)
            ));
        }
        match Board::get(&board.failed) {
            0 => Ok(()),
            n => Err(format!(
                "{n} connections failed; first error: {}",
                board.first_error().unwrap_or_default()
            )),
        }
    }

    /// Waits until `counter` reaches `want`, or fails with `what`.
    pub async fn wait_for(
        &self,
        counter: &AtomicUsize,
        want: usize,
        what: &str,
    ) -> Result<(), String> {
        if self
            .board
            .wait_until(self.timeout, || Board::get(counter) >= want)
            .await
        {
            Ok(())
        } else {
            Err(format!(
                "timed out waiting for {what}: {} of {want}; first error: {}",
                Board::get(counter),
                self.board.first_error().unwrap_or_default()
            ))
        }
    }

    /// Closes every client and gives the server a moment to notice.
    pub async fn disconnect_all(&self) {
        self.board.stop_all();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    pub fn api(&self) -> Api {
        Api {
            conn: HttpConn::new(self.target.clone(), self.target.addr, 0),
            key: self.target.api_key.clone(),
        }
    }
}

/// One keep-alive connection to the backend API.
pub struct Api {
    conn: HttpConn,
    key: String,
}

impl Api {
    /// POST JSON; returns the parsed answer when the status is 202.
    pub async fn post(&mut self, path: &str, body: &Value) -> Result<Value, String> {
        let text = body.to_string();
        let response = self
            .conn
            .request(
                "POST",
                path,
                Some(&self.key),
                Some(("application/json", &text)),
            )
            .await?;
        if response.status != 202 {
            return Err(format!(
                "POST {path}: HTTP {} {:.200}",
                response.status, response.body
            ));
        }
        serde_json::from_str(&response.body).map_err(|e| format!("POST {path}: {e}"))
    }

    /// `POST /api/v1/roles/{role}/events` with a fan-out round marker.
    pub async fn role_event(
        &mut self,
        role: &str,
        round: usize,
        sent_ns: u64,
    ) -> Result<u64, String> {
        self.broadcast(&format!("/api/v1/roles/{role}/events"), round, sent_ns)
            .await
    }

    /// `POST /api/v1/rooms/{room}/events` with a fan-out round marker.
    pub async fn room_event(
        &mut self,
        room: &str,
        round: usize,
        sent_ns: u64,
    ) -> Result<u64, String> {
        self.broadcast(&format!("/api/v1/rooms/{room}/events"), round, sent_ns)
            .await
    }

    /// An event `bench` carrying round `round` and its send time, posted
    /// to `path`; how many sockets it was delivered to.
    async fn broadcast(&mut self, path: &str, round: usize, sent_ns: u64) -> Result<u64, String> {
        let body = json!({ "event": "bench", "data": { "r": round, "t": sent_ns } });
        let answer = self.post(path, &body).await?;
        Ok(answer
            .get("deliveredTo")
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }
}
