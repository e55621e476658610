//! The dashboard's picture of the service, one JSON document: node health,
//! sockets by transport and by node, each connected user's sessions with
//! their idle clocks, and the oldest unacknowledged notifications with
//! where their escalation stands. Times are absolute (RFC 3339) and `now`
//! is the server's, so the page counts ages, idle time left and the time
//! to the next escalation step down itself between two pictures, and two
//! pictures of an unchanged service differ only in `now`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::api::views::{self, mark_partial};
use crate::clock::{rfc3339, Millis};
use crate::connections::connection::{ConnectionInfo, Transport};
use crate::hub::Hub;
use crate::store::{Escalation, UserNotification};

use super::{escalation, shown};

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
            // A store that does not commit cannot record acknowledgements
            // either: what it reads may list notifications already
            // acknowledged. Its state is in `health`; the list is unknown.
            Ok(open) if readiness.store => json!({
                "total": open.total,
                "notifications": waiting_list(hub, &open.oldest).await,
            }),
            _ => Value::Null,
        },
    });
    mark_partial(&mut answer, listing.partial);
    answer
}

/// The last picture, shared by every open dashboard's stream: however many
/// are open, the service is looked at about once a second, not once per
/// dashboard per second.
pub struct SharedPicture {
    hub: Arc<Hub>,
    last: tokio::sync::Mutex<Option<(Millis, Arc<Value>)>>,
}

impl SharedPicture {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            hub,
            last: tokio::sync::Mutex::new(None),
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The last picture if it is younger than `fresh`, else a new one (one
    /// stream takes it while the others wait for it).
    pub async fn get(&self, fresh: Duration) -> Arc<Value> {
        let mut last = self.last.lock().await;
        let now = self.hub.now();
        if let Some((at, picture)) = last.as_ref() {
            if now - at < fresh.as_millis() as Millis {
                return picture.clone();
            }
        }
        let picture = Arc::new(overview(&self.hub).await);
        *last = Some((now, picture.clone()));
        picture
    }
}

/// `picture` with the server's clock, for the page to count from.
pub fn with_now(mut picture: Value, now: Millis) -> Value {
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

/// The listed notifications with where their escalation stands: one read
/// of the store for the page's rows, whatever their number. Should that
/// read fail, the rows still show, their escalation unknown (`null`).
async fn waiting_list(hub: &Hub, oldest: &[UserNotification]) -> Vec<Value> {
    let mut ids: Vec<String> = oldest.iter().map(|u| u.notification.id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let states = hub.escalations(&ids).await.unwrap_or_default();
    oldest
        .iter()
        .map(|u| waiting(hub, u, states.get(&u.notification.id)))
        .collect()
}

/// What the dashboard shows of a waiting notification: who and how old,
/// its kind and severity, never the rest of the body (patient details
/// are not the operators' business), any JSON, cut when long (see
/// [`shown::field`]), and its escalation (see [`escalation::view`]);
/// `escalationLevel` is its fired level alone.
fn waiting(hub: &Hub, u: &UserNotification, state: Option<&Escalation>) -> Value {
    let body = u.notification.body();
    let policy = hub.config().escalation.policy(u.notification.severity());
    let escalation = escalation::view(policy, u.notification.created_at, state);
    json!({
        "id": u.notification.id,
        "userId": u.recipient.user_id,
        "type": shown::field(body, "type"),
        "severity": shown::field(body, "severity"),
        "title": shown::field(body, "title"),
        "createdAt": rfc3339(u.notification.created_at),
        "state": u.recipient.state(),
        "deliveredAt": views::time(u.recipient.delivered_at),
        "escalationLevel": escalation.get("level").cloned().unwrap_or(Value::Null),
        "escalation": escalation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::clock::ManualClock;
    use crate::config::FileConfig;

    #[tokio::test]
    async fn streams_a_moment_apart_share_one_picture() {
        let dir = tempfile::tempdir().unwrap();
        let config = FileConfig {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let built = crate::build_hub(config, clock.clone()).await.unwrap();
        let pictures = SharedPicture::new(built.hub.clone());
        let fresh = Duration::from_millis(900);
        let first = pictures.get(fresh).await;
        clock.advance(899);
        assert!(Arc::ptr_eq(&first, &pictures.get(fresh).await), "shared");
        clock.advance(1);
        let next = pictures.get(fresh).await;
        assert!(
            !Arc::ptr_eq(&first, &next),
            "taken again once it is 900 ms old"
        );
        assert_eq!(*first, *next, "of an unchanged service, the same picture");
        built.hub.close_store().await;
    }
}
