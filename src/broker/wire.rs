//! What nodes say to each other over Redis pub/sub: a request (deliver a
//! message to a target's sockets here, or list them) and its reply (the
//! counts, or the sockets), as JSON.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Message, Target};
use crate::calls::CallNews;
use crate::clock::Millis;
use crate::connections::connection::ConnectionInfo;
use crate::notification::Notification;
use crate::presence::PresenceChange;

/// How deep a node reads a message (serde_json's recursion limit): one
/// nested deeper is dropped by the node that receives it.
pub const MAX_DECODED_DEPTH: usize = 127;

/// Levels a request adds around the notification body or event data it
/// carries: the request itself, then its `op`. The API keeps what it
/// accepts shallow enough for both (`api::depth`).
pub const ENVELOPE_DEPTH: usize = 2;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Wire {
    Request {
        id: u64,
        from: String,
        target: WireTarget,
        op: Op,
    },
    Reply {
        id: u64,
        from: String,
        body: ReplyBody,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum WireTarget {
    Users {
        users: Vec<String>,
    },
    Session {
        id: String,
        user: Option<String>,
    },
    Role {
        role: String,
    },
    Recipients {
        users: Vec<String>,
        roles: Vec<String>,
    },
    All,
    Room {
        room: String,
        except_user: Option<String>,
    },
    Socket {
        sid: String,
    },
    Call {
        call: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Notification {
        id: String,
        created_at: Millis,
        body: Map<String, Value>,
    },
    Event {
        name: String,
        data: Option<Value>,
    },
    Farewell {
        name: String,
        data: Value,
    },
    Disconnect,
    Presence {
        change: PresenceChange,
    },
    LeaveRoom {
        room: String,
    },
    RoomChanged,
    Call {
        news: CallNews,
    },
    Sockets,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum ReplyBody {
    Counts { counts: Vec<usize> },
    Sockets { sockets: Vec<ConnectionInfo> },
}

impl From<&Target> for WireTarget {
    fn from(t: &Target) -> Self {
        match t {
            Target::Users(users) => Self::Users {
                users: users.clone(),
            },
            Target::Session { id, user } => Self::Session {
                id: id.clone(),
                user: user.clone(),
            },
            Target::Role(role) => Self::Role { role: role.clone() },
            Target::Recipients { users, roles } => Self::Recipients {
                users: users.clone(),
                roles: roles.clone(),
            },
            Target::All => Self::All,
            Target::Room { room, except_user } => Self::Room {
                room: room.clone(),
                except_user: except_user.clone(),
            },
            Target::Socket(sid) => Self::Socket { sid: sid.clone() },
            Target::Call(call) => Self::Call { call: call.clone() },
        }
    }
}

impl From<WireTarget> for Target {
    fn from(t: WireTarget) -> Self {
        match t {
            WireTarget::Users { users } => Self::Users(users),
            WireTarget::Session { id, user } => Self::Session { id, user },
            WireTarget::Role { role } => Self::Role(role),
            WireTarget::Recipients { users, roles } => Self::Recipients { users, roles },
            WireTarget::All => Self::All,
            WireTarget::Room { room, except_user } => Self::Room { room, except_user },
            WireTarget::Socket { sid } => Self::Socket(sid),
            WireTarget::Call { call } => Self::Call(call),
        }
    }
}

/// An [`Op`] as it is written, borrowing what it carries: a notification's
/// body is serialised from the stored notification, never copied first.
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum OpRef<'a> {
    Notification {
        id: &'a str,
        created_at: Millis,
        /// Its JSON text, as made once (the same object as the map).
        body: &'a Notification,
    },
    Event {
        name: &'a str,
        data: &'a Option<Value>,
    },
    Farewell {
        name: &'a str,
        data: &'a Value,
    },
    Disconnect,
    Presence {
        change: &'a PresenceChange,
    },
    LeaveRoom {
        room: &'a str,
    },
    RoomChanged,
    Call {
        news: &'a CallNews,
    },
    Sockets,
}

/// The op of a request as JSON: delivering `message`, or listing the
/// sockets (`None`). Written once per request, whatever the number of
/// nodes it goes to ([`request`]).
pub fn op_json(message: Option<&Message>) -> Vec<u8> {
    let op = match message {
        Some(Message::Notification(n)) => OpRef::Notification {
            id: &n.id,
            created_at: n.created_at,
            body: n,
        },
        Some(Message::Event { name, data }) => OpRef::Event { name, data },
        Some(Message::Farewell { name, data }) => OpRef::Farewell { name, data },
        Some(Message::Disconnect) => OpRef::Disconnect,
        Some(Message::Presence(change)) => OpRef::Presence { change },
        Some(Message::LeaveRoom { room }) => OpRef::LeaveRoom { room },
        Some(Message::RoomChanged) => OpRef::RoomChanged,
        Some(Message::Call(news)) => OpRef::Call { news },
        None => OpRef::Sockets,
    };
    serde_json::to_vec(&op).unwrap_or_default()
}

/// A [`Wire::Request`] as JSON around an op already written by
/// [`op_json`]: what is the same for every node is not written again.
pub fn request(id: u64, from: &str, target: &WireTarget, op: &[u8]) -> Option<Vec<u8>> {
    let from = serde_json::to_vec(from).ok()?;
    let target = serde_json::to_vec(target).ok()?;
    let mut out = Vec::with_capacity(48 + from.len() + target.len() + op.len());
    out.extend_from_slice(b"{\"t\":\"request\",\"id\":");
    out.extend_from_slice(id.to_string().as_bytes());
    out.extend_from_slice(b",\"from\":");
    out.extend_from_slice(&from);
    out.extend_from_slice(b",\"target\":");
    out.extend_from_slice(&target);
    out.extend_from_slice(b",\"op\":");
    out.extend_from_slice(op);
    out.push(b'}');
    Some(out)
}

#[cfg(test)]
impl From<&Message> for Op {
    fn from(m: &Message) -> Self {
        match m {
            Message::Notification(n) => Self::Notification {
                id: n.id.clone(),
                created_at: n.created_at,
                body: n.body().clone(),
            },
            Message::Event { name, data } => Self::Event {
                name: name.clone(),
                data: data.clone(),
            },
            Message::Farewell { name, data } => Self::Farewell {
                name: name.clone(),
                data: data.clone(),
            },
            Message::Disconnect => Self::Disconnect,
            Message::Presence(change) => Self::Presence {
                change: change.clone(),
            },
            Message::LeaveRoom { room } => Self::LeaveRoom { room: room.clone() },
            Message::RoomChanged => Self::RoomChanged,
            Message::Call(news) => Self::Call { news: news.clone() },
        }
    }
}

impl Op {
    /// The message to deliver, or `None` for a listing request.
    pub fn into_message(self) -> Option<Message> {
        Some(match self {
            Op::Notification {
                id,
                created_at,
                body,
            } => Message::Notification(std::sync::Arc::new(Notification::from_parts(
                id, created_at, body,
            ))),
            Op::Event { name, data } => Message::Event { name, data },
            Op::Farewell { name, data } => Message::Farewell { name, data },
            Op::Disconnect => Message::Disconnect,
            Op::Presence { change } => Message::Presence(change),
            Op::LeaveRoom { room } => Message::LeaveRoom { room },
            Op::RoomChanged => Message::RoomChanged,
            Op::Call { news } => Message::Call(news),
            Op::Sockets => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_crosses_intact() {
        let n = Notification::from_body(
            serde_json::from_str(
                r#"{"id": "n1", "severity": "critical", "value": 914.90173876894448}"#,
            )
            .unwrap(),
            || unreachable!(),
            7,
        )
        .unwrap();
        let wire = Wire::Request {
            id: 3,
            from: "node-a".into(),
            target: (&Target::user("u1")).into(),
            op: (&Message::Notification(std::sync::Arc::new(n.clone()))).into(),
        };
        let text = serde_json::to_string(&wire).unwrap();
        let Wire::Request { target, op, .. } = serde_json::from_str(&text).unwrap() else {
            panic!("a request");
        };
        assert_eq!(Target::from(target), Target::user("u1"));
        match op.into_message() {
            Some(Message::Notification(back)) => assert_eq!(*back, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_presence_change_crosses_intact() {
        let change = PresenceChange {
            user_id: "u1".into(),
            role: "radiologist".into(),
            status: crate::presence::PresenceStatus::Offline,
            at: 1_764_000_000_123,
        };
        let wire = Wire::Request {
            id: 4,
            from: "node-a".into(),
            target: (&Target::All).into(),
            op: (&Message::Presence(change.clone())).into(),
        };
        let text = serde_json::to_string(&wire).unwrap();
        let Wire::Request { target, op, .. } = serde_json::from_str(&text).unwrap() else {
            panic!("a request");
        };
        assert_eq!(Target::from(target), Target::All);
        match op.into_message() {
            Some(Message::Presence(back)) => assert_eq!(back, change),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_written_around_its_op_reads_back_as_the_same_request() {
        let n = Notification::from_body(
            serde_json::from_str(r#"{"id": "n1", "title": "\"é\" \u2028", "v": [1, 2.5]}"#)
                .unwrap(),
            || unreachable!(),
            7,
        )
        .unwrap();
        let messages = [
            Some(Message::Notification(std::sync::Arc::new(n.clone()))),
            Some(Message::Event {
                name: "e".into(),
                data: Some(serde_json::json!({"a": [1, {"b": null}]})),
            }),
            Some(Message::Event {
                name: "e".into(),
                data: None,
            }),
            Some(Message::Farewell {
                name: "bye".into(),
                data: serde_json::json!("x"),
            }),
            Some(Message::Disconnect),
            Some(Message::Presence(PresenceChange {
                user_id: "u\"1".into(),
                role: "radiologist".into(),
                status: crate::presence::PresenceStatus::Online,
                at: 1_764_000_000_123,
            })),
            None,
        ];
        for m in &messages {
            let target = WireTarget::from(&Target::Session {
                id: "s\"1".into(),
                user: Some("u1".into()),
            });
            let bytes = request(42, "node-\"a", &target, &op_json(m.as_ref())).unwrap();
            let Wire::Request {
                id,
                from,
                target,
                op,
            } = serde_json::from_slice(&bytes).unwrap()
            else {
                panic!("a request");
            };
            assert_eq!((id, from.as_str()), (42, "node-\"a"));
            assert_eq!(
                Target::from(target),
                Target::Session {
                    id: "s\"1".into(),
                    user: Some("u1".into())
                }
            );
            let expected = m.as_ref().map(Op::from);
            assert_eq!(
                serde_json::to_value(op).unwrap(),
                serde_json::to_value(expected.unwrap_or(Op::Sockets)).unwrap()
            );
        }
    }

    #[test]
    fn every_target_crosses_the_wire_unchanged() {
        for target in [
            Target::Users(vec!["u\"1".into(), "u2".into()]),
            Target::Session {
                id: "s".into(),
                user: None,
            },
            Target::Role("attending".into()),
            Target::Recipients {
                users: vec!["u1".into()],
                roles: vec!["attending".into(), "chief".into()],
            },
            Target::All,
            Target::Room {
                room: "study:1.2".into(),
                except_user: Some("u1".into()),
            },
            Target::Socket("AbC-12_x".into()),
            Target::Call("9f1c".into()),
        ] {
            let text = serde_json::to_vec(&WireTarget::from(&target)).unwrap();
            let back: WireTarget = serde_json::from_slice(&text).unwrap();
            assert_eq!(Target::from(back), target);
        }
    }

    #[test]
    fn a_call_signal_crosses_intact() {
        let news = CallNews::Signal {
            call_id: "c1".into(),
            from: crate::calls::Peer {
                user_id: "ann".into(),
                socket_id: "s1".into(),
            },
            signal: "offer".into(),
            payload: serde_json::json!({ "type": "offer", "sdp": "v=0\r\n" }),
        };
        let op = op_json(Some(&Message::Call(news.clone())));
        let back: Op = serde_json::from_slice(&op).unwrap();
        match back.into_message() {
            Some(Message::Call(n)) => assert_eq!(n, news),
            other => panic!("{other:?}"),
        }
    }

    /// `levels` of nesting, objects and arrays in turn, the outermost an
    /// object.
    fn nested(levels: usize) -> Value {
        (2..=levels).fold(serde_json::json!({"leaf": true}), |inner, i| {
            if (levels - i).is_multiple_of(2) {
                serde_json::json!({ "k": inner })
            } else {
                serde_json::json!([inner])
            }
        })
    }

    fn crosses(op: Op) -> bool {
        let wire = Wire::Request {
            id: 1,
            from: "node-a".into(),
            target: (&Target::user("u1")).into(),
            op,
        };
        let text = serde_json::to_vec(&wire).unwrap();
        serde_json::from_slice::<Wire>(&text).is_ok()
    }

    /// The envelope's two levels and serde_json's limit, as the constants
    /// say: the deepest body a node can read, and one level more dropped.
    #[test]
    fn the_envelope_depth_is_what_the_constants_say() {
        let deepest = MAX_DECODED_DEPTH - ENVELOPE_DEPTH;
        let notification = |levels: usize| {
            let Value::Object(body) = nested(levels) else {
                unreachable!("an object at the top")
            };
            Op::Notification {
                id: "n".into(),
                created_at: 0,
                body,
            }
        };
        let event = |levels: usize| Op::Event {
            name: "e".into(),
            data: Some(nested(levels)),
        };
        assert!(crosses(notification(deepest)));
        assert!(!crosses(notification(deepest + 1)));
        assert!(crosses(event(deepest)));
        assert!(!crosses(event(deepest + 1)));
    }
}
