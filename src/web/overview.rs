//! The dashboard's picture of the service, one JSON document: node health,
//! sockets by transport and by node, each connected user's sessions with
//! their idle clocks, and the oldest unacknowledged notifications. Times
//! are absolute (RFC 3339) and `now` is the server's, so the page counts
//! ages and idle time left down itself between two pictures, and two
//! pictures of an unchanged service differ only in `now`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::api::views::{self, mark_partial};
use crate::clock::rfc3339;
use crate::conn::{ConnectionInfo, Transport};
use crate::hub::Hub;
use crate::store::UserNotification;

/// Most unacknowledged notifications one picture lists (the total is
/// always given): enough to fill a screen several times over.
pub const UNACKNOWLEDGED_SHOWN: u32 = 200;

/// The picture, without `now`; see [`with_now`].
pub async fn overview(hub: &Hub) -> Value {
    let (readiness, listing, open) = tokio::join!(
        hub.readiness(),
        hub.all_sockets(),
        hub.unacknowledged(UNACKNOWLEDGED_SHOWN)
    );
    let mut answer = json!({
        "node": hub.node_id(),
        "health": {
            "store": if readiness.store { "ok" } else { "unavailable" },
            "redis": readiness.redis.map(|up| if up { "ok" } else { "degraded" }),
        },
        "sockets": socket_counts(&listing.sockets),
        "users": users(hub, &listing.sockets).await,
        "unacknowledged": match open {
            Ok(open) => json!({
                "total": open.total,
                "notifications": open.oldest.iter().map(waiting).collect::<Vec<_>>(),
            }),
            // The store's own state is in `health`; the list is unknown.
            Err(_) => Value::Null,
        },
    });
    mark_partial(&mut answer, listing.partial);
    answer
}

/// `picture` with the server's clock, for the page to count from.
pub fn with_now(mut picture: Value, now: crate::clock::Millis) -> Value {
    if let Some(map) = picture.as_object_mut() {
        map.insert("now".into(), Value::String(rfc3339(now)));
    }
    picture
}

fn socket_counts(sockets: &[ConnectionInfo]) -> Value {
    let mut by_transport = BTreeMap::from([("polling", 0), ("websocket", 0)]);
    let mut by_node: BTreeMap<&str, usize> = BTreeMap::new();
    for s in sockets {
        let transport = match s.transport {
            Transport::Websocket => "websocket",
            Transport::Polling => "polling",
        };
        *by_transport.entry(transport).or_default() += 1;
        *by_node.entry(s.node.as_str()).or_default() += 1;
    }
    json!({ "total": sockets.len(), "byTransport": by_transport, "byNode": by_node })
}

/// Each user's sessions (with their idle clocks) and sockets, users and
/// sessions sorted by id, so that an unchanged service reads the same.
async fn users(hub: &Hub, sockets: &[ConnectionInfo]) -> Vec<Value> {
    let mut sessions: BTreeMap<(&str, &str), Vec<&ConnectionInfo>> = BTreeMap::new();
    for s in sockets {
        sessions
            .entry((s.user_id.as_str(), s.session_id.as_str()))
            .or_default()
            .push(s);
    }
    let ids: Vec<String> = sessions.keys().map(|(_, s)| s.to_string()).collect();
    let clocks = hub.session_clocks(&ids).await;
    let mut users: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (((user, session), mut socks), clock) in sessions.into_iter().zip(clocks) {
        socks.sort_by(|a, b| a.socket_id.cmp(&b.socket_id));
        let mut entry = Map::new();
        entry.insert("sessionId".into(), json!(session));
        entry.insert("role".into(), json!(socks[0].role));
        if let Some(c) = clock {
            entry.insert("lastActivity".into(), json!(rfc3339(c.last_activity)));
            entry.insert("expiresAt".into(), json!(rfc3339(c.expires_at)));
            entry.insert("warned".into(), json!(c.warned));
        }
        entry.insert(
            "sockets".into(),
            socks
                .iter()
                .map(|s| {
                    json!({
                        "socketId": s.socket_id,
                        "transport": s.transport,
                        "node": s.node,
                        "connectedAt": rfc3339(s.connected_at),
                    })
                })
                .collect(),
        );
        users.entry(user).or_default().push(Value::Object(entry));
    }
    users
        .into_iter()
        .map(|(user, sessions)| {
            let sockets: usize = sessions
                .iter()
                .map(|s| s["sockets"].as_array().map_or(0, Vec::len))
                .sum();
            json!({ "userId": user, "sockets": sockets, "sessions": sessions })
        })
        .collect()
}

/// What the dashboard shows of a waiting notification: who and how old,
/// its kind and severity, never the rest of the body (patient details
/// are not the operators' business). `escalationLevel` is reserved for
/// the closed loop's escalation policies.
fn waiting(u: &UserNotification) -> Value {
    let body = &u.notification.body;
    json!({
        "id": u.notification.id,
        "userId": u.recipient.user_id,
        "type": body.get("type"),
        "severity": body.get("severity"),
        "title": body.get("title"),
        "createdAt": rfc3339(u.notification.created_at),
        "state": u.recipient.state(),
        "deliveredAt": views::time(u.recipient.delivered_at),
        "escalationLevel": Value::Null,
    })
}
