//! Claims under a lease, the node's side of `scripts/lease.lua`: an event
//! due once cluster-wide (a session's warning or expiry, a user going
//! offline) is handed by a claim script to one node, as a member of a
//! lease set. The node keeps the member until it has acted on the event,
//! then releases it; a node that dies first leaves the lease to run out,
//! and the next claim, on any node, hands the event out again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use ::redis::ScriptInvocation;
use parking_lot::Mutex;

use super::RedisLink;

pub struct Leases<T> {
    link: Arc<RedisLink>,
    /// The lease set: member -> when its lease runs out.
    set: String,
    /// Events this node claimed and has not released, with their member.
    held: Mutex<HashMap<T, String>>,
}

impl<T: Eq + Hash + Clone> Leases<T> {
    pub fn new(link: Arc<RedisLink>, set: String) -> Self {
        Self {
            link,
            set,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `claim` (a script returning the members it leased to this
    /// node) and holds each event `read` makes of a member. Nothing when
    /// Redis cannot be reached: the events wait for the next claim.
    pub async fn claim(
        &self,
        claim: ScriptInvocation<'_>,
        read: impl Fn(&str) -> Option<T>,
    ) -> Vec<T> {
        let members: Vec<String> = self
            .link
            .run(|mut c| async move { claim.invoke_async(&mut c).await })
            .await
            .unwrap_or_default();
        let mut held = self.held.lock();
        members
            .into_iter()
            .filter_map(|m| {
                let event = read(&m)?;
                held.insert(event.clone(), m);
                Some(event)
            })
            .collect()
    }

    /// This node has acted on `event`: its lease is given up, so no other
    /// node hands it out again.
    pub async fn release(&self, event: &T) {
        let Some(member) = self.held.lock().remove(event) else {
            return;
        };
        let _ = self
            .link
            .query::<i64>(::redis::cmd("ZREM").arg(&self.set).arg(&member))
            .await;
    }
}
