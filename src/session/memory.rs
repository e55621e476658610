//! In-process session clocks: a map of sessions and one deadline queue,
//! checked lazily (activity only moves a timestamp; the deadline re-arms
//! itself when it fires early).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{SessionClocks, SessionEvent, SessionKey, SessionSnapshot, Touch};
use crate::clock::Millis;
use crate::config::SessionConfig;
use crate::deadlines::Deadlines;

#[derive(Debug)]
struct Entry {
    user_id: Arc<str>,
    role: Arc<str>,
    last_activity: Millis,
    warned: bool,
}

#[derive(Default)]
struct Inner {
    /// Keys and ids are shared with the sockets' state (no copies).
    sessions: HashMap<Arc<str>, Entry>,
    deadlines: Deadlines<Arc<str>>,
    expired: HashMap<String, Millis>,
}

pub struct MemorySessions {
    config: SessionConfig,
    inner: Mutex<Inner>,
}

impl MemorySessions {
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// (warn_at, expire_at) for an entry.
    fn times(&self, e: &Entry) -> (Millis, Millis) {
        let t = self.config.for_role(&e.role);
        let expire_at = e.last_activity + t.idle_timeout.as_millis() as Millis;
        (
            expire_at - t.warning_before.as_millis() as Millis,
            expire_at,
        )
    }
}

#[async_trait]
impl SessionClocks for MemorySessions {
    async fn start(&self, key: &SessionKey, now: Millis) -> Touch {
        self.touch(key, now).await
    }

    async fn touch(&self, key: &SessionKey, now: Millis) -> Touch {
        let mut inner = self.inner.lock();
        if inner.expired.contains_key(&*key.session_id) {
            return Touch::Expired;
        }
        if let Some(e) = inner.sessions.get_mut(&key.session_id) {
            e.last_activity = e.last_activity.max(now);
            e.warned = false;
            return Touch::Active;
        }
        let entry = Entry {
            user_id: key.user_id.clone(),
            role: key.role.clone(),
            last_activity: now,
            warned: false,
        };
        let (warn_at, _) = self.times(&entry);
        inner.sessions.insert(key.session_id.clone(), entry);
        inner.deadlines.schedule(key.session_id.clone(), warn_at);
        Touch::Active
    }

    async fn touch_id(&self, session_id: &str, now: Millis) -> Option<Touch> {
        let mut inner = self.inner.lock();
        if inner.expired.contains_key(session_id) {
            return Some(Touch::Expired);
        }
        let e = inner.sessions.get_mut(session_id)?;
        e.last_activity = e.last_activity.max(now);
        e.warned = false;
        Some(Touch::Active)
    }

    async fn expire(&self, session_id: &str, now: Millis) -> bool {
        let mut inner = self.inner.lock();
        inner.sessions.remove(session_id);
        inner.deadlines.cancel(session_id);
        inner.expired.insert(session_id.to_string(), now).is_none()
    }

    async fn is_expired(&self, session_id: &str) -> bool {
        self.inner.lock().expired.contains_key(session_id)
    }

    async fn restore_expired(&self, sessions: Vec<String>, at: Millis) {
        let mut inner = self.inner.lock();
        for s in sessions {
            inner.sessions.remove(s.as_str());
            inner.deadlines.cancel(s.as_str());
            inner.expired.insert(s, at);
        }
    }

    async fn forget_expired_before(&self, before: Millis) {
        self.inner.lock().expired.retain(|_, at| *at >= before);
    }

    async fn snapshot(&self, session_id: &str) -> Option<SessionSnapshot> {
        let inner = self.inner.lock();
        let e = inner.sessions.get(session_id)?;
        let (_, expires_at) = self.times(e);
        Some(SessionSnapshot {
            session_id: session_id.to_string(),
            user_id: e.user_id.to_string(),
            role: e.role.to_string(),
            last_activity: e.last_activity,
            expires_at,
            warned: e.warned,
        })
    }

