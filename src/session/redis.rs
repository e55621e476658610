//! Session clocks shared by a cluster, in Redis: one hash per session
//! (`clock:{S}`: user, role, last activity, warned, timeouts), a sorted set
//! of next deadlines (`clock-due`), and the expired sessions (`expired`).
//!
//! A deadline is claimed once cluster-wide by a Lua script that decides
//! warning, expiry or "moved by activity" atomically, and leases each
//! event it hands out (`clock-leased`): the claimer delivers it and calls
//! `done`; a claimer that dies leaves the lease to run out, and the next
//! node's claim hands the same event out again. Activity is coalesced on
//! each node: the shared clock moves only when it moves by more than a
//! small step, so client events cost no Redis round trip each.

use std::collections::HashMap;
use std::sync::Arc;

use ::redis::Script;
use async_trait::async_trait;
use parking_lot::Mutex;

use super::{SessionClocks, SessionEvent, SessionKey, SessionSnapshot, Touch};
use crate::clock::Millis;
use crate::cluster::{scripts, Leases, RedisLink};
use crate::config::SessionConfig;

/// Longest a node may hold back activity before the shared clock hears of
/// it: how early, at most, a warning or an expiry may come for a user who
/// was active just after the last write. Five seconds against the default
/// 15-minute idle period and one-minute warning; each write is a Redis
/// script, and a user acknowledging notifications every second would
/// otherwise pay one with nearly every acknowledgement.
const MAX_STEP: Millis = 5_000;

/// How long a claimed warning or expiry is reserved for its claimer.
const LEASE: Millis = 10_000;

pub struct RedisSessions {
    link: Arc<RedisLink>,
    config: SessionConfig,
    touch: Script,
    claim: Script,
    expire: Script,
    /// Per session: the activity time the shared clock last heard from
    /// this node (coalescing).
    pushed: Mutex<HashMap<Arc<str>, Millis>>,
    /// Events this node claimed and has not yet reported done.
    claimed: Leases<SessionEvent>,
}

impl RedisSessions {
    pub fn new(link: Arc<RedisLink>, config: SessionConfig) -> Self {
        Self {
            claimed: Leases::new(link.clone(), link.keys().clock_leased()),
            link,
            config,
            touch: scripts::clock_touch(),
            claim: scripts::clock_claim(),
            expire: scripts::clock_expire(),
            pushed: Mutex::new(HashMap::new()),
        }
    }

    /// The coalescing step for a role: at most [`MAX_STEP`], and small against
    /// the warning lead time so a warning never comes noticeably early.
    fn step(&self, role: &str) -> Millis {
        let t = self.config.for_role(role);
        (t.warning_before.as_millis() as Millis / 10).clamp(0, MAX_STEP)
    }

    async fn run_touch(&self, key: &SessionKey, now: Millis, create: bool) -> Option<i64> {
        let t = self.config.for_role(&key.role);
        let keys = self.link.keys();
        let mut touch = self.touch.key(keys.expired());
        touch
            .key(keys.session_clock().of(&key.session_id))
            .key(keys.clock_due())
            .arg(&*key.session_id)
            .arg(&*key.user_id)
            .arg(&*key.role)
            .arg(now)
            .arg(t.idle_timeout.as_millis() as i64)
            .arg(t.warning_before.as_millis() as i64)
            .arg(if create { "1" } else { "0" });
        let result = self
            .link
            .run(|mut c| async move { touch.invoke_async::<i64>(&mut c).await })
            .await;
        match result {
            Ok(r) => {
                if r == 1 {
                    self.pushed.lock().insert(key.session_id.clone(), now);
                }
                Some(r)
            }
            Err(_) => None,
        }
    }

    /// Rewrites the clocks of this node's sessions, each with its latest
    /// activity here (after Redis came back; a clock Redis kept only moves
    /// forward), and the expired sessions from the durable store.
    pub async fn rejoin(&self, sessions: &[(SessionKey, Millis)], expired: &[String], now: Millis) {
        if !expired.is_empty() {
            let keys = self.link.keys();
            let (key, due, clock) = (keys.expired(), keys.clock_due(), keys.session_clock());
            let expired = expired.to_vec();
            let _ = self
                .link
                .run(|mut c| async move {
                    // As clock_expire.lua does: an expired session keeps no
                    // clock (clock.lua reads the expired set only
                    // when there is none), even one Redis kept while this
                    // node could not tell it of the expiry.
                    let mut pipe = ::redis::pipe();
                    for s in &expired {
                        pipe.cmd("DEL").arg(clock.of(s)).ignore();
                        pipe.cmd("ZREM").arg(&due).arg(s).ignore();
                        pipe.cmd("ZADD")
                            .arg(&key)
                            .arg("NX")
                            .arg(now)
                            .arg(s)
                            .ignore();
                    }
                    pipe.query_async::<()>(&mut c).await
                })
                .await;
        }
        for (key, last_activity) in sessions {
            self.run_touch(key, *last_activity, true).await;
        }
    }
}

fn parse_event(member: &str) -> Option<SessionEvent> {
    let v: serde_json::Value = serde_json::from_str(member).ok()?;
    let kind = v.get(0)?.as_str()?;
    let session_id = v.get(1)?.as_str()?.to_string();
    let user_id = v.get(2)?.as_str()?.to_string();
    match kind {
        "expired" => Some(SessionEvent::Expired {
            session_id,
            user_id,
        }),
        "warning" => Some(SessionEvent::Warning {
            session_id,
            user_id,
            time_remaining: v.get(3)?.as_i64()?,
        }),
        _ => None,
    }
}

