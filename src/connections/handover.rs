//! Sockets between authentication and their connect handler: the connect
//! middleware leaves each socket's [`Conn`] here and the connect handler
//! takes it (socketioxide's per-socket extension map would hold it instead,
//! at ~150 bytes per socket for the socket's whole life).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use socketioxide::socket::Sid;
use tokio::sync::Semaphore;

use crate::clock::Millis;
use crate::connections::connection::Conn;

/// The map is first looked over for strays when it holds this many sockets
/// (a connection storm of 200 in flight holds about 200).
const SWEEP_FROM: usize = 1024;
/// A socket still waiting for its connect handler after this long never
/// gets it: the handler runs right after authentication. Its place under
/// the per-user socket cap lapses then too ([`crate::connections::table`]).
pub const STRAY_AFTER_MS: Millis = 60_000;

#[derive(Default)]
pub struct Authenticated {
    inner: Mutex<Held>,
    /// Set by a test only: connect handlers wait for one of its permits
    /// after `connected`, before the attach ([`Authenticated::hold_attaches`]).
    gate: OnceLock<Arc<Semaphore>>,
}

#[derive(Default)]
struct Held {
    conns: HashMap<Sid, Arc<Conn>>,
    /// Size at which the next look for strays happens: it doubles with the
    /// map, so a long burst pays for a look once per doubling, not per socket.
    sweep_at: usize,
}

impl Held {
    fn drop_strays(&mut self, now: Millis) -> Vec<Arc<Conn>> {
        let mut strays = Vec::new();
        self.conns.retain(|_, c| {
            let young = now - c.connected_at < STRAY_AFTER_MS;
            if !young {
                // Nothing of the socket's may still wait on it.
                c.settle();
                strays.push(c.clone());
            }
            young
        });
        strays
    }
}

impl Authenticated {
    /// Keeps an authenticated socket's state until its connect handler
    /// takes it. A socket whose transport closed between authentication and
    /// the CONNECT reply gets neither a connect handler nor a disconnect
    /// (socketioxide drops it silently), so its entry stays behind: such
    /// strays, older than [`STRAY_AFTER_MS`], are dropped when the map grows,
    /// and returned (the caller gives back their places under the cap).
    pub fn hold(&self, conn: Arc<Conn>, now: Millis) -> Vec<Arc<Conn>> {
        let mut held = self.inner.lock();
        let mut strays = Vec::new();
        if held.conns.len() >= held.sweep_at.max(SWEEP_FROM) {
            strays = held.drop_strays(now);
            held.sweep_at = held.conns.len() * 2;
        }
        held.conns.insert(conn.sid, conn);
        strays
    }

    /// Drops the sockets held longer than [`STRAY_AFTER_MS`] and returns
    /// them (the caller gives back their places under the cap), whatever
    /// the map's size: in a cluster a stray's place is an entry in the
    /// indexes, which would otherwise count it as connected. Called on the
    /// node's heartbeat.
    pub fn sweep(&self, now: Millis) -> Vec<Arc<Conn>> {
        self.inner.lock().drop_strays(now)
    }

    /// The socket's state, for its connect handler (or its disconnect, if
    /// it never got that far).
    pub fn take(&self, sid: Sid) -> Option<Arc<Conn>> {
        self.inner.lock().conns.remove(&sid)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().conns.len()
    }

    /// For tests of the moment between `connected` and the attach: from
    /// now on each connect handler, once it has sent `connected`, waits
    /// for a permit of the returned semaphore before attaching its socket
    /// (the test adds one to let a connect through). Without it the
    /// handler does not wait.
    #[doc(hidden)]
    pub fn hold_attaches(&self) -> Arc<Semaphore> {
        self.gate
            .get_or_init(|| Arc::new(Semaphore::new(0)))
            .clone()
    }

    /// Waits for a permit when a test holds attaches; at once otherwise.
    pub async fn before_attach(&self) {
        if let Some(gate) = self.gate.get() {
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::connection::test_conn as conn;

    #[test]
    fn a_socket_is_taken_once() {
        let a = Authenticated::default();
        let c = conn(0);
        a.hold(c.clone(), 0);
        assert!(Arc::ptr_eq(&a.take(c.sid).unwrap(), &c));
        assert!(a.take(c.sid).is_none());
        assert!(a.is_empty());
    }

    #[test]
    fn a_sweep_drops_old_strays_whatever_the_size() {
        let a = Authenticated::default();
        let (stray, young) = (conn(1_000), conn(5_000));
        a.hold(stray.clone(), 1_000);
        a.hold(young.clone(), 5_000);
        assert!(a.sweep(1_000 + STRAY_AFTER_MS - 1).is_empty());
        let dropped = a.sweep(1_000 + STRAY_AFTER_MS);
        assert_eq!(dropped.len(), 1);
        assert!(Arc::ptr_eq(&dropped[0], &stray));
        assert!(a.take(young.sid).is_some());
    }

    #[test]
    fn strays_are_dropped_once_the_map_is_large_and_they_are_old() {
        let a = Authenticated::default();
        let old = 1_000;
        let strays: Vec<_> = (0..SWEEP_FROM - 1).map(|_| conn(old)).collect();
        for s in &strays {
            a.hold(s.clone(), old);
        }
        // Old enough, but the map is below the threshold: nothing is looked at.
        let late = old + STRAY_AFTER_MS;
        a.hold(conn(late), late);
        assert_eq!(a.len(), SWEEP_FROM);
        // At the threshold, strays not yet old enough stay...
        let waiting = conn(late);
        a.hold(waiting.clone(), old + STRAY_AFTER_MS - 1);
        assert_eq!(a.len(), SWEEP_FROM + 1);
        // ...and the next look (the map has doubled since: it looked when
        // it held SWEEP_FROM) drops the strays.
        for _ in 0..SWEEP_FROM - 1 {
            a.hold(conn(late), late);
        }
        assert_eq!(a.len(), 2 * SWEEP_FROM);
        let dropped = a.hold(conn(late), late);
        assert_eq!(dropped.len(), strays.len(), "the strays are handed back");
        assert_eq!(
            a.len(),
            SWEEP_FROM + 2,
            "the strays are gone, the rest stay"
        );
        assert!(a.take(strays[0].sid).is_none());
        assert!(a.take(waiting.sid).is_some());
    }
}
