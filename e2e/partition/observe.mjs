// Figures of a partition history that are no invariant but that an operator should know: how long notifications
// took to reach their user, and how many were missed by a socket of that user that stayed connected (they came
// only with a later connection's catch-up: a notification sent through a node cut from Redis is stored and answered
// 202, but the nodes holding the user's sockets never hear of it, and no one hands it to those sockets later).

/**
 * { arrivals: { count, p50, p99, max } (ms from the 202 answer to the first arrival), stalled (how many), stalledArrivedAfterMs:
 * { min, max }, stalledExamples }.
 */
export function observe(ops, { stayedMs = 5000 } = {}) {
  const socks = new Map();
  const life = new Map(); // sock -> { from, to }
  const first = new Map(); // userId \0 id -> recv op
  const got = new Set(); // sock \0 id
  for (const o of ops) {
    if (o.type === 'open') socks.set(o.sock, o);
    else if (o.type === 'recv' && o.event === 'connected') life.set(o.sock, { from: o.at, to: null });
    else if (o.type === 'close' && life.has(o.sock)) life.get(o.sock).to = o.at;
    else if (o.type === 'recv' && o.event === 'critical_notification') {
      const key = `${socks.get(o.sock)?.userId}\0${o.id}`;
      if (!first.has(key)) first.set(key, o);
      got.add(`${o.sock}\0${o.id}`);
    }
  }
  const end = ops.length ? ops[ops.length - 1].at : 0;
  const lat = [];
  const stalled = [];
  for (const o of ops) {
    if (o.type !== 'notify' || o.status !== 202) continue;
    const f = first.get(`${o.userId}\0${o.id}`);
    if (f) lat.push(Math.max(0, f.at - o.at));
    for (const [sock, { from, to }] of life) {
      const s = socks.get(sock);
      if (s.userId !== o.userId || from > o.at - 500 || (to ?? end) < o.at + stayedMs || got.has(`${sock}\0${o.id}`)) continue;
      stalled.push({ id: o.id, userId: o.userId, via: o.node, socketOn: s.node, connectedAfterMs: (to ?? end) - o.at, arrivedAfterMs: f ? f.at - o.at : null });
      break;
    }
  }
  lat.sort((a, b) => a - b);
  const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)] : null);
  const late = stalled.map((x) => x.arrivedAfterMs).filter((x) => x !== null);
  return {
    arrivals: { count: lat.length, p50: pct(50), p99: pct(99), max: lat.at(-1) ?? null },
    stalled: stalled.length,
    stalledArrivedAfterMs: late.length ? { min: Math.min(...late), max: Math.max(...late) } : null,
    stalledExamples: stalled.slice(0, 5),
  };
}
