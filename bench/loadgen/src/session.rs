//! The client side of Engine.IO v4 / Socket.IO v5, as text packets, shared by
//! the websocket and long-polling transports: answers the open packet with a
//! CONNECT carrying the JWT, pings with pongs, records `connected`, fan-out
//! events and notifications on the board, and acknowledges notifications
//! (`42N["acknowledge_notification",…]`, answered by `43N[…]`).

use std::sync::Arc;

use serde_json::Value;

use crate::board::Board;
use crate::clock::now_ns;

/// What the transport should do after a packet.
#[derive(Debug, PartialEq)]
pub enum Flow {
    Continue,
    Close,
}

pub struct Session {
    pub user_id: String,
    pub token: String,
    board: Arc<Board>,
    pub connected: bool,
    next_ack: u64,
}

impl Session {
    pub fn new(user_id: String, token: String, board: Arc<Board>) -> Self {
        Session {
            user_id,
            token,
            board,
            connected: false,
            next_ack: 1,
        }
    }

    /// Handles one Engine.IO packet; replies are pushed onto `out`.
    pub fn on_packet(&mut self, packet: &str, out: &mut Vec<String>) -> Flow {
        let mut chars = packet.chars();
        match chars.next() {
            Some('0') => out.push(format!("40{{\"token\":\"{}\"}}", self.token)),
            Some('1') => return Flow::Close,
            Some('2') => {
                self.board
                    .pings
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                out.push(format!("3{}", &packet[1..]));
            }
            Some('4') => return self.on_socketio(&packet[1..], out),
            _ => {}
        }
        Flow::Continue
    }

    fn on_socketio(&mut self, packet: &str, out: &mut Vec<String>) -> Flow {
        let (kind, rest) = packet.split_at(packet.len().min(1));
        match kind {
            "0" => Flow::Continue, // CONNECT accepted; `connected` follows
            "1" => Flow::Close,
            "2" => {
                let json = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                self.on_event(json, out);
                Flow::Continue
            }
            "3" => {
                let json = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                self.on_ack(json);
                Flow::Continue
            }
            "4" => {
                let message = serde_json::from_str::<Value>(rest)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| rest.to_owned());
                self.board.error(format!("connect_error: {message}"));
                Flow::Close
            }
            _ => Flow::Continue,
        }
    }

    fn on_event(&mut self, json: &str, out: &mut Vec<String>) {
        let now = now_ns();
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(json) else {
            self.board.error(format!("unparsable event: {json:.120}"));
            return;
        };
        let name = items.first().and_then(Value::as_str).unwrap_or("");
        let data = items.get(1).unwrap_or(&Value::Null);
        let sent = data.get("t").and_then(Value::as_u64);
        match name {
            "connected" => {
                if !self.connected {
                    self.connected = true;
                    self.board.bump(&self.board.connected);
                }
            }
            "critical_notification" => {
                if let Some(sent) = sent {
                    self.board.latency(sent, now);
                }
                self.board.bump(&self.board.notifications);
                if let Some(id) = data.get("id").and_then(Value::as_str) {
                    let ack = self.next_ack;
                    self.next_ack += 1;
                    let body = serde_json::json!(["acknowledge_notification",
                        { "notificationId": id, "userId": self.user_id }]);
                    out.push(format!("42{ack}{body}"));
                }
            }
            "error" => self.board.error(format!("error event: {data}")),
            _ => {
                if let (Some(sent), Some(r)) = (sent, data.get("r").and_then(Value::as_u64)) {
                    self.board.round_receipt(r as usize, sent, now);
                }
            }
        }
    }

    fn on_ack(&mut self, json: &str) {
        let ok = serde_json::from_str::<Value>(json)
            .ok()
            .and_then(|v| v.get(0).and_then(|a| a.get("ok")).and_then(Value::as_bool))
            .unwrap_or(false);
        if ok {
            self.board.bump(&self.board.acks_ok);
        } else {
            self.board.error(format!("refused ack: {json:.200}"));
            self.board.bump(&self.board.acks_refused);
        }
    }
}
