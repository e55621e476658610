// Cluster mode: start-up rules, one smoke per node, cluster-wide answers, delivery exactly once across
// three nodes, acknowledgements, role/all/user events, disconnect and logout on every node.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rid, TS_RE, eventually, startServer } from '../helpers.mjs';
import { startCluster, startRedis, createDatabase, runToExit, readyz, waitReady } from '../cluster.mjs';

const FAILED = 'Authentication failed';

describe('cluster start-up rules', () => {
  it('REDIS_URL without a PostgreSQL DATABASE_URL refuses to start, naming both settings', async () => {
    const redis = await startRedis();
    try {
      const r = await runToExit({ REDIS_URL: redis.url, DATABASE_URL: null, JWT_SECRET: randomBytes(24).toString('base64url'), HERALD_API_KEYS: randomBytes(24).toString('base64url') });
      assert.equal(r.exited, true, `herald kept running with REDIS_URL and no DATABASE_URL:\n${r.log.slice(-2000)}`);
      assert.notEqual(r.code, 0, `exit code ${r.code}\n${r.log.slice(-2000)}`);
      assert.match(r.log, /REDIS_URL/, r.log.slice(-2000));
      assert.match(r.log, /DATABASE_URL/, r.log.slice(-2000));
    } finally {
      await redis.stop();
    }
  });

  it('DATABASE_URL alone (one node, no Redis) keeps the store in PostgreSQL across a restart', async () => {
    const db = createDatabase();
    let srv;
    try {
      srv = await startServer({ DATABASE_URL: db.url, REDIS_URL: null });
      const ready = await readyz(srv);
      assert.equal(ready.status, 200, ready.text);
      const id = srv.identity();
      const r = await srv.notify(id.userId, { id: rid('pg'), title: 'kept in postgres' });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 0);
      await srv.kill();
      // a new process, a new empty data dir: what survives is in PostgreSQL
      const again = await startServer({ DATABASE_URL: db.url, REDIS_URL: null }, { secret: srv.secret, apiKeys: srv.apiKeys });
      try {
        const c = await again.connect({ token: id.token });
        const n = await c.waitFor('critical_notification');
        assert.equal(n.id, r.body.notification.id);
        assert.strictEqual(n.redelivered, true);
      } finally {
        await again.stop();
      }
    } finally {
      await srv?.stop();
      db.drop();
    }
  });
});

