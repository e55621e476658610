// Cluster mode, Redis outage: this file's own redis-server is killed and started again on the same port.
// Down: each node serves its own sockets, /readyz says 200 "redis": "degraded", answers that need the other
// nodes say "partial": true. Back: the nodes rejoin without a restart within HERALD_CLUSTER_NODE_TIMEOUT.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rid, sleep } from '../helpers.mjs';
import { startCluster, readyz, waitReady, waitRecorded } from '../cluster.mjs';

const NODE_TIMEOUT_MS = 3000;
const SLACK_MS = 3000;

describe('Redis outage and return (HERALD_CLUSTER_NODE_TIMEOUT=3s)', () => {
  let cl;
  // sockets that live through the whole outage, one user per node
  const stay = [];
  before(async () => {
    cl = await startCluster({ nodes: 3, env: { HERALD_CLUSTER_NODE_TIMEOUT: '3s', HERALD_PING_INTERVAL: '1s', HERALD_PING_TIMEOUT: '2s' } });
    for (const node of cl.nodes) {
      const id = cl.identity();
      stay.push({ id, node, sock: await node.connect({ token: id.token, transports: ['websocket'] }) });
    }
    for (const s of stay) await cl.waitCount(s.id.userId, 1);
  });
  after(async () => {
    for (const s of stay) s.sock.close();
    await cl?.stop();
  });

  it('before: a notification posted on a reaches the socket on b', async () => {
    const r = await cl.a.notify(stay[1].id.userId, { title: 'cross-node before' });
    assert.equal(r.body.deliveredTo, 1, r.text);
    assert.equal((await stay[1].sock.waitFor('critical_notification')).title, 'cross-node before');
  });

  it('Redis down: /readyz 200 "redis": "degraded" on every node', async () => {
    await cl.redis.stop('SIGKILL');
    for (const node of cl.nodes) {
      const deadline = Date.now() + NODE_TIMEOUT_MS + SLACK_MS;
      let r;
      do {
        r = await readyz(node);
        if (r.status === 200 && r.body?.redis === 'degraded') break;
        assert.ok(r.status === 200 || r.status === 0 || r.body?.redis === 'ok', `${node.nodeId}: readyz ${r.status} while only Redis is down: ${r.text}`);
        await new Promise((res) => setTimeout(res, 100));
      } while (Date.now() < deadline);
      assert.equal(r.status, 200, `${node.nodeId}: ${r.text}`);
      assert.equal(r.body.redis, 'degraded', `${node.nodeId}: ${r.text}`);
      assert.match(r.text, /"redis"\s*:\s*"degraded"/);
    }
  });

  it('Redis down: each node keeps delivering to its own sockets (notifications, user events, acks); answers are partial', async () => {
    assert.equal(cl.redis.running, false);
    for (const [i, s] of stay.entries()) {
      const r = await s.node.notify(s.id.userId, { id: rid('local'), title: `local on ${s.node.nodeId}` });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 1, `${s.node.nodeId}: ${r.text}`);
      assert.strictEqual(r.body.partial, true, `${s.node.nodeId}: a notification answer without the other nodes is partial: ${r.text}`);
      const n = await s.sock.waitFor('critical_notification');
      assert.equal(n.title, `local on ${s.node.nodeId}`);

      const ev = await s.node.api('POST', `/api/v1/users/${s.id.userId}/events`, { event: 'local_ping', data: i });
      assert.equal(ev.status, 202, ev.text);
      assert.equal(ev.body.deliveredTo, 1, ev.text);
      assert.equal(await s.sock.waitFor('local_ping'), i);

      const ack = await s.sock.emitAck('acknowledge_notification', { notificationId: n.id });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.equal((await s.sock.waitFor('notification_acknowledged')).notificationId, n.id);
    }
  });

  it('Redis down: GET /users, /users/{id}, /users/{id}/sessions, /sessions/{id}, /presence list the node\'s own sockets, marked partial', async () => {
    assert.equal(cl.redis.running, false);
    const problems = [];
    const check = (ok, what) => ok || problems.push(what);
    for (const s of stay) {
      const n = s.node.nodeId;
      const socketId = s.sock.connectedPayload.socketId;
      const users = await s.node.api('GET', '/api/v1/users');
      check(users.status === 200 && users.body.partial === true, `${n} GET /users partial: ${users.text}`);
      check(users.body?.users?.includes(s.id.userId), `${n} GET /users lists its own socket's user: ${users.text}`);

      const one = await s.node.api('GET', `/api/v1/users/${s.id.userId}`);
      check(one.body?.connected === true && one.body?.connections === 1, `${n} GET /users/{id} counts its own socket: ${one.text}`);

      const sess = await s.node.api('GET', `/api/v1/users/${s.id.userId}/sessions`);
      check(sess.body?.sessions?.some((x) => x.socketId === socketId && x.node === n), `${n} GET /users/{id}/sessions: ${sess.text}`);

      const live = await s.node.api('GET', `/api/v1/sessions/${s.id.sessionId}`);
      check(live.status === 200 && live.body.sockets?.some((x) => x.socketId === socketId), `${n} GET /sessions/{id}: ${live.status} ${live.text}`);

      const p = await s.node.api('GET', `/api/v1/presence?userIds=${s.id.userId}`);
      check(p.body?.presence?.[0]?.status === 'online' && p.body.presence[0].connections === 1, `${n} GET /presence: ${p.text}`);
    }
    assert.deepEqual(problems, [], problems.join('\n'));
  });

  it('Redis down: a new socket on a node connects, catches up, and gets live notifications there', async () => {
    const id = cl.identity();
    const pending = await cl.b.notify(id.userId, { id: rid('pend'), title: 'stored while offline' });
    assert.equal(pending.status, 202, pending.text);
    const s = await cl.b.connect({ token: id.token });
    try {
      const n = await s.waitFor('critical_notification');
      assert.equal(n.title, 'stored while offline');
      assert.strictEqual(n.redelivered, true);
      const r = await cl.b.notify(id.userId, { title: 'live while degraded' });
      assert.equal(r.body.deliveredTo, 1, r.text);
      assert.equal((await s.waitFor('critical_notification')).title, 'live while degraded');
      const ack = await s.emitAck('acknowledge_notification', { notificationId: n.id });
      assert.equal(ack.ok, true, JSON.stringify(ack));
    } finally {
      s.close();
    }
  });

  // notifications posted during the outage on a node that cannot reach the user's socket
  const during = [];
  // a user whose presence stay[0]'s socket subscribed to during the outage
  const watched = rid('watched');

  it('Redis down: presence_subscribe answers from the node\'s own sockets, marked partial; the socket stays up', async () => {
    assert.equal(cl.redis.running, false);
    const [here] = stay;
    const r = await here.sock.emitAck('presence_subscribe', { userIds: [stay[0].id.userId, watched] });
    assert.equal(r?.ok, true, JSON.stringify(r));
    assert.strictEqual(r.partial, true, JSON.stringify(r));
    assert.deepEqual(r.presence.map((p) => [p.userId, p.status, p.connections]), [[stay[0].id.userId, 'online', 1], [watched, 'offline', 0]]);
    assert.equal(here.sock.connected, true);
  });

  it('Redis down: a notification for a socket on another node is stored, counted 0 and marked partial', async () => {
    assert.equal(cl.redis.running, false);
    for (const [i, s] of stay.entries()) {
      const from = cl.nodes[(i + 1) % 3];
      const r = await from.notify(s.id.userId, { id: rid('during'), title: `during the outage, from ${from.nodeId}` });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 0, `${from.nodeId} cannot reach ${s.node.nodeId}: ${r.text}`);
      assert.strictEqual(r.body.partial, true, r.text);
      during.push(r.body.notification.id);
    }
    const seen = await Promise.all(stay.map((s, i) => s.sock.none('critical_notification', 300).then((x) => x.filter((e) => e.args[0]?.id === during[i]))));
    assert.deepEqual(seen.map((x) => x.length), [0, 0, 0], 'not delivered live without Redis');
  });

  it('Redis back on the same port: readyz "ok" and cross-node answers and delivery again within the node timeout', async () => {
    await cl.redis.start();
    const back = Date.now();
    const limit = NODE_TIMEOUT_MS + SLACK_MS;
    await Promise.all(cl.nodes.map((n) => waitReady(n, { ms: limit, redis: 'ok' })));
    // the sockets that lived through the outage are known cluster-wide again (Redis came back empty)
    for (const s of stay) await cl.waitCount(s.id.userId, 1, Math.max(500, limit - (Date.now() - back)));
    const took = Date.now() - back;
    assert.ok(took <= limit, `rejoined after ${took}ms`);
    for (const node of cl.nodes) {
      const users = await node.api('GET', '/api/v1/users');
      assert.ok(!users.body.partial, `${node.nodeId}: not partial any more: ${users.text}`);
      for (const s of stay) assert.ok(users.body.users.includes(s.id.userId), `${node.nodeId}: ${users.text}`);
    }
    // what was posted during the outage for a socket on another node arrives on rejoin, as a catch-up, once
    for (const [i, s] of stay.entries()) {
      if (during[i] === undefined) continue; // the outage test did not get that far
      const n = await waitRecorded(s.sock, 'critical_notification', (x) => x?.id === during[i], limit);
      assert.strictEqual(n.redelivered, true, JSON.stringify(n));
    }
    // cross-node delivery, each way round
    for (const [i, s] of stay.entries()) {
      const from = cl.nodes[(i + 1) % 3];
      const title = `cross-node after, from ${from.nodeId}`;
      const r = await from.notify(s.id.userId, { title });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 1, `${from.nodeId} -> ${s.node.nodeId}: ${r.text}`);
      assert.ok(!r.body.partial, r.text);
      await waitRecorded(s.sock, 'critical_notification', (x) => x?.title === title, 5000);
    }
    await sleep(300);
    for (const [i, s] of stay.entries()) {
      const ids = s.sock.all('critical_notification').map((x) => x.id);
      assert.equal(new Set(ids).size, ids.length, `no notification twice on ${s.node.nodeId}'s socket: ${JSON.stringify(ids)}`);
      if (during[i] !== undefined) assert.ok(ids.includes(during[i]));
    }
    const all = await cl.c.api('POST', '/api/v1/events', { event: 'all_back' });
    assert.equal(all.body.deliveredTo, 3, `the three sockets that lived through the outage: ${all.text}`);
    for (const s of stay) await s.sock.waitFor('all_back');
  });

  it('Redis back: a presence subscription made during the outage hears a change on another node', async () => {
    const w = await cl.b.connect({ token: cl.token({ userId: watched, sessionId: rid('s'), role: 'radiologist' }) });
    const p = await waitRecorded(stay[0].sock, 'presence', (x) => x?.userId === watched, 5000);
    assert.equal(p.status, 'online');
    w.close();
  });
});
