// Covers sessions: warning/expired routes, extend_session, the sessions API, and idle logoff with short real timeouts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid, TS_RE, sleep, eventually } from '../helpers.mjs';

const FAILED = 'Authentication failed';

describe('session routes and events', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  /** user with two tabs in session S1 (polling + websocket) and one tab in S2 */
  async function setup() {
    const userId = rid('u');
    const s1 = rid('s1');
    const s2 = rid('s2');
    const t1 = srv.token({ userId, sessionId: s1, role: 'radiologist' });
    const t2 = srv.token({ userId, sessionId: s2, role: 'radiologist' });
    const a = await srv.connect({ token: t1, transports: ['polling'] });
    const b = await srv.connect({ token: t1, transports: ['websocket'] });
    const c = await srv.connect({ token: t2 });
    return { userId, s1, s2, t1, t2, a, b, c, close: () => [a, b, c].forEach((x) => x.close()) };
  }

  it('session-warning reaches only that session\'s sockets', async () => {
    const x = await setup();
    try {
      const r = await srv.api('POST', `/api/v1/users/${x.userId}/session-warning`, { sessionId: x.s1, timeRemaining: 60000 });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 2);
      for (const s of [x.a, x.b]) {
        const w = await s.waitFor('session_timeout_warning');
        assert.equal(w.sessionId, x.s1);
        assert.equal(w.timeRemaining, 60000);
        assert.match(w.timestamp, TS_RE);
      }
      assert.deepEqual(await x.c.none('session_timeout_warning', 300), []);
    } finally {
      x.close();
    }
  });

  it('session-warning for a session with no socket -> 202 deliveredTo 0', async () => {
    const r = await srv.api('POST', `/api/v1/users/${rid('u')}/session-warning`, { sessionId: rid('s'), timeRemaining: 1000 });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.body.deliveredTo, 0);
  });

  it('session-warning with bad body -> 400', async () => {
    const u = rid('u');
    for (const body of [{}, { sessionId: 's' }, { timeRemaining: 5 }, { sessionId: true, timeRemaining: 5 }, { sessionId: 's', timeRemaining: -5 }, { sessionId: 's', timeRemaining: 'soon' }]) {
      const r = await srv.api('POST', `/api/v1/users/${u}/session-warning`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.status}`);
    }
  });

  it('session-expired: session_expired then disconnect for that session (polling too); other session survives; reconnect refused', async () => {
    const x = await setup();
    try {
      const r = await srv.api('POST', `/api/v1/users/${x.userId}/session-expired`, { sessionId: x.s1 });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 2);
      for (const s of [x.a, x.b]) {
        const e = await s.waitFor('session_expired');
        assert.equal(e.sessionId, x.s1);
        assert.match(e.timestamp, TS_RE);
        const reason = await s.waitFor('disconnect', 3000);
        assert.equal(reason, 'io server disconnect');
        const order = s.names();
        assert.ok(order.indexOf('session_expired') < order.indexOf('disconnect'), order.join(','));
      }
      assert.deepEqual(await x.c.none('session_expired', 300), []);
      assert.equal(x.c.connected, true);
      const n = await srv.notify(x.userId, { title: 'still here' });
      assert.equal(n.body.deliveredTo, 1);
      assert.equal((await x.c.waitFor('critical_notification')).title, 'still here');

      assert.equal(await srv.connectError({ token: x.t1 }), FAILED);
      assert.equal(await srv.connectError({ token: x.t1, transports: ['websocket'] }), FAILED);
      // a brand new token for the expired session is refused too
      assert.equal(await srv.connectError({ token: srv.token({ userId: x.userId, sessionId: x.s1, role: 'radiologist' }) }), FAILED);
      // the other session still connects
      const again = await srv.connect({ token: x.t2 });
      again.close();
      await eventually(async () => (await srv.api('GET', `/api/v1/users/${x.userId}`)).body.connections === 1, 3000);
    } finally {
      x.close();
    }
  });

  it('session-expired with no socket connected: 202 deliveredTo 0 and the session stays expired', async () => {
    const id = srv.identity();
    const r = await srv.api('POST', `/api/v1/users/${id.userId}/session-expired`, { sessionId: id.sessionId });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.body.deliveredTo, 0);
    assert.equal(await srv.connectError({ token: id.token }), FAILED);
  });

  it('extend_session -> ack {ok, sessionId, extendedAt} and session_extended to every socket of the session', async () => {
    const x = await setup();
    try {
      const res = await x.b.emitAck('extend_session', { sessionId: x.s1 });
      assert.equal(res.ok, true, JSON.stringify(res));
      assert.equal(res.sessionId, x.s1);
      assert.match(res.extendedAt, TS_RE);
      for (const s of [x.a, x.b]) {
        assert.deepEqual(await s.waitFor('session_extended'), { sessionId: x.s1, extendedAt: res.extendedAt });
      }
      assert.deepEqual(await x.c.none('session_extended', 300), []);
    } finally {
      x.close();
    }
  });

  it('extend_session with a foreign sessionId -> forbidden, nothing sent', async () => {
    const x = await setup();
    try {
      const res = await x.a.emitAck('extend_session', { sessionId: x.s2 });
      assert.equal(res.ok, false);
      assert.equal(res.error.code, 'forbidden');
      const res2 = await x.a.emitAck('extend_session', { sessionId: rid('nobody') });
      assert.equal(res2.error?.code, 'forbidden');
      assert.deepEqual(await x.c.none('session_extended', 300), []);
      assert.equal(x.a.connected, true);
    } finally {
      x.close();
    }
  });

  it('GET /api/v1/sessions/{id} -> {sessionId, userId, lastActivity, expiresAt, sockets}', async () => {
    const x = await setup();
    try {
      const r = await srv.api('GET', `/api/v1/sessions/${x.s1}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.sessionId, x.s1);
      assert.equal(r.body.userId, x.userId);
      assert.match(r.body.lastActivity, TS_RE);
      assert.match(r.body.expiresAt, TS_RE);
      assert.ok(Date.parse(r.body.expiresAt) > Date.now() + 10 * 60_000, 'default idle timeout 15m');
      const n = Array.isArray(r.body.sockets) ? r.body.sockets.length : r.body.sockets;
      assert.equal(n, 2);
      const nf = await srv.api('GET', `/api/v1/sessions/${rid('none')}`);
      assert.equal(nf.status, 404, nf.text);
    } finally {
      x.close();
    }
  });

  it('POST /api/v1/sessions/{id}/activity moves lastActivity and expiresAt', async () => {
    const x = await setup();
    try {
      const before = (await srv.api('GET', `/api/v1/sessions/${x.s1}`)).body;
      await sleep(50);
      const r = await srv.api('POST', `/api/v1/sessions/${x.s1}/activity`);
      assert.ok(r.status >= 200 && r.status < 300, `${r.status} ${r.text}`);
      const after = (await srv.api('GET', `/api/v1/sessions/${x.s1}`)).body;
      assert.ok(Date.parse(after.lastActivity) > Date.parse(before.lastActivity), `${before.lastActivity} -> ${after.lastActivity}`);
      assert.ok(Date.parse(after.expiresAt) > Date.parse(before.expiresAt));
    } finally {
      x.close();
    }
  });

  it('a client `activity` event moves lastActivity too', async () => {
    const x = await setup();
    try {
      const before = (await srv.api('GET', `/api/v1/sessions/${x.s1}`)).body;
      await sleep(50);
      assert.deepEqual(await x.a.emitAck('activity'), { ok: true });
      const after = (await srv.api('GET', `/api/v1/sessions/${x.s1}`)).body;
      assert.ok(Date.parse(after.lastActivity) > Date.parse(before.lastActivity));
    } finally {
      x.close();
    }
  });

  it('POST /api/v1/sessions/{id}/extend -> session_extended to the session\'s sockets', async () => {
    const x = await setup();
    try {
      const r = await srv.api('POST', `/api/v1/sessions/${x.s1}/extend`);
      assert.ok(r.status >= 200 && r.status < 300, `${r.status} ${r.text}`);
      for (const s of [x.a, x.b]) {
        const e = await s.waitFor('session_extended');
        assert.equal(e.sessionId, x.s1);
        assert.match(e.extendedAt, TS_RE);
      }
      assert.deepEqual(await x.c.none('session_extended', 300), []);
    } finally {
      x.close();
    }
  });

  it('DELETE /api/v1/sessions/{id} logs out: session_expired + disconnect, reconnect refused', async () => {
    const x = await setup();
    try {
      const r = await srv.api('DELETE', `/api/v1/sessions/${x.s1}`);
      assert.ok(r.status >= 200 && r.status < 300, `${r.status} ${r.text}`);
      for (const s of [x.a, x.b]) {
        assert.equal((await s.waitFor('session_expired')).sessionId, x.s1);
        assert.equal(await s.waitFor('disconnect'), 'io server disconnect');
      }
      assert.equal(x.c.connected, true);
      assert.equal(await srv.connectError({ token: x.t1 }), FAILED);
    } finally {
      x.close();
    }
  });

  it('session routes need the API key', async () => {
    const id = srv.identity();
    for (const [m, p] of [
      ['GET', `/api/v1/sessions/${id.sessionId}`],
      ['POST', `/api/v1/sessions/${id.sessionId}/activity`],
      ['POST', `/api/v1/sessions/${id.sessionId}/extend`],
      ['DELETE', `/api/v1/sessions/${id.sessionId}`],
      ['POST', `/api/v1/users/${id.userId}/session-expired`],
    ]) {
      const r = await srv.api(m, p, m === 'POST' ? { sessionId: id.sessionId } : undefined, { key: null });
      assert.equal(r.status, 401, `${m} ${p}`);
    }
    // nothing happened: the session still connects
    const c = await srv.connect({ token: id.token });
    c.close();
  });
});