describe('three nodes, one Redis, one PostgreSQL', () => {
  let cl;
  before(async () => {
    cl = await startCluster({ nodes: 3 });
  });
  after(async () => {
    await cl?.stop();
  });

  /** One user with a socket on each node: a (polling), b (websocket), c (default: polling then upgrade). */
  async function userOnAll(role = 'radiologist') {
    const userId = rid('u');
    const sessions = [rid('sa'), rid('sb'), rid('sc')];
    const transports = [['polling'], ['websocket'], undefined];
    const socks = [];
    for (let i = 0; i < 3; i++) {
      socks.push(await cl.nodes[i].connect({ token: cl.token({ userId, sessionId: sessions[i], role }), transports: transports[i] }));
    }
    await cl.waitCount(userId, 3);
    return { userId, sessions, socks, close: () => socks.forEach((s) => s.close()) };
  }

  async function noneMore(clients, event, ms = 400) {
    const extra = await Promise.all(clients.map((c) => c.none(event, ms)));
    assert.deepEqual(extra.map((x) => x.length), clients.map(() => 0), `no extra ${event}`);
  }

  it('each node on its own: readyz with redis ok, notify a local socket, acknowledge, read the state', async () => {
    for (const node of cl.nodes) {
      const ready = await readyz(node);
      assert.equal(ready.status, 200, ready.text);
      assert.equal(ready.body.redis, 'ok', ready.text);
      assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
      const id = cl.identity();
      const c = await node.connect({ token: id.token });
      try {
        assert.equal(c.connectedPayload.userId, id.userId);
        const r = await node.notify(id.userId, { id: rid('smoke'), title: `smoke ${node.nodeId}` });
        assert.equal(r.status, 202, r.text);
        assert.equal(r.body.deliveredTo, 1, `${node.nodeId}: ${r.text}`);
        assert.equal('partial' in r.body && r.body.partial, false, `${node.nodeId}: not partial while Redis is up: ${r.text}`);
        const n = await c.waitFor('critical_notification');
        assert.equal(n.title, `smoke ${node.nodeId}`);
        assert.equal(n.redelivered, undefined, `${node.nodeId}: delivered live, not by the catch-up`);
        const ack = await c.emitAck('acknowledge_notification', { notificationId: n.id });
        assert.equal(ack.ok, true, JSON.stringify(ack));
        await c.waitFor('notification_acknowledged');
        const g = await node.api('GET', `/api/v1/users/${id.userId}/notifications/${n.id}`);
        assert.equal(g.body.state, 'acknowledged', g.text);
      } finally {
        c.close();
      }
    }
  });

  it('GET /users, /users/{id}, /users/{id}/sessions, /sessions/{id}, /presence list sockets on every node, with their node', async () => {
    const u = await userOnAll();
    // a second socket of session 0, on node b: /sessions/{id} must list sockets of one session on two nodes
    const extra = await cl.b.connect({ token: cl.token({ userId: u.userId, sessionId: u.sessions[0], role: 'radiologist' }) });
    try {
      await cl.waitCount(u.userId, 4);
      const want = new Map([
        [u.socks[0].connectedPayload.socketId, 'node-a'],
        [u.socks[1].connectedPayload.socketId, 'node-b'],
        [u.socks[2].connectedPayload.socketId, 'node-c'],
        [extra.connectedPayload.socketId, 'node-b'],
      ]);
      for (const node of cl.nodes) {
        const all = await node.api('GET', '/api/v1/users');
        assert.equal(all.status, 200, all.text);
        assert.ok(all.body.users.includes(u.userId), `${node.nodeId}: ${all.text}`);
        assert.equal(all.body.users.filter((x) => x === u.userId).length, 1, 'a user is listed once');
        assert.equal(all.body.count, all.body.users.length);

        const one = await node.api('GET', `/api/v1/users/${u.userId}`);
        assert.equal(one.body.connected, true);
        assert.equal(one.body.connections, 4, `${node.nodeId}: ${one.text}`);

        const s = await node.api('GET', `/api/v1/users/${u.userId}/sessions`);
        assert.equal(s.status, 200, s.text);
        assert.equal(s.body.sessions.length, 4, `${node.nodeId}: ${s.text}`);
        for (const e of s.body.sessions) {
          assert.equal(e.node, want.get(e.socketId), `${node.nodeId}: socket ${e.socketId} on ${e.node}: ${s.text}`);
          assert.equal(e.role, 'radiologist');
          assert.match(e.connectedAt, TS_RE);
          assert.ok(['polling', 'websocket'].includes(e.transport), e.transport);
        }
        assert.deepEqual(s.body.sessions.map((e) => e.socketId).sort(), [...want.keys()].sort());
        const pollingOnA = s.body.sessions.find((e) => e.socketId === u.socks[0].connectedPayload.socketId);
        assert.equal(pollingOnA.transport, 'polling', 'the transport of a socket on another node');

        const sess = await node.api('GET', `/api/v1/sessions/${u.sessions[0]}`);
        assert.equal(sess.status, 200, sess.text);
        assert.equal(sess.body.userId, u.userId);
        assert.ok(Array.isArray(sess.body.sockets), sess.text);
        assert.deepEqual(
          sess.body.sockets.map((x) => [x.socketId, x.node]).sort(),
          [
            [u.socks[0].connectedPayload.socketId, 'node-a'],
            [extra.connectedPayload.socketId, 'node-b'],
          ].sort(),
          `${node.nodeId}: ${sess.text}`,
        );
        const sessC = await node.api('GET', `/api/v1/sessions/${u.sessions[2]}`);
        assert.deepEqual(sessC.body.sockets.map((x) => x.node), ['node-c'], sessC.text);

        const p = await node.api('GET', `/api/v1/presence?userIds=${encodeURIComponent(u.userId)}`);
        assert.equal(p.status, 200, p.text);
        assert.equal(p.body.presence.length, 1);
        assert.equal(p.body.presence[0].userId, u.userId);
        assert.equal(p.body.presence[0].status, 'online');
        assert.equal(p.body.presence[0].connections, 4, `${node.nodeId}: ${p.text}`);
      }
    } finally {
      extra.close();
      u.close();
    }
    await cl.waitCount(u.userId, 0);
    for (const node of cl.nodes) {
      const all = await node.api('GET', '/api/v1/users');
      assert.ok(!all.body.users.includes(u.userId), `${node.nodeId} still lists a user who left: ${all.text}`);
    }
  });

  it('a notification posted on any node reaches each socket of the user exactly once; deliveredTo counts all nodes', async () => {
    const u = await userOnAll();
    const other = await cl.b.connect({ token: cl.identity().token });
    try {
      const sent = [];
      for (const node of cl.nodes) {
        const r = await node.notify(u.userId, { id: rid('x'), title: `from ${node.nodeId}` });
        assert.equal(r.status, 202, r.text);
        assert.equal(r.body.deliveredTo, 3, `posted on ${node.nodeId}: ${r.text}`);
        sent.push(r.body.notification);
      }
      for (const s of u.socks) {
        const got = await s.waitForN('critical_notification', 3, 5000);
        assert.deepEqual(got.map((n) => n.id).sort(), sent.map((n) => n.id).sort());
        for (const n of got) {
          assert.equal('redelivered' in n, false, 'live, not catch-up');
          assert.equal(n.createdAt, sent.find((x) => x.id === n.id).createdAt);
        }
      }
      await noneMore([...u.socks, other], 'critical_notification');
    } finally {
      other.close();
      u.close();
    }
  });

  it('30 notifications posted at once, spread over the three nodes: each socket gets each one exactly once', async () => {
    const u = await userOnAll();
    try {
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => cl.nodes[i % 3].notify(u.userId, { id: rid(`burst${i}`), seq: i })),
      );
      for (const r of results) {
        assert.equal(r.status, 202, r.text);
        assert.equal(r.body.deliveredTo, 3, r.text);
      }
      const ids = results.map((r) => r.body.notification.id).sort();
      for (const s of u.socks) {
        const got = await s.waitForN('critical_notification', 30, 10_000);
        assert.deepEqual(got.map((n) => n.id).sort(), ids);
      }
      await noneMore(u.socks, 'critical_notification');
    } finally {
      u.close();
    }
  });

  it('posted on a node where the user has no socket: delivered to the sockets on the two others', async () => {
    const userId = rid('u');
    const s1 = await cl.a.connect({ token: cl.token({ userId, sessionId: rid('s'), role: 'tech' }) });
    const s2 = await cl.b.connect({ token: cl.token({ userId, sessionId: rid('s'), role: 'tech' }), transports: ['polling'] });
    try {
      await cl.waitCount(userId, 2);
      const r = await cl.c.notify(userId, { id: rid('far'), title: 'from c' });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 2, r.text);
      for (const s of [s1, s2]) assert.equal((await s.waitFor('critical_notification')).title, 'from c');
      await noneMore([s1, s2], 'critical_notification');
    } finally {
      s1.close();
      s2.close();
    }
  });

  it('POST /notifications (broadcast) on node c: per-user deliveredTo across nodes, each socket once', async () => {
    const u1 = rid('u1');
    const u2 = rid('u2');
    const u3 = rid('u3-offline');
    const a1 = await cl.a.connect({ token: cl.token({ userId: u1, sessionId: rid('s'), role: 'r' }) });
    const b2 = await cl.b.connect({ token: cl.token({ userId: u2, sessionId: rid('s'), role: 'r' }) });
    const c2 = await cl.c.connect({ token: cl.token({ userId: u2, sessionId: rid('s'), role: 'r' }), transports: ['websocket'] });
    try {
      await cl.waitCount(u2, 2);
      await cl.waitCount(u1, 1);
      const r = await cl.c.api('POST', '/api/v1/notifications', { userIds: [u1, u2, u3], notification: { id: rid('bc'), title: 'maintenance' } });
      assert.equal(r.status, 202, r.text);
      assert.deepEqual(
        r.body.results.map((x) => [x.userId, x.deliveredTo]),
        [
          [u1, 1],
          [u2, 2],
          [u3, 0],
        ],
        r.text,
      );
      for (const s of [a1, b2, c2]) assert.equal((await s.waitFor('critical_notification')).title, 'maintenance');
      await noneMore([a1, b2, c2], 'critical_notification');
      // the offline user catches up on any node
      const late = await cl.b.connect({ token: cl.token({ userId: u3, sessionId: rid('s'), role: 'r' }) });
      try {
        const n = await late.waitFor('critical_notification');
        assert.equal(n.title, 'maintenance');
        assert.strictEqual(n.redelivered, true);
      } finally {
        late.close();
      }
    } finally {
      [a1, b2, c2].forEach((s) => s.close());
    }
  });

  it('an acknowledgement on node a is heard as notification_acknowledged on b and c; new tabs do not get it again', async () => {
    const u = await userOnAll();
    try {
      const r = await cl.b.notify(u.userId, { id: rid('ack'), title: 'ack me' });
      assert.equal(r.body.deliveredTo, 3, r.text);
      const nid = r.body.notification.id;
      for (const s of u.socks) await s.waitFor('critical_notification');
      const ack = await u.socks[0].emitAck('acknowledge_notification', { notificationId: nid, userId: u.userId });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.match(ack.acknowledgedAt, TS_RE);
      for (const s of u.socks) {
        assert.deepEqual(await s.waitFor('notification_acknowledged', 5000), { notificationId: nid, acknowledgedAt: ack.acknowledgedAt });
      }
      // a second acknowledgement on c: same first time, nothing new heard anywhere
      const again = await u.socks[2].emitAck('acknowledge_notification', { notificationId: nid });
      assert.equal(again.acknowledgedAt, ack.acknowledgedAt);
      await noneMore(u.socks, 'notification_acknowledged');
      for (const node of cl.nodes) {
        const g = await node.api('GET', `/api/v1/users/${u.userId}/notifications/${nid}`);
        assert.equal(g.body.state, 'acknowledged', `${node.nodeId}: ${g.text}`);
        assert.equal(g.body.acknowledgedAt, ack.acknowledgedAt);
      }
      const tab = await cl.c.connect({ token: cl.token({ userId: u.userId, sessionId: rid('s'), role: 'radiologist' }) });
      try {
        assert.deepEqual(await tab.none('critical_notification', 400), [], 'an acknowledged notification is not caught up');
      } finally {
        tab.close();
      }
    } finally {
      u.close();
    }
  });

  it('role events, user events and all-events reach sockets on every node with an exact deliveredTo', async () => {
    // nobody else in the cluster: earlier tests' sockets have left every node's registry
    for (const node of cl.nodes) await eventually(async () => (await node.api('GET', '/api/v1/users')).body.count === 0, 10_000);
    const role = rid('role');
    const r1 = await cl.a.connect({ token: cl.token({ userId: rid('r1'), sessionId: rid('s'), role }) });
    const r2 = await cl.b.connect({ token: cl.token({ userId: rid('r2'), sessionId: rid('s'), role }), transports: ['polling'] });
    const r3 = await cl.c.connect({ token: cl.token({ userId: rid('r3'), sessionId: rid('s'), role }), transports: ['websocket'] });
    const u = rid('u');
    const u1 = await cl.b.connect({ token: cl.token({ userId: u, sessionId: rid('s'), role: 'other-role' }) });
    const u2 = await cl.c.connect({ token: cl.token({ userId: u, sessionId: rid('s'), role: 'other-role' }) });
    const everyone = [r1, r2, r3, u1, u2];
    try {
      await cl.waitCount(u, 2);
      for (const node of cl.nodes) await eventually(async () => (await node.api('GET', '/api/v1/users')).body.count === 4, 10_000);
      for (const node of cl.nodes) {
        const tag = `${node.nodeId}-${rid('t')}`;
        const re = await node.api('POST', `/api/v1/roles/${encodeURIComponent(role)}/events`, { event: 'worklist_updated', data: { tag } });
        assert.equal(re.status, 202, re.text);
        assert.equal(re.body.deliveredTo, 3, `role event on ${node.nodeId}: ${re.text}`);
        for (const s of [r1, r2, r3]) assert.deepEqual(await s.waitFor('worklist_updated'), { tag });

        const ue = await node.api('POST', `/api/v1/users/${u}/events`, { event: 'study_locked', data: { tag } });
        assert.equal(ue.body.deliveredTo, 2, `user event on ${node.nodeId}: ${ue.text}`);
        for (const s of [u1, u2]) assert.deepEqual(await s.waitFor('study_locked'), { tag });

        const ae = await node.api('POST', '/api/v1/events', { event: 'reload_config', data: { tag } });
        assert.equal(ae.body.deliveredTo, 5, `all-event on ${node.nodeId}: ${ae.text}`);
        for (const s of everyone) assert.deepEqual(await s.waitFor('reload_config'), { tag });
      }
      await noneMore(everyone, 'reload_config');
      await noneMore([r1, r2, r3], 'worklist_updated');
      await noneMore([u1, u2], 'worklist_updated', 0);
      await noneMore([r1, r2, r3], 'study_locked', 0);
    } finally {
      everyone.forEach((s) => s.close());
    }
  });

  it('DELETE /users/{id}/connections on node c closes the sockets on a and b; the session stays valid', async () => {
    const id = cl.identity();
    const s1 = await cl.a.connect({ token: id.token });
    const s2 = await cl.b.connect({ token: id.token, transports: ['polling'] });
    const bystander = await cl.a.connect({ token: cl.identity().token });
    try {
      await cl.waitCount(id.userId, 2);
      const r = await cl.c.api('DELETE', `/api/v1/users/${id.userId}/connections?reason=e2e`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.disconnected, 2, r.text);
      for (const s of [s1, s2]) assert.equal(await s.waitFor('disconnect', 5000), 'io server disconnect');
      assert.equal(bystander.connected, true);
      await cl.waitCount(id.userId, 0);
      const back = await cl.c.connect({ token: id.token });
      back.close();
    } finally {
      [s1, s2, bystander].forEach((s) => s.close());
    }
  });

  it('DELETE /sessions/{id} (logout) on node a ends the session\'s sockets on b and c; reconnects refused everywhere', async () => {
    const id = cl.identity();
    const s1 = await cl.b.connect({ token: id.token });
    const s2 = await cl.c.connect({ token: id.token, transports: ['websocket'] });
    const otherSession = await cl.c.connect({ token: cl.token({ userId: id.userId, sessionId: rid('s'), role: id.role }) });
    try {
      await cl.waitCount(id.userId, 3);
      const r = await cl.a.api('DELETE', `/api/v1/sessions/${id.sessionId}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.disconnected, 2, r.text);
      for (const s of [s1, s2]) {
        assert.equal((await s.waitFor('session_expired', 5000)).sessionId, id.sessionId);
        assert.equal(await s.waitFor('disconnect', 3000), 'io server disconnect');
      }
      assert.equal(otherSession.connected, true);
      assert.deepEqual(await otherSession.none('session_expired', 300), []);
      for (const node of cl.nodes) assert.equal(await node.connectError({ token: id.token }), FAILED, node.nodeId);
      for (const node of cl.nodes) {
        const g = await node.api('GET', `/api/v1/sessions/${id.sessionId}`);
        assert.equal(g.status, 404, `${node.nodeId}: ${g.text}`);
      }
    } finally {
      [s1, s2, otherSession].forEach((s) => s.close());
    }
  });

  it('session-warning on node c reaches the session\'s sockets on a and b once each', async () => {
    const id = cl.identity();
    const s1 = await cl.a.connect({ token: id.token });
    const s2 = await cl.b.connect({ token: id.token });
    try {
      await cl.waitCount(id.userId, 2);
      const r = await cl.c.api('POST', `/api/v1/users/${id.userId}/session-warning`, { sessionId: id.sessionId, timeRemaining: 60000 });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 2, r.text);
      for (const s of [s1, s2]) assert.equal((await s.waitFor('session_timeout_warning')).timeRemaining, 60000);
      await noneMore([s1, s2], 'session_timeout_warning');
    } finally {
      s1.close();
      s2.close();
    }
  });

  it('a user catches up on node b what was posted on node a while offline', async () => {
    const id = cl.identity();
    const ids = [];
    for (const node of [cl.a, cl.c, cl.a]) {
      const r = await node.notify(id.userId, { id: rid('off'), title: 'offline' });
      assert.equal(r.body.deliveredTo, 0, r.text);
      ids.push(r.body.notification.id);
    }
    const c = await cl.b.connect({ token: id.token });
    try {
      const got = await c.waitForN('critical_notification', 3, 5000);
      assert.deepEqual(got.map((n) => n.id), ids, 'oldest first');
      for (const n of got) assert.strictEqual(n.redelivered, true);
      assert.deepEqual(await c.none('critical_notification', 400), []);
    } finally {
      c.close();
    }
  });

  it('a node restarted with SIGTERM comes back ready and in the cluster', async () => {
    await cl.restart(cl.b);
    assert.equal((await waitReady(cl.b)).redis, 'ok');
    await cl.converged();
    const id = cl.identity();
    const s = await cl.b.connect({ token: id.token });
    try {
      await cl.waitCount(id.userId, 1);
      const r = await cl.a.notify(id.userId, { title: 'after restart' });
      assert.equal(r.body.deliveredTo, 1, r.text);
      assert.equal((await s.waitFor('critical_notification')).title, 'after restart');
    } finally {
      s.close();
    }
  });
});
