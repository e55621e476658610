// The partition test's workload, as a hospital's users and backend live it: users with socket.io-client sockets
// that acknowledge (at once, late or never), keep their session alive (or let it idle out), and reconnect to the
// next node whenever their socket goes; and a backend that sends notifications and user events to any node.
// Everything each side sees goes into the history (history.mjs).
import { rid, sleep } from '../helpers.mjs';

/** The fields of an event's payload the checker reads (never a notification's text). */
function summarize(event, p) {
  const out = {};
  if (!p || typeof p !== 'object') return out;
  const id = p.id ?? p.notificationId;
  if (id !== undefined && event !== 'connected') out.id = id;
  if (p.sessionId !== undefined) out.sessionId = p.sessionId;
  if (p.tag !== undefined) out.tag = p.tag;
  if (p.redelivered) out.redelivered = true;
  if (p.reminder !== undefined) out.reminder = p.reminder;
  if (p.escalation?.level !== undefined) out.level = p.escalation.level;
  if (event === 'notification_escalated' && p.level !== undefined) out.level = p.level;
  if (p.closedBy !== undefined) out.closedBy = p.closedBy;
  return out;
}

/**
 * One user: at most one socket at a time, opened on node `first` and then on the next node each time it goes.
 *   ack:    'fast' (within 200 ms), 'slow' (after `slowAckMs`, past the first escalation steps) or 'never'
 *   idle:   true: no activity, so the session expires (and the user logs in again with a new session)
 */
class User {
  constructor(fleet, { userId, role, ack, idle, first }) {
    Object.assign(this, { fleet, userId, role, ack, idle, next: first });
    this.sessionId = rid('ps');
    this.socket = null;
    this.stopped = false;
  }

  start() {
    this.loop = this.run();
  }

  async run() {
    while (!this.stopped) {
      const node = this.fleet.nodes[this.next++ % this.fleet.nodes.length];
      const why = await this.session(node);
      if (why === 'expired' || why === 'refused') this.sessionId = rid('ps');
      if (!this.stopped) await sleep(200 + Math.floor(Math.random() * 300));
    }
  }

  /** One socket's life on `node`; resolves with why it ended. */
  session(node) {
    const { history } = this.fleet;
    const sock = rid('sock');
    const token = this.fleet.cluster.token({ userId: this.userId, sessionId: this.sessionId, role: this.role }, { expiresIn: '2h' });
    history.add('open', { sock, userId: this.userId, sessionId: this.sessionId, role: this.role, node: node.nodeId });
    const c = node.open({ token, transports: ['websocket'], ioOpts: { reconnection: false, timeout: 3000 } });
    this.socket = c;
    const acked = new Set();
    let activity = null;
    return new Promise((resolve) => {
      let ended = false;
      const end = (reason, why) => {
        if (ended) return;
        ended = true;
        clearInterval(activity);
        history.add('close', { sock, reason });
        c.close();
        node.clients.delete(c);
        if (this.socket === c) this.socket = null;
        resolve(why);
      };
      c.socket.onAny((event, p) => {
        history.add('recv', { sock, event, ...summarize(event, p) });
        if (event === 'connected' && !this.idle) {
          activity = setInterval(() => c.socket.connected && c.socket.emit('activity'), 1000);
        }
        if (event === 'session_expired') setTimeout(() => end('session_expired', 'expired'), 100);
        if (event === 'critical_notification' && this.ack !== 'never' && p?.id && !acked.has(p.id)) {
          acked.add(p.id);
          const delay = this.ack === 'fast' ? Math.floor(Math.random() * 200) : this.fleet.slowAckMs;
          setTimeout(() => this.acknowledge(c, sock, p.id), delay);
        }
      });
      c.socket.on('connect_error', (e) => end(`connect_error: ${e.message}`, e.message === 'Authentication failed' ? 'refused' : 'error'));
      c.socket.on('disconnect', (reason) => end(reason, 'gone'));
      this.endSocket = () => end('stopped', 'stopped');
    });
  }

  async acknowledge(c, sock, id) {
    if (!c.socket.connected) return;
    const { history } = this.fleet;
    history.add('ack', { sock, userId: this.userId, id });
    try {
      const a = await c.socket.timeout(3000).emitWithAck('acknowledge_notification', { notificationId: id });
      history.add('ack_answer', { sock, userId: this.userId, id, ok: a?.ok === true, ...(a?.ok ? {} : { error: a?.error?.code }) });
    } catch (e) {
      history.add('ack_answer', { sock, userId: this.userId, id, ok: false, error: 'no answer' });
    }
  }

  async stop() {
    this.stopped = true;
    this.endSocket?.();
    await this.loop;
  }
}

/** The users of a run. `specs`: [{ userId, role, ack, idle }]. */
export class Fleet {
  constructor({ cluster, history, specs, slowAckMs }) {
    this.cluster = cluster;
    this.nodes = cluster.nodes;
    this.history = history;
    this.slowAckMs = slowAckMs;
    this.users = specs.map((s, i) => new User(this, { ...s, first: i }));
  }

  start() {
    for (const u of this.users) u.start();
  }

  async stop() {
    await Promise.all(this.users.map((u) => u.stop()));
  }

  /**
   * The final read: every user logs in once more, on a fresh session, and stays `ms` to be caught up with whatever
   * the faults kept from their earlier sockets (acknowledging as before).
   */
  async catchUp(ms) {
    await this.stop();
    const again = this.users.map((u, i) => {
      const v = new User(this, { userId: u.userId, role: u.role, ack: u.ack, idle: false, first: i });
      v.stopped = true; // one socket, no reconnecting
      return v;
    });
    const lives = again.map((u) => u.session(this.nodes[u.next % this.nodes.length]));
    await sleep(ms);
    for (const u of again) u.endSocket?.();
    await Promise.all(lives);
  }
}

/**
 * The backend: every `everyMs` one notification (critical with probability `criticalShare`) to a random user of
 * `userIds`, through the next node, and every fifth tick one user event; each call and its answer (0: none within
 * `timeoutMs`) in the history. stop() resolves once every call has answered or timed out.
 */
export function backend({ cluster, history, userIds, everyMs = 100, criticalShare = 0.3, timeoutMs = 4000 }) {
  const inflight = new Set();
  let tick = 0;
  // the answer, or status 0 when none came within timeoutMs (the call may still have been stored: never promised)
  const call = (fn) => {
    let timer;
    const timeout = new Promise((r) => (timer = setTimeout(() => r({ status: 0 }), timeoutMs)));
    return Promise.race([fn().catch(() => ({ status: 0 })), timeout]).finally(() => clearTimeout(timer));
  };
  const timer = setInterval(() => {
    const node = cluster.nodes[tick % cluster.nodes.length];
    const userId = userIds[Math.floor(Math.random() * userIds.length)];
    const n = tick++;
    let p;
    if (n % 5 === 4) {
      const tag = rid('tag');
      p = call(() => node.api('POST', `/api/v1/users/${encodeURIComponent(userId)}/events`, { event: 'partition_ping', data: { tag } })).then((r) =>
        history.add('user_event', { node: node.nodeId, userId, tag, status: r.status }),
      );
    } else {
      const id = rid('pn');
      const severity = Math.random() < criticalShare ? 'critical' : 'routine';
      p = call(() => node.notify(userId, { id, severity, title: 'Partition test finding' })).then((r) =>
        history.add('notify', { node: node.nodeId, userId, id, severity, status: r.status }),
      );
    }
    inflight.add(p);
    p.finally(() => inflight.delete(p));
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.allSettled([...inflight]);
    },
  };
}
