//! JSON shapes of the API's answers, shared by its resources.

use serde_json::{json, Value};

use crate::broker::Reach;
use crate::clock::{rfc3339, Millis};
use crate::connections::connection::ConnectionInfo;
use crate::notification::Recipient;
use crate::store::UserNotification;

pub fn time(t: Option<Millis>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

pub fn recipient(r: &Recipient) -> Value {
    let mut v = json!({
        "userId": r.user_id,
        "state": r.state(),
        "deliveredAt": time(r.delivered_at),
        "acknowledgedAt": time(r.acknowledged_at),
    });
    if let Some(level) = r.escalation_level {
        v["escalationLevel"] = level.into();
    }
    v
}

pub fn user_notification(u: &UserNotification) -> Value {
    json!({
        "notification": u.notification,
        "userId": u.recipient.user_id,
        "state": u.recipient.state(),
        "deliveredAt": time(u.recipient.delivered_at),
        "acknowledgedAt": time(u.recipient.acknowledged_at),
    })
}

pub fn connection(c: &ConnectionInfo) -> Value {
    json!({
        "socketId": c.socket_id,
        "sessionId": c.session_id,
        "userId": c.user_id,
        "role": c.role,
        "connectedAt": rfc3339(c.connected_at),
        "lastActivity": rfc3339(c.last_activity),
        "transport": c.transport,
        "remoteAddress": c.remote_addr,
        "node": c.node,
    })
}

/// Adds `"partial": true` to an answer that may miss other nodes' share
/// (Redis unreachable, or a node that did not answer in time).
pub fn mark_partial(answer: &mut Value, partial: bool) {
    if let (true, Some(map)) = (partial, answer.as_object_mut()) {
        map.insert("partial".into(), Value::Bool(true));
    }
}

/// `{ <name>: <sockets reached> }`, marked partial when it may miss some.
pub fn reach(name: &str, reach: &Reach) -> Value {
    let mut answer = json!({ name: reach.total() });
    mark_partial(&mut answer, reach.partial);
    answer
}
