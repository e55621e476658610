// Cluster mode, sessions: one idle clock per session across nodes (3 s idle timeout, warning 1 s before),
// one warning and one expiry per socket, expiry and extension from any node.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rid, TS_RE, sleep } from '../helpers.mjs';
import { startCluster } from '../cluster.mjs';

const FAILED = 'Authentication failed';

describe('sessions across nodes (HERALD_SESSION_IDLE_TIMEOUT=3s, WARNING_BEFORE=1s)', () => {
  let cl;
  before(async () => {
    cl = await startCluster({
      nodes: 3,
      env: { HERALD_SESSION_IDLE_TIMEOUT: '3s', HERALD_SESSION_WARNING_BEFORE: '1s', HERALD_PING_INTERVAL: '500ms', HERALD_PING_TIMEOUT: '2s' },
    });
  });
  after(async () => {
    await cl?.stop();
  });

  it('activity on node a keeps the socket on node b alive; once it stops: one warning and one expiry per socket; reconnect on c refused', async () => {
    const id = cl.identity();
    const ctlId = cl.identity(); // an idle session on node b: the clock does run there
    const a = await cl.a.connect({ token: id.token });
    const b = await cl.b.connect({ token: id.token, transports: ['websocket'] });
    const ctl = await cl.b.connect({ token: ctlId.token });
    try {
      const until = Date.now() + 4500;
      while (Date.now() < until) {
        assert.deepEqual(await a.emitAck('activity'), { ok: true });
        await sleep(600);
      }
      assert.equal(b.connected, true, JSON.stringify(b.summary()));
      assert.deepEqual(b.all('session_timeout_warning'), [], 'activity on a reached the clock b reads');
      assert.deepEqual(b.all('session_expired'), []);
      assert.equal(a.connected, true);
      assert.equal(ctl.all('session_expired').length, 1, `control session expired meanwhile: ${JSON.stringify(ctl.summary())}`);

      // activity stops: the warning, then the expiry, once on each socket
      const stopped = Date.now();
      for (const s of [a, b]) {
        const w = await s.waitFor('session_timeout_warning', 4000);
        assert.equal(w.sessionId, id.sessionId);
        assert.ok(w.timeRemaining > 0 && w.timeRemaining <= 1000, `timeRemaining ${w.timeRemaining}`);
        assert.match(w.timestamp, TS_RE);
      }
      for (const s of [a, b]) {
        const e = await s.waitFor('session_expired', 3000);
        assert.equal(e.sessionId, id.sessionId);
        assert.equal(await s.waitFor('disconnect', 3000), 'io server disconnect');
        const order = s.names();
        assert.ok(order.indexOf('session_expired') < order.indexOf('disconnect'), order.join(','));
      }
      const at = Date.now() - stopped;
      assert.ok(at < 4500, `expired ${at}ms after the last activity (idle timeout 3s)`);
      await sleep(700); // a second node's duplicate would come now
      for (const s of [a, b]) {
        assert.equal(s.all('session_timeout_warning').length, 1, `one warning per socket: ${JSON.stringify(s.summary())}`);
        assert.equal(s.all('session_expired').length, 1, `one expiry per socket: ${JSON.stringify(s.summary())}`);
      }
      for (const node of [cl.c, cl.a]) assert.equal(await node.connectError({ token: id.token }), FAILED, node.nodeId);
      const fresh = cl.token({ userId: id.userId, sessionId: id.sessionId, role: id.role });
      assert.equal(await cl.c.connectError({ token: fresh, transports: ['websocket'] }), FAILED, 'a new token for the expired session');
    } finally {
      [a, b, ctl].forEach((s) => s.close());
    }
  });

  it('an idle session with sockets on three nodes: one warning, one expiry per socket, on time', async () => {
    const id = cl.identity();
    const start = Date.now();
    const socks = [
      await cl.a.connect({ token: id.token }),
      await cl.b.connect({ token: id.token, transports: ['polling'] }),
      await cl.c.connect({ token: id.token, transports: ['websocket'] }),
    ];
    try {
      const w = await socks[0].waitFor('session_timeout_warning', 4000);
      const wAt = Date.now() - start;
      assert.ok(wAt >= 1500, `warning too early: ${wAt}ms`);
      for (const s of socks.slice(1)) assert.equal((await s.waitFor('session_timeout_warning', 1500)).sessionId, id.sessionId);
      for (const s of socks) {
        assert.equal((await s.waitFor('session_expired', 3000)).sessionId, id.sessionId);
        assert.equal(await s.waitFor('disconnect', 2000), 'io server disconnect');
      }
      const eAt = Date.now() - start;
      assert.ok(eAt >= 2500 && eAt < 5500, `expired at ${eAt}ms`);
      assert.equal(typeof w.timeRemaining, 'number');
      await sleep(700);
      for (const s of socks) {
        assert.equal(s.all('session_timeout_warning').length, 1, JSON.stringify(s.summary()));
        assert.equal(s.all('session_expired').length, 1, JSON.stringify(s.summary()));
      }
      for (const node of cl.nodes) {
        const g = await node.api('GET', `/api/v1/sessions/${id.sessionId}`);
        assert.equal(g.status, 404, `${node.nodeId}: ${g.text}`);
      }
    } finally {
      socks.forEach((s) => s.close());
    }
  });

  it('backend activity posted on node c keeps sockets on a and b alive, and every node reads the same lastActivity', async () => {
    const id = cl.identity();
    const a = await cl.a.connect({ token: id.token });
    const b = await cl.b.connect({ token: id.token });
    try {
      await cl.waitCount(id.userId, 2);
      let last;
      const until = Date.now() + 4000;
      while (Date.now() < until) {
        const r = await cl.c.api('POST', `/api/v1/sessions/${id.sessionId}/activity`);
        assert.equal(r.status, 200, r.text);
        last = r.body.lastActivity;
        await sleep(600);
      }
      for (const s of [a, b]) {
        assert.equal(s.connected, true, JSON.stringify(s.summary()));
        assert.deepEqual(s.all('session_expired'), []);
        assert.deepEqual(s.all('session_timeout_warning'), []);
      }
      for (const node of cl.nodes) {
        const g = await node.api('GET', `/api/v1/sessions/${id.sessionId}`);
        assert.equal(g.status, 200, `${node.nodeId}: ${g.text}`);
        assert.ok(Date.parse(g.body.lastActivity) >= Date.parse(last), `${node.nodeId}: lastActivity ${g.body.lastActivity} < ${last}`);
        assert.equal(g.body.sockets.length, 2, `${node.nodeId}: ${g.text}`);
      }
    } finally {
      a.close();
      b.close();
    }
  });

  it('extend_session on node b closes the warning on node a too and resets the shared clock', async () => {
    const id = cl.identity();
    const a = await cl.a.connect({ token: id.token });
    const b = await cl.b.connect({ token: id.token });
    try {
      await a.waitFor('session_timeout_warning', 4000);
      await b.waitFor('session_timeout_warning', 1500);
      const res = await b.emitAck('extend_session', { sessionId: id.sessionId });
      assert.equal(res.ok, true, JSON.stringify(res));
      for (const s of [a, b]) assert.deepEqual(await s.waitFor('session_extended', 3000), { sessionId: id.sessionId, extendedAt: res.extendedAt });
      // without the extension the session would have expired ~1s after the warning
      await sleep(1500);
      for (const s of [a, b]) {
        assert.equal(s.connected, true, JSON.stringify(s.summary()));
        assert.deepEqual(s.all('session_expired'), []);
      }
      for (const s of [a, b]) await s.waitFor('session_expired', 3000);
      await sleep(500);
      for (const s of [a, b]) assert.equal(s.all('session_timeout_warning').length, 2, 'one warning per idle period');
    } finally {
      a.close();
      b.close();
    }
  });

  it('POST /users/{u}/session-expired on node c expires a session whose sockets are on a and b', async () => {
    const id = cl.identity();
    const a = await cl.a.connect({ token: id.token, transports: ['polling'] });
    const b = await cl.b.connect({ token: id.token });
    const other = await cl.b.connect({ token: cl.token({ userId: id.userId, sessionId: rid('s2'), role: id.role }) });
    try {
      await cl.waitCount(id.userId, 3);
      const r = await cl.c.api('POST', `/api/v1/users/${id.userId}/session-expired`, { sessionId: id.sessionId });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 2, r.text);
      for (const s of [a, b]) {
        const e = await s.waitFor('session_expired', 3000);
        assert.equal(e.sessionId, id.sessionId);
        assert.match(e.timestamp, TS_RE);
        assert.equal(await s.waitFor('disconnect', 3000), 'io server disconnect');
      }
      assert.equal(other.connected, true);
      assert.deepEqual(await other.none('session_expired', 300), []);
      for (const node of cl.nodes) assert.equal(await node.connectError({ token: id.token }), FAILED, node.nodeId);
      await cl.waitCount(id.userId, 1);
    } finally {
      [a, b, other].forEach((s) => s.close());
    }
  });
});
