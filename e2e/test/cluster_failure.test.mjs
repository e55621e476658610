// Cluster mode, node failure: a node killed with SIGKILL (no goodbye) drops out of every answer within
// HERALD_CLUSTER_NODE_TIMEOUT (3 s here); what was sent to its users is caught up on another node;
// presence turns offline; the node rejoins when started again.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rid } from '../helpers.mjs';
import { startCluster, waitRecorded, waitExit } from '../cluster.mjs';

const NODE_TIMEOUT_MS = 3000;
const GRACE_MS = 1000;
// process start, poll period and scheduling on a loaded CI machine
const SLACK_MS = 3000;

describe('node failure (HERALD_CLUSTER_NODE_TIMEOUT=3s)', () => {
  let cl;
  before(async () => {
    cl = await startCluster({
      nodes: 3,
      env: { HERALD_CLUSTER_NODE_TIMEOUT: '3s', HERALD_PRESENCE_GRACE: '1s', HERALD_PING_INTERVAL: '1s', HERALD_PING_TIMEOUT: '2s' },
    });
  });
  after(async () => {
    await cl?.stop();
  });

  async function ensureAllRunning() {
    for (const n of cl.nodes) if (!n.running) await cl.restart(n);
    await cl.converged();
  }

  it('kill -9 node b: its sockets leave every answer within the node timeout; the others stay', async () => {
    await ensureAllRunning();
    const only = cl.identity(); // one socket, on b
    const spread = cl.identity(); // sockets on a and b
    const o = await cl.b.connect({ token: only.token, transports: ['websocket'] });
    const s1 = await cl.a.connect({ token: spread.token });
    const s2 = await cl.b.connect({ token: spread.token, transports: ['polling'] });
    try {
      await cl.waitCount(only.userId, 1);
      await cl.waitCount(spread.userId, 2);
      const killedAt = Date.now();
      await cl.kill9(cl.b);
      const survivors = [cl.a, cl.c];
      await cl.waitCount(only.userId, 0, NODE_TIMEOUT_MS + SLACK_MS, survivors);
      await cl.waitCount(spread.userId, 1, NODE_TIMEOUT_MS + SLACK_MS, survivors);
      const took = Date.now() - killedAt;
      for (const node of survivors) {
        const all = await node.api('GET', '/api/v1/users');
        assert.equal(all.status, 200, all.text);
        assert.ok(!all.body.users.includes(only.userId), `${node.nodeId} still lists ${only.userId}: ${all.text}`);
        assert.ok(all.body.users.includes(spread.userId), all.text);
        const one = await node.api('GET', `/api/v1/users/${only.userId}`);
        assert.equal(one.body.connected, false, one.text);
        const sess = await node.api('GET', `/api/v1/users/${spread.userId}/sessions`);
        assert.deepEqual(sess.body.sessions.map((x) => x.node), ['node-a'], `${node.nodeId}: ${sess.text}`);
      }
      // the survivor's socket still gets its notifications, counted once
      const r = await cl.c.notify(spread.userId, { title: 'after the crash' });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 1, r.text);
      assert.equal((await s1.waitFor('critical_notification')).title, 'after the crash');
      assert.ok(took <= NODE_TIMEOUT_MS + SLACK_MS, `took ${took}ms`);
    } finally {
      [o, s1, s2].forEach((s) => s.close());
    }
  });

  it('what was sent while the user\'s only socket was on the dead node is caught up on another node', async () => {
    await ensureAllRunning();
    const id = cl.identity();
    const s = await cl.b.connect({ token: id.token });
    try {
      await cl.waitCount(id.userId, 1);
      await cl.kill9(cl.b);
      // sent at once: the registry may still list the dead socket
      const r1 = await cl.a.notify(id.userId, { id: rid('during'), title: 'during' });
      assert.equal(r1.status, 202, r1.text);
      await cl.waitCount(id.userId, 0, NODE_TIMEOUT_MS + SLACK_MS, [cl.a, cl.c]);
      // sent after the dead node left: nobody to hand it to
      const r2 = await cl.c.notify(id.userId, { id: rid('after'), title: 'after' });
      assert.equal(r2.status, 202, r2.text);
      assert.equal(r2.body.deliveredTo, 0, r2.text);
      const again = await cl.c.connect({ token: id.token });
      try {
        const got = await again.waitForN('critical_notification', 2, 5000);
        assert.deepEqual(got.map((n) => n.id), [r1.body.notification.id, r2.body.notification.id]);
        for (const n of got) assert.strictEqual(n.redelivered, true, JSON.stringify(n));
        assert.deepEqual(await again.none('critical_notification', 400), [], 'each once');
      } finally {
        again.close();
      }
    } finally {
      s.close();
    }
  });

  it('presence: a user whose only socket was on a killed node goes offline (event and GET /presence)', async () => {
    await ensureAllRunning();
    const role = rid('role');
    const watcher = await cl.a.connect({ token: cl.token({ userId: rid('w'), sessionId: rid('s'), role }) });
    const subjectId = rid('subject');
    const sub = await watcher.emitAck('presence_subscribe', { userIds: [subjectId] });
    assert.equal(sub?.ok, true, JSON.stringify(sub));
    const s = await cl.c.connect({ token: cl.token({ userId: subjectId, sessionId: rid('s'), role }) });
    try {
      await waitRecorded(watcher, 'presence', (p) => p?.userId === subjectId && p.status === 'online', 5000);
      const killedAt = Date.now();
      await cl.kill9(cl.c);
      const off = await waitRecorded(watcher, 'presence', (p) => p?.userId === subjectId && p.status === 'offline', NODE_TIMEOUT_MS + GRACE_MS + SLACK_MS);
      const took = Date.now() - killedAt;
      assert.ok(took >= GRACE_MS - 200, `offline only after the grace: ${took}ms`);
      const p = await cl.a.api('GET', `/api/v1/presence?userIds=${subjectId}`);
      assert.equal(p.status, 200, p.text);
      assert.equal(p.body.presence[0].status, 'offline', p.text);
      assert.equal(p.body.presence[0].connections, 0, p.text);
      assert.ok(Math.abs(Date.parse(p.body.presence[0].since) - Date.parse(off.at)) < 1000, `since ${p.body.presence[0].since} vs at ${off.at}`);
    } finally {
      watcher.close();
      s.close();
    }
  });

  it('a killed node started again rejoins: its sockets are counted and reached from the other nodes', async () => {
    for (const n of cl.nodes) if (!n.running) await cl.restart(n);
    await cl.converged();
    const id = cl.identity();
    const sb = await cl.b.connect({ token: id.token });
    const sc = await cl.c.connect({ token: id.token, transports: ['websocket'] });
    try {
      await cl.waitCount(id.userId, 2);
      const r = await cl.a.notify(id.userId, { title: 'welcome back' });
      assert.equal(r.body.deliveredTo, 2, r.text);
      for (const s of [sb, sc]) assert.equal((await s.waitFor('critical_notification')).title, 'welcome back');
      assert.deepEqual(await sb.none('critical_notification', 400), []);
    } finally {
      sb.close();
      sc.close();
    }
  });

  it('a node stopped with SIGTERM says goodbye: its sockets leave the answers, the others keep serving', async () => {
    await ensureAllRunning();
    const id = cl.identity();
    const sa = await cl.a.connect({ token: id.token });
    const sc = await cl.c.connect({ token: id.token });
    try {
      await cl.waitCount(id.userId, 2);
      const stoppedAt = Date.now();
      await waitExit(cl.c.proc, 'SIGTERM', 10_000);
      const reason = await sc.waitFor('disconnect', 5000);
      assert.ok(['io server disconnect', 'transport close', 'transport error'].includes(reason), reason);
      await cl.waitCount(id.userId, 1, NODE_TIMEOUT_MS + SLACK_MS, [cl.a, cl.b]);
      assert.ok(Date.now() - stoppedAt <= NODE_TIMEOUT_MS + SLACK_MS);
      const r = await cl.b.notify(id.userId, { title: 'c is gone' });
      assert.equal(r.body.deliveredTo, 1, r.text);
      assert.equal((await sa.waitFor('critical_notification')).title, 'c is gone');
    } finally {
      sa.close();
      sc.close();
    }
  });
});