    async fn due(&self, now: Millis) -> Vec<SessionEvent> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let mut events = Vec::new();
        for session_id in inner.deadlines.pop_due(now) {
            let Some(e) = inner.sessions.get_mut(&session_id) else {
                continue;
            };
            let (warn_at, expire_at) = self.times(e);
            if now >= expire_at {
                let user_id = e.user_id.to_string();
                inner.sessions.remove(&session_id);
                inner.expired.insert(session_id.to_string(), now);
                events.push(SessionEvent::Expired {
                    session_id: session_id.to_string(),
                    user_id,
                });
            } else if now >= warn_at && !e.warned {
                e.warned = true;
                events.push(SessionEvent::Warning {
                    session_id: session_id.to_string(),
                    user_id: e.user_id.to_string(),
                    time_remaining: expire_at - now,
                });
                inner.deadlines.schedule(session_id, expire_at);
            } else if e.warned {
                inner.deadlines.schedule(session_id, expire_at);
            } else {
                inner.deadlines.schedule(session_id, warn_at);
            }
        }
        events
    }

    async fn done(&self, _event: &SessionEvent) {}

    async fn next_deadline(&self) -> Option<Millis> {
        self.inner.lock().deadlines.next()
    }

    async fn active_count(&self) -> usize {
        self.inner.lock().sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionTimeouts;
    use std::time::Duration;

    const MIN: Millis = 60_000;

    fn clocks() -> MemorySessions {
        let mut roles = HashMap::new();
        roles.insert(
            "technologist".to_string(),
            SessionTimeouts {
                idle_timeout: Duration::from_secs(300),
                warning_before: Duration::from_secs(60),
            },
        );
        MemorySessions::new(SessionConfig {
            default: SessionTimeouts {
                idle_timeout: Duration::from_secs(900),
                warning_before: Duration::from_secs(300),
            },
            roles,
        })
    }

    fn key(s: &str, role: &str) -> SessionKey {
        SessionKey {
            session_id: s.into(),
            user_id: "u1".into(),
            role: role.into(),
        }
    }

    fn warning(s: &str, remaining: Millis) -> SessionEvent {
        SessionEvent::Warning {
            session_id: s.into(),
            user_id: "u1".into(),
            time_remaining: remaining,
        }
    }

    fn expired(s: &str) -> SessionEvent {
        SessionEvent::Expired {
            session_id: s.into(),
            user_id: "u1".into(),
        }
    }

    #[tokio::test]
    async fn warns_once_then_expires() {
        let c = clocks();
        c.touch(&key("s1", "radiologist"), 0).await;
        assert_eq!(c.next_deadline().await, Some(10 * MIN));
        assert!(c.due(10 * MIN - 1).await.is_empty());
        assert_eq!(c.due(10 * MIN).await, vec![warning("s1", 5 * MIN)]);
        assert!(
            c.due(15 * MIN - 1).await.is_empty(),
            "no second warning in one idle period"
        );
        assert_eq!(c.due(15 * MIN).await, vec![expired("s1")]);
        assert!(c.is_expired("s1").await);
        assert_eq!(
            c.touch(&key("s1", "radiologist"), 16 * MIN).await,
            Touch::Expired
        );
        assert_eq!(c.next_deadline().await, None);
    }

    #[tokio::test]
    async fn activity_pushes_both_deadlines_and_rearms_the_warning() {
        let c = clocks();
        c.touch(&key("s1", "radiologist"), 0).await;
        assert_eq!(c.due(10 * MIN).await, vec![warning("s1", 5 * MIN)]);
        // Activity from any tab during the warning starts a new idle period.
        c.touch_id("s1", 12 * MIN).await;
        assert!(
            c.due(15 * MIN).await.is_empty(),
            "extended session must not expire"
        );
        assert!(c.due(22 * MIN - 1).await.is_empty());
        assert_eq!(c.due(22 * MIN).await, vec![warning("s1", 5 * MIN)]);
        assert_eq!(c.due(27 * MIN).await, vec![expired("s1")]);
    }

    #[tokio::test]
    async fn late_firing_skips_straight_to_expiry() {
        let c = clocks();
        c.touch(&key("s1", "radiologist"), 0).await;
        assert_eq!(c.due(20 * MIN).await, vec![expired("s1")]);
    }

    #[tokio::test]
    async fn per_role_timeouts_apply() {
        let c = clocks();
        c.touch(&key("t1", "technologist"), 0).await;
        assert_eq!(c.due(4 * MIN).await, vec![warning("t1", MIN)]);
        assert_eq!(c.due(5 * MIN).await, vec![expired("t1")]);
    }

    #[tokio::test]
    async fn expiry_by_api_is_final_and_reported_once() {
        let c = clocks();
        c.touch(&key("s1", "r"), 0).await;
        c.touch(&key("s2", "r"), 0).await;
        assert!(c.expire("s1", 5).await);
        assert!(!c.expire("s1", 6).await);
        assert_eq!(
            c.due(10 * MIN).await,
            vec![SessionEvent::Warning {
                session_id: "s2".into(),
                user_id: "u1".into(),
                time_remaining: 5 * MIN
            }]
        );
        assert!(c.snapshot("s1").await.is_none());
        assert_eq!(c.active_count().await, 1);
    }

    #[tokio::test]
    async fn unknown_sessions_are_not_created_by_id() {
        let c = clocks();
        assert_eq!(c.touch_id("nope", 0).await, None);
        c.restore_expired(vec!["old".into()], 0).await;
        assert_eq!(c.touch_id("old", 0).await, Some(Touch::Expired));
        c.forget_expired_before(1).await;
        assert!(!c.is_expired("old").await);
    }

    #[tokio::test]
    async fn snapshot_reports_the_expiry_time() {
        let c = clocks();
        c.touch(&key("s1", "r"), 1000).await;
        c.touch_id("s1", 2000).await;
        let s = c.snapshot("s1").await.unwrap();
        assert_eq!(s.last_activity, 2000);
        assert_eq!(s.expires_at, 2000 + 15 * MIN);
    }
}
