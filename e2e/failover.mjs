// Failover as users live it, shared by the failover e2e tests (a few hundred sockets) and the failover benchmark
// (bench/failover.mjs, ten thousand): a fleet of socket.io-client sockets with the client's own reconnection,
// connected through nginx (e2e/nginx.mjs) and spread over the nodes by their source address (the docs'
// upstream hashes the client address, and every 127.x.y.z is this machine), one user per socket, all in one
// role; then one node killed with SIGKILL or every node restarted in turn, and what the fleet saw recorded.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { rid, sleep } from './helpers.mjs';

/** The source address of socket `i`: nginx's ip_hash keys on the first three octets, so vary the third. */
export function sourceAddress(i) {
  return `127.0.${1 + (i % 250)}.1`;
}

/**
 * One socket per user, `count` of them in `role`, opened through `edge` `concurrency` at a time, websocket
 * only (no stickiness needed). `ioOpts` adds to the client's options (reconnection is on, with the client's
 * defaults unless given). Every member auto-acknowledges nothing; see `ackOnReceipt`.
 */
export async function openFleet(edge, cl, { count, role = rid('fleet-role'), ioOpts = {}, concurrency = 100, timeout = 20_000 }) {
  const members = [];
  for (let start = 0; start < count; start += concurrency) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + concurrency); i++) {
      const userId = rid(`f${i}`);
      const sessionId = rid(`fs${i}`);
      const token = cl.token({ userId, sessionId, role }, { expiresIn: '2h' });
      const c = edge.open({
        token,
        transports: ['websocket'],
        ioOpts: { reconnection: true, timeout: 10_000, localAddress: sourceAddress(i), ...ioOpts },
      });
      const m = { i, userId, sessionId, c };
      members.push(m);
      batch.push(c.ready(timeout));
    }
    await Promise.all(batch);
  }
  return members;
}

/** How many `event`s with `id` (in its data's `id` or `notificationId`) `m` has received so far. */
export function count(m, event, id) {
  return m.c.events.filter((e) => e.event === event && (e.args[0]?.id ?? e.args[0]?.notificationId) === id).length;
}

/** How many times `m` has had `connected` (its first connect and every reconnect). */
export function connects(m) {
  return m.c.events.filter((e) => e.event === 'connected').length;
}

/** The time of `m`'s `n`th event matching `pred`, or null. */
export function nthAt(m, n, pred) {
  const hits = m.c.events.filter(pred);
  return hits.length >= n ? hits[n - 1].at : null;
}

/**
 * Every member acknowledges each `critical_notification` as it arrives; the answer's arrival time is kept in
 * `m.acked` (notification id -> time), so that a later delivery of the same id to that socket is visible.
 */
export function ackOnReceipt(members) {
  for (const m of members) {
    m.acked = new Map();
    m.c.socket.on('critical_notification', (n) => {
      if (!n?.id || m.acked.has(n.id)) return;
      m.c.socket
        .timeout(10_000)
        .emitWithAck('acknowledge_notification', { notificationId: n.id })
        .then((a) => {
          if (a?.ok && !m.acked.has(n.id)) m.acked.set(n.id, Date.now());
        })
        .catch(() => {}); // the socket went away first: it is caught up again on reconnect
    });
  }
}

/** Deliveries of an acknowledged notification to the socket that had its acknowledgement answered before. */
export function redeliveredAfterAck(members) {
  const bad = [];
  for (const m of members) {
    for (const e of m.c.events) {
      if (e.event !== 'critical_notification') continue;
      const at = m.acked?.get(e.args[0]?.id);
      if (at !== undefined && e.at > at) bad.push({ userId: m.userId, id: e.args[0].id, after: e.at - at });
    }
  }
  return bad;
}

/** Poll `done()` every `every` ms until true or `ms` passed; returns whether it became true. */
export async function until(done, ms, every = 50) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (done()) return true;
    await sleep(every);
  }
  return done();
}

/** A process's CPU seconds so far (user + system), from /proc. */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop().trim().split(/\s+/);
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The total of Redis's per-command call counts (INFO commandstats) on `port`. */
export function redisCalls(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('redis INFO timed out'));
    }, 3000);
    s.on('connect', () => s.write('INFO commandstats\r\n'));
    s.on('data', (d) => {
      buf += d.toString();
      const m = buf.match(/^\$(\d+)\r\n/);
      if (m && Buffer.byteLength(buf) >= m[0].length + Number(m[1])) {
        clearTimeout(t);
        s.destroy();
        let total = 0;
        for (const line of buf.split('\r\n')) {
          const c = line.match(/^cmdstat_[^:]+:calls=(\d+)/);
          if (c) total += Number(c[1]);
        }
        resolve(total);
      }
    });
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** Nearest-rank percentile of `values` (0..100). */
export function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * A steady stream of notifications to `members` (round robin) through `edge` at `rate` per second, recording
 * each one's API-call-to-arrival latency on the member's socket by phase. `phase` is read at send time.
 * stop() ends it and resolves once every call has answered.
 */
export function steadyLoad(edge, members, rate, { title = 'steady load' } = {}) {
  // refused: answers other than 202 by status (0: no answer), which the backend would retry
  const state = { phase: 'baseline', sent: [], failed: 0, refused: {}, stopped: false };
  const refuse = (status) => {
    state.failed++;
    state.refused[status] = (state.refused[status] ?? 0) + 1;
  };
  const inflight = new Set();
  let next = 0;
  const timer = setInterval(() => {
    if (state.stopped) return;
    const m = members[next++ % members.length];
    const id = rid('load');
    const phase = state.phase;
    const at = Date.now();
    const p = edge
      .notify(m.userId, { id, title, severity: 'critical' })
      .then((r) => {
        if (r.status === 202) state.sent.push({ m, id, at, phase });
        else refuse(r.status);
      })
      .catch(() => refuse(0))
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }, 1000 / rate);
  state.stop = async () => {
    state.stopped = true;
    clearInterval(timer);
    await Promise.allSettled([...inflight]);
  };
  /** Latencies (ms) of the first arrival of each sent notification of `phase`; missing ones counted apart. */
  state.latencies = (phase) => {
    const out = { ms: [], missing: 0 };
    for (const s of state.sent.filter((x) => x.phase === phase)) {
      const e = s.m.c.events.find((ev) => ev.event === 'critical_notification' && ev.args[0]?.id === s.id);
      if (e) out.ms.push(e.at - s.at);
      else out.missing++;
    }
    return out;
  };
  return state;
}
