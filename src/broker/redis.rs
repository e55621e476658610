//! The cluster broker: this node's sockets are served first and without
//! Redis; then requests go, over Redis pub/sub, only to the nodes the
//! registry says hold sockets of the target (one channel per node), or to
//! every node for role and all broadcasts (one shared channel). Each node
//! delivers to its own sockets, applying its own claim sets, and replies
//! with its count; the sender sums the replies that come within the
//! request timeout and marks the answer `partial` when one is missing or
//! Redis is away. A node that is not subscribed any more (PUBLISH reached
//! nobody) is not waited for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::wire::{self, ReplyBody, Wire, WireTarget};
use super::{Broker, Listing, LocalBroker, Message, Reach, Target};
use crate::cluster::RedisLink;
use crate::registry::RedisRegistry;

type Replies = mpsc::UnboundedSender<(String, ReplyBody)>;

pub struct RedisBroker {
    local: Arc<LocalBroker>,
    link: Arc<RedisLink>,
    registry: Arc<RedisRegistry>,
    pending: Mutex<HashMap<u64, Replies>>,
    next_id: AtomicU64,
}

/// One request to one node (or to every node).
#[derive(Clone)]
struct Route {
    channel: String,
    target: WireTarget,
}

impl RedisBroker {
    pub fn new(
        local: Arc<LocalBroker>,
        link: Arc<RedisLink>,
        registry: Arc<RedisRegistry>,
    ) -> Self {
        Self {
            local,
            link,
            registry,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Serves what other nodes send this one, in arrival order (so two
    /// notifications from one sender reach a socket in the order sent).
    pub async fn serve(self: Arc<Self>, mut inbox: mpsc::UnboundedReceiver<Vec<u8>>) {
        while let Some(bytes) = inbox.recv().await {
            match serde_json::from_slice::<Wire>(&bytes) {
                Ok(Wire::Reply { id, from, body }) => {
                    if let Some(tx) = self.pending.lock().get(&id) {
                        let _ = tx.send((from, body));
                    }
                }
                Ok(Wire::Request {
                    id,
                    from,
                    target,
                    op,
                }) => {
                    if *from == **self.link.node() {
                        continue; // our own broadcast, already served locally
                    }
                    let target = Target::from(target);
                    let body = match op.into_message() {
                        Some(m) => ReplyBody::Counts {
                            counts: self.local.deliver_here(&target, &m).await,
                        },
                        None => ReplyBody::Sockets {
                            sockets: self.local.sockets_here(&target),
                        },
                    };
                    let reply = Wire::Reply {
                        id,
                        from: self.link.node().to_string(),
                        body,
                    };
                    let channel = self.link.keys().node_channel(&from);
                    let link = self.link.clone();
                    tokio::spawn(async move {
                        let Ok(payload) = serde_json::to_vec(&reply) else {
                            return;
                        };
                        let _ = link
                            .run(|mut c| async move {
                                ::redis::cmd("PUBLISH")
                                    .arg(&channel)
                                    .arg(payload)
                                    .query_async::<i64>(&mut c)
                                    .await
                            })
                            .await;
                    });
                }
                Err(e) => tracing::warn!(error = %e, "unreadable message from another node"),
            }
        }
    }

    /// Where requests for `target` go: per node for users and sessions
    /// (from the registry), or everyone for roles, recipients with roles
    /// and all. `None`: Redis could not say.
    async fn routes(&self, target: &Target) -> Option<(Vec<Route>, Vec<Vec<usize>>, bool)> {
        let keys = self.link.keys();
        let me = self.link.node().to_string();
        match target {
            Target::Users(users) => {
                let index: Vec<String> = users.iter().map(|u| keys.user_sockets().of(u)).collect();
                let nodes = self.registry.nodes_of_index(&index).await.ok()?;
                let mut by_node: HashMap<String, Vec<usize>> = HashMap::new();
                for (i, ns) in nodes.into_iter().enumerate() {
                    for n in ns {
                        if n != me {
                            by_node.entry(n).or_default().push(i);
                        }
                    }
                }
                let mut routes = Vec::with_capacity(by_node.len());
                let mut slots = Vec::with_capacity(by_node.len());
                for (node, idx) in by_node {
                    routes.push(Route {
                        channel: keys.node_channel(&node),
                        target: WireTarget::Users {
                            users: idx.iter().map(|i| users[*i].clone()).collect(),
                        },
                    });
                    slots.push(idx);
                }
                Some((routes, slots, false))
            }
            // A session belongs to one user (its owner, checked at every
            // connect): its sockets are among that user's. Without the
            // user, every node is asked.
            Target::Session { user: None, .. } => Some((
                vec![Route {
                    channel: keys.everyone(),
                    target: target.into(),
                }],
                vec![vec![0]],
                true,
            )),
            Target::Session {
                user: Some(user), ..
            } => {
                let nodes = self
                    .registry
                    .nodes_of_index(&[keys.user_sockets().of(user)])
                    .await
                    .ok()?;
                let routes: Vec<Route> = nodes
                    .into_iter()
                    .flatten()
                    .filter(|n| *n != me)
                    .map(|n| Route {
                        channel: keys.node_channel(&n),
                        target: target.into(),
                    })
                    .collect();
                let slots = routes.iter().map(|_| vec![0]).collect();
                Some((routes, slots, false))
            }
            Target::Role(_)
            | Target::Recipients { .. }
            | Target::All
            | Target::Room { .. }
            | Target::Socket(_)
            | Target::Call(_) => Some((
                vec![Route {
                    channel: keys.everyone(),
                    target: target.into(),
                }],
                vec![vec![0]],
                true,
            )),
        }
    }

    /// Sends the op along `routes` and gathers the replies. `partial` when
    /// a node could not be reached or did not answer in time. The op (a
    /// notification's body written for the wire) is made only when some
    /// node is to be asked: on most deliveries every socket is local. It is
    /// written once, whatever the number of nodes asked.
    async fn ask(
        &self,
        routes: Vec<Route>,
        op: impl FnOnce() -> Vec<u8>,
        broadcast: bool,
    ) -> (Vec<(String, ReplyBody)>, bool) {
        if routes.is_empty() {
            return (Vec::new(), false);
        }
        let op = op();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.pending.lock().insert(id, tx);
        let from = self.link.node();
        let payloads: Vec<(String, Vec<u8>)> = routes
            .into_iter()
            .filter_map(|r| wire::request(id, from, &r.target, &op).map(|p| (r.channel, p)))
            .collect();
        let sent = payloads.len();
        let receivers: Result<Vec<i64>, _> = self
            .link
            .run(|mut c| async move {
                let mut pipe = ::redis::pipe();
                for (channel, payload) in &payloads {
                    pipe.cmd("PUBLISH").arg(channel).arg(payload);
                }
                pipe.query_async(&mut c).await
            })
            .await;
        let (expected, mut partial) = match receivers {
            Ok(counts) if broadcast => (
                counts.iter().sum::<i64>().saturating_sub(1).max(0) as usize,
                false,
            ),
            Ok(counts) => {
                let reached = counts.iter().filter(|n| **n > 0).count();
                (reached, reached < sent)
            }
            Err(_) => (0, true),
        };
        let mut replies = Vec::with_capacity(expected);
        let deadline = tokio::time::Instant::now() + self.link.timeout();
        while replies.len() < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => replies.push(r),
                _ => {
                    partial = true;
                    break;
                }
            }
        }
        self.pending.lock().remove(&id);
        (replies, partial)
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn deliver(&self, target: &Target, message: &Message) -> Reach {
        self.deliver_each(target, std::slice::from_ref(message))
            .await
            .pop()
            .unwrap_or(Reach {
                counts: Vec::new(),
                partial: false,
            })
    }

    /// One lookup of the nodes for every message: an acknowledgement that
    /// also closes the notification tells the user's sockets both for the
    /// price of one.
    async fn deliver_each(&self, target: &Target, messages: &[Message]) -> Vec<Reach> {
        let mut reaches = Vec::with_capacity(messages.len());
        for message in messages {
            reaches.push(Reach {
                counts: self.local.deliver_here(target, message).await,
                partial: true,
            });
        }
        if !self.link.is_up() {
            return reaches;
        }
        let Some((routes, slots, broadcast)) = self.routes(target).await else {
            return reaches;
        };
        let routed: Vec<String> = routes.iter().map(|r| r.channel.clone()).collect();
        for (reach, message) in reaches.iter_mut().zip(messages) {
            let (replies, partial) = self
                .ask(routes.clone(), || wire::op_json(Some(message)), broadcast)
                .await;
            reach.partial = partial;
            for (from, body) in replies {
                let ReplyBody::Counts { counts: theirs } = body else {
                    continue;
                };
                let channel = self.link.keys().node_channel(&from);
                let idx = if broadcast {
                    Some(&slots[0])
                } else {
                    routed.iter().position(|c| *c == channel).map(|i| &slots[i])
                };
                if let Some(idx) = idx {
                    for (slot, n) in idx.iter().zip(theirs) {
                        if let Some(c) = reach.counts.get_mut(*slot) {
                            *c += n;
                        }
                    }
                }
            }
        }
        reaches
    }

    async fn sockets(&self, target: &Target) -> Listing {
        let mut sockets = self.local.sockets_here(target);
        if !self.link.is_up() {
            return Listing {
                sockets,
                partial: true,
            };
        }
        let Some((routes, _, broadcast)) = self.routes(target).await else {
            return Listing {
                sockets,
                partial: true,
            };
        };
        let (replies, partial) = self.ask(routes, || wire::op_json(None), broadcast).await;
        for (_, body) in replies {
            if let ReplyBody::Sockets { sockets: theirs } = body {
                sockets.extend(theirs);
            }
        }
        sockets.sort_by(|a, b| {
            a.connected_at
                .cmp(&b.connected_at)
                .then(a.socket_id.cmp(&b.socket_id))
        });
        Listing { sockets, partial }
    }
}
