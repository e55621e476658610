//! The client side of Engine.IO v4 / Socket.IO v5, as text packets, shared by
//! the websocket and long-polling transports: answers the open packet with a
//! CONNECT carrying the JWT, pings with pongs, records `connected`, fan-out
//! events, notifications and study-room frames on the board, acknowledges
//! notifications (`42N["acknowledge_notification",…]`, answered by
//! `43N[…]`), and emits the events the scenario orders.

use std::sync::atomic::Ordering::Relaxed;
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
    /// `room_presence` frames this socket has had.
    presence_frames: usize,
    /// Whether a `room_presence` has listed the full room yet.
    saw_full_room: bool,
}

impl Session {
    pub fn new(user_id: String, token: String, board: Arc<Board>) -> Self {
        Session {
            user_id,
            token,
            board,
            connected: false,
            next_ack: 1,
            presence_frames: 0,
            saw_full_room: false,
        }
    }

    /// The packet that emits `event` with `data`, with an ack id when the
    /// answer is wanted (it is counted in `acks_ok` or `acks_refused`).
    pub fn emit(&mut self, event: &str, data: &Value, answer: bool) -> String {
        let body = serde_json::json!([event, data]);
        if answer {
            let ack = self.next_ack;
            self.next_ack += 1;
            format!("42{ack}{body}")
        } else {
            format!("42{body}")
        }
    }

    /// Handles one Engine.IO packet; replies are pushed onto `out`.
    pub fn on_packet(&mut self, packet: &str, out: &mut Vec<String>) -> Flow {
        let mut chars = packet.chars();
        match chars.next() {
            Some('0') => out.push(format!("40{{\"token\":\"{}\"}}", self.token)),
            Some('1') => return Flow::Close,
            Some('2') => {
                self.board.pings.fetch_add(1, Relaxed);
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
        // A room of N typing sends each socket N-1 of these a second: counted
        // without parsing, so that the generator costs far less than the
        // server (serde_json writes `"isTyping":true` with no space).
        if json.starts_with("[\"typing\"") {
            let room = &self.board.room;
            if json.contains("\"isTyping\":true") {
                room.typing_true.fetch_add(1, Relaxed);
            } else {
                self.board.bump(&room.typing_false);
            }
            return;
        }
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
            "room_presence" => self.on_room_presence(data, now),
            "error" => self.board.error(format!("error event: {data}")),
            _ => {
                if let (Some(sent), Some(r)) = (sent, data.get("r").and_then(Value::as_u64)) {
                    self.board.round_receipt(r as usize, sent, now);
                }
            }
        }
    }

    fn on_room_presence(&mut self, data: &Value, now: u64) {
        let room = &self.board.room;
        self.presence_frames += 1;
        room.presence_most.fetch_max(self.presence_frames, Relaxed);
        room.presence_last_ns.fetch_max(now, Relaxed);
        let members = data
            .get("members")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let want = room.want_members.load(Relaxed);
        if !self.saw_full_room && want > 0 && members >= want {
            self.saw_full_room = true;
            self.board.bump(&room.presence_full);
        }
        self.board.bump(&room.presence);
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