describe('idle logoff (HERALD_SESSION_IDLE_TIMEOUT=3s, WARNING_BEFORE=1s)', () => {
  let srv;
  before(async () => {
    srv = await startServer({ HERALD_SESSION_IDLE_TIMEOUT: '3s', HERALD_SESSION_WARNING_BEFORE: '1s', HERALD_PING_INTERVAL: '400ms', HERALD_PING_TIMEOUT: '2s' });
  });
  after(async () => {
    await srv?.stop();
  });

  it('an idle session gets one warning, then session_expired and disconnect on every tab', async () => {
    const id = srv.identity();
    const start = Date.now();
    const a = await srv.connect({ token: id.token });
    const b = await srv.connect({ token: id.token, transports: ['polling'] });
    try {
      const w = await a.waitFor('session_timeout_warning', 4000);
      const wAt = Date.now() - start;
      assert.equal(w.sessionId, id.sessionId);
      assert.ok(w.timeRemaining > 0 && w.timeRemaining <= 1000, `timeRemaining ${w.timeRemaining}`);
      assert.match(w.timestamp, TS_RE);
      assert.ok(wAt >= 1500, `warning too early: ${wAt}ms`);
      await b.waitFor('session_timeout_warning', 1000);
      for (const s of [a, b]) {
        const e = await s.waitFor('session_expired', 3000);
        assert.equal(e.sessionId, id.sessionId);
        assert.equal(await s.waitFor('disconnect', 2000), 'io server disconnect');
      }
      const eAt = Date.now() - start;
      assert.ok(eAt >= 2500 && eAt < 5500, `expired at ${eAt}ms`);
      assert.equal(a.all('session_timeout_warning').length, 1, 'warning once');
      assert.equal(b.all('session_timeout_warning').length, 1, 'warning once');
      assert.equal(await srv.connectError({ token: id.token }), FAILED);
    } finally {
      a.close();
      b.close();
    }
  });

  it('`activity` from one tab keeps another tab of the same session alive', async () => {
    const id = srv.identity();
    const other = srv.identity(); // a different, idle session as the control
    const a = await srv.connect({ token: id.token });
    const b = await srv.connect({ token: id.token, transports: ['websocket'] });
    const ctl = await srv.connect({ token: other.token });
    try {
      const until = Date.now() + 4500;
      while (Date.now() < until) {
        assert.deepEqual(await a.emitAck('activity'), { ok: true });
        await sleep(700);
      }
      assert.equal(b.connected, true);
      assert.deepEqual(b.all('session_expired'), []);
      assert.deepEqual(b.all('session_timeout_warning'), []);
      assert.equal(a.connected, true);
      // the control session idled out meanwhile
      assert.equal(ctl.all('session_expired').length, 1);
      assert.equal(ctl.connected, false);
      // once activity stops the session does expire
      await b.waitFor('session_timeout_warning', 3500);
      await b.waitFor('session_expired', 2500);
      await a.waitFor('session_expired', 1000);
    } finally {
      a.close();
      b.close();
      ctl.close();
    }
  });

  it('extend_session resets the idle clock', async () => {
    const id = srv.identity();
    const a = await srv.connect({ token: id.token });
    try {
      await a.waitFor('session_timeout_warning', 4000);
      const res = await a.emitAck('extend_session', { sessionId: id.sessionId });
      assert.equal(res.ok, true);
      await a.waitFor('session_extended');
      // would have expired ~1s after the warning; after extend it lives ~3s more
      await sleep(1500);
      assert.equal(a.connected, true);
      assert.deepEqual(a.all('session_expired'), []);
      await a.waitFor('session_expired', 3000);
    } finally {
      a.close();
    }
  });

  it('acknowledging a notification counts as activity', async () => {
    const id = srv.identity();
    const a = await srv.connect({ token: id.token });
    try {
      const nid = (await srv.notify(id.userId, { id: rid('n'), title: 'x' })).body.notification.id;
      await a.waitFor('critical_notification');
      await sleep(1500);
      const ack = await a.emitAck('acknowledge_notification', { notificationId: nid, userId: id.userId });
      assert.equal(ack.ok, true);
      await sleep(1800); // 3.3 s since connect, 1.8 s since the ack
      assert.equal(a.connected, true);
      assert.deepEqual(a.all('session_expired'), []);
    } finally {
      a.close();
    }
  });

  it('refresh_token counts as activity', async () => {
    const id = srv.identity();
    const a = await srv.connect({ token: id.token });
    try {
      await sleep(1500);
      const res = await a.emitAck('refresh_token', { token: srv.token({ userId: id.userId, sessionId: id.sessionId, role: id.role }) });
      assert.equal(res.ok, true, JSON.stringify(res));
      await sleep(1800); // 3.3 s since connect, 1.8 s since the refresh
      assert.equal(a.connected, true);
      assert.deepEqual(a.all('session_expired'), []);
    } finally {
      a.close();
    }
  });

  it('a new connection of the session counts as activity', async () => {
    const id = srv.identity();
    const a = await srv.connect({ token: id.token });
    try {
      await sleep(1500);
      const b = await srv.connect({ token: id.token });
      b.close();
      await sleep(1800); // 3.3 s since the first connect, 1.8 s since the second
      assert.equal(a.connected, true);
      assert.deepEqual(a.all('session_expired'), []);
    } finally {
      a.close();
    }
  });

  it('engine.io pings (every 400ms here) do not count as activity', async () => {
    const id = srv.identity();
    const a = await srv.connect({ token: id.token, transports: ['websocket'] });
    try {
      await a.waitFor('session_expired', 4500);
    } finally {
      a.close();
    }
    await eventually(async () => (await srv.api('GET', `/api/v1/users/${id.userId}`)).body.connections === 0);
  });
});