#[async_trait]
impl SessionClocks for RedisSessions {
    async fn start(&self, key: &SessionKey, now: Millis) -> Touch {
        match self.run_touch(key, now, true).await {
            Some(0) => Touch::Expired,
            // Redis unreachable: the node serves its own sockets; the
            // durable record of expired sessions was checked at start and
            // is rewritten on rejoin.
            _ => Touch::Active,
        }
    }

    /// The join wrote the clock as `start` would: the
    /// coalescing of the next activity counts from it.
    fn started(&self, key: &SessionKey, now: Millis) {
        self.pushed.lock().insert(key.session_id.clone(), now);
    }

    async fn touch(&self, key: &SessionKey, now: Millis) -> Touch {
        let step = self.step(&key.role);
        let fresh = self
            .pushed
            .lock()
            .get(&key.session_id)
            .is_some_and(|at| now - *at < step && now >= *at);
        if fresh {
            return Touch::Active;
        }
        match self.run_touch(key, now, true).await {
            Some(0) => Touch::Expired,
            _ => Touch::Active,
        }
    }

    async fn touch_id(&self, session_id: &str, now: Millis) -> Option<Touch> {
        let key = SessionKey {
            session_id: Arc::from(session_id),
            user_id: Arc::from(""),
            role: Arc::from(""),
        };
        match self.run_touch(&key, now, false).await {
            Some(0) => Some(Touch::Expired),
            Some(-1) => None,
            Some(_) => Some(Touch::Active),
            None => None,
        }
    }

    async fn expire(&self, session_id: &str, now: Millis) -> bool {
        self.pushed.lock().remove(session_id);
        let keys = self.link.keys();
        let mut expire = self.expire.key(keys.session_clock().of(session_id));
        expire
            .key(keys.clock_due())
            .key(keys.expired())
            .arg(session_id)
            .arg(now);
        self.link
            .run(|mut c| async move { expire.invoke_async::<i64>(&mut c).await })
            .await
            .is_ok_and(|n| n == 1)
    }

    async fn is_expired(&self, session_id: &str) -> bool {
        let key = self.link.keys().expired();
        self.link
            .query::<Option<f64>>(::redis::cmd("ZSCORE").arg(&key).arg(session_id))
            .await
            .is_ok_and(|s| s.is_some())
    }

    async fn restore_expired(&self, sessions: Vec<String>, at: Millis) {
        self.rejoin(&[], &sessions, at).await;
    }

    async fn forget_expired_before(&self, before: Millis) {
        let key = self.link.keys().expired();
        let _ = self
            .link
            .run(|mut c| async move {
                ::redis::cmd("ZREMRANGEBYSCORE")
                    .arg(&key)
                    .arg("-inf")
                    .arg(format!("({before}"))
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
        self.pushed.lock().retain(|_, at| *at >= before);
    }

    async fn snapshot(&self, session_id: &str) -> Option<SessionSnapshot> {
        let key = self.link.keys().session_clock().of(session_id);
        let fields: HashMap<String, String> = self
            .link
            .query(::redis::cmd("HGETALL").arg(&key))
            .await
            .ok()?;
        let num = |k: &str| fields.get(k).and_then(|v| v.parse::<Millis>().ok());
        let last = num("last")?;
        Some(SessionSnapshot {
            session_id: session_id.to_string(),
            user_id: fields.get("user")?.clone(),
            role: fields.get("role")?.clone(),
            last_activity: last,
            expires_at: last + num("idle")?,
            warned: num("warned") == Some(1),
        })
    }

    async fn due(&self, now: Millis) -> Vec<SessionEvent> {
        let keys = self.link.keys();
        let mut claim = self.claim.key(keys.clock_leased());
        claim
            .key(keys.clock_due())
            .key(keys.expired())
            .arg(keys.session_clock())
            .arg(now)
            .arg(LEASE);
        let events = self.claimed.claim(claim, parse_event).await;
        for e in &events {
            if let SessionEvent::Expired { session_id, .. } = e {
                self.pushed.lock().remove(session_id.as_str());
            }
        }
        events
    }

    async fn done(&self, event: &SessionEvent) {
        self.claimed.release(event).await;
    }

    async fn next_deadline(&self) -> Option<Millis> {
        let (due, leased) = (
            self.link.keys().clock_due(),
            self.link.keys().clock_leased(),
        );
        let firsts: Vec<Vec<(String, f64)>> = self
            .link
            .run(|mut c| async move {
                ::redis::pipe()
                    .cmd("ZRANGE")
                    .arg(&due)
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES")
                    .cmd("ZRANGE")
                    .arg(&leased)
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES")
                    .query_async(&mut c)
                    .await
            })
            .await
            .ok()?;
        firsts
            .into_iter()
            .flatten()
            .map(|(_, at)| at as Millis)
            .min()
    }

    async fn active_count(&self) -> usize {
        let key = self.link.keys().clock_due();
        self.link
            .query::<usize>(::redis::cmd("ZCARD").arg(&key))
            .await
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_members_read_back_as_events() {
        assert_eq!(
            parse_event(r#"["warning","s1","u1",300000,5]"#),
            Some(SessionEvent::Warning {
                session_id: "s1".into(),
                user_id: "u1".into(),
                time_remaining: 300_000
            })
        );
        assert_eq!(
            parse_event(r#"["expired","s1","u1",0,5]"#),
            Some(SessionEvent::Expired {
                session_id: "s1".into(),
                user_id: "u1".into()
            })
        );
        assert_eq!(parse_event(r#"["other","s1","u1",0,5]"#), None);
        assert_eq!(parse_event("not json"), None);
    }
}
