//! The dashboard's picture of the service, one JSON document: node health,
//! sockets by transport and by node, each connected user's sessions with
//! their idle clocks, the study rooms and who is in them, and the oldest
//! unacknowledged notifications with where their escalation stands. Times are absolute (RFC 3339) and `now`
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
use crate::rooms::{self, Member, Seat};
use crate::store::{Escalation, UserNotification};

use super::{escalation, shown};

/// Most unacknowledged notifications one picture lists (the total is
/// always given): enough to fill a screen several times over.
pub const UNACKNOWLEDGED_SHOWN: u32 = 200;

/// Most study rooms one picture lists, busiest first (the total is always
/// given): a reading room's worth of studies and boards, several times over.
pub const ROOMS_SHOWN: usize = 200;

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
        "rooms": study_rooms(&listing.sockets),
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

/// The study rooms the sockets sit in, each with its members as
/// `room_presence` shows them: the busiest [`ROOMS_SHOWN`] (most members,
/// then by name, so that an unchanged service reads the same), and how
/// many rooms there are.
fn study_rooms(sockets: &[ConnectionInfo]) -> Value {
    let mut seats: BTreeMap<&str, Vec<Seat>> = BTreeMap::new();
    for s in sockets {
        for joined in &s.rooms {
            seats.entry(joined.room.as_str()).or_default().push(Seat {
                user_id: s.user_id.clone(),
                since: joined.since,
            });
        }
    }
    let total = seats.len();
    let mut rooms: Vec<(&str, Vec<Member>)> = seats
        .into_iter()
        .map(|(room, seats)| (room, rooms::members(seats)))
        .collect();
    // Stable: rooms with as many members stay in name order.
    rooms.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
    rooms.truncate(ROOMS_SHOWN);
    let shown: Vec<Value> = rooms
        .iter()
        .map(|(room, members)| json!({ "room": room, "members": rooms::members_view(members) }))
        .collect();
    json!({ "total": total, "rooms": shown })
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

    fn socket(user: &str, rooms: &[(&str, Millis)]) -> ConnectionInfo {
        ConnectionInfo {
            socket_id: format!("{user}-{}", rooms.len()),
            user_id: user.into(),
            session_id: "s".into(),
            role: "radiologist".into(),
            connected_at: 0,
            last_activity: 0,
            transport: Transport::Websocket,
            remote_addr: None,
            node: "n1".into(),
            joined_at: None,
            rooms: rooms
                .iter()
                .map(|(room, since)| crate::connections::connection::JoinedRoom {
                    room: room.to_string(),
                    since: *since,
                })
                .collect(),
        }
    }

    #[test]
    fn rooms_list_their_members_busiest_first() {
        let sockets = [
            socket("u1", &[("study:1", 30), ("board:7", 5)]),
            socket("u1", &[("study:1", 10)]),
            socket("u2", &[("study:1", 20)]),
            socket("u3", &[]),
        ];
        let rooms = study_rooms(&sockets);
        assert_eq!(rooms["total"], 2);
        let listed: Vec<&str> = rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["room"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ["study:1", "board:7"], "the busiest first");
        let study = &rooms["rooms"][0]["members"];
        assert_eq!(study[0]["userId"], "u1");
        assert_eq!(study[0]["connections"], 2, "two tabs, one member");
        assert_eq!(study[0]["since"], rfc3339(10));
        assert_eq!(study[1]["userId"], "u2");
        assert_eq!(study_rooms(&[]), json!({ "total": 0, "rooms": [] }));
    }

    #[test]
    fn a_socket_listed_by_an_older_node_sits_in_no_room() {
        let mut older = serde_json::to_value(socket("u1", &[])).unwrap();
        assert!(older.get("rooms").is_none(), "none sent when empty");
        older.as_object_mut().unwrap().remove("rooms");
        let read: ConnectionInfo = serde_json::from_value(older).unwrap();
        assert!(read.rooms.is_empty());
    }

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
