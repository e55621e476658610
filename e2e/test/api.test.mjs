// The HTTP API: API key auth, 400/404/413 bodies, presence routes, disconnecting a user, and the unauthenticated ops routes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid, TS_RE, eventually } from '../helpers.mjs';

function assertErrorBody(r, status) {
  assert.equal(r.status, status, `${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(typeof r.body, 'object', `error body is JSON: ${r.text.slice(0, 300)}`);
  assert.equal(typeof r.body.error?.code, 'string', r.text.slice(0, 300));
  assert.equal(typeof r.body.error?.message, 'string', r.text.slice(0, 300));
}

describe('HTTP API', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  it('presence: GET /api/v1/users counts distinct users; /users/{id}; /users/{id}/sessions', async () => {
    // first test on this server: nobody else connected
    const empty = await srv.api('GET', '/api/v1/users');
    assert.equal(empty.status, 200, empty.text);
    assert.deepEqual(empty.body, { count: 0, users: [] });

    const a = srv.identity({ role: 'radiologist' });
    const b = srv.identity({ role: 'tech' });
    const a1 = await srv.connect({ token: a.token });
    const a2 = await srv.connect({ token: srv.token({ userId: a.userId, sessionId: rid('s'), role: 'radiologist' }), transports: ['websocket'] });
    const b1 = await srv.connect({ token: b.token, transports: ['polling'] });
    try {
      const all = await srv.api('GET', '/api/v1/users');
      assert.equal(all.body.count, 2);
      assert.deepEqual([...all.body.users].sort(), [a.userId, b.userId].sort());

      const ua = await srv.api('GET', `/api/v1/users/${a.userId}`);
      assert.deepEqual(ua.body, { userId: a.userId, connected: true, connections: 2 });
      const un = await srv.api('GET', `/api/v1/users/${rid('nobody')}`);
      assert.equal(un.status, 200);
      assert.equal(un.body.connected, false);
      assert.equal(un.body.connections, 0);

      const s = await srv.api('GET', `/api/v1/users/${a.userId}/sessions`);
      assert.equal(s.status, 200, s.text);
      assert.equal(s.body.sessions.length, 2);
      const ids = s.body.sessions.map((x) => x.socketId).sort();
      assert.deepEqual(ids, [a1.connectedPayload.socketId, a2.connectedPayload.socketId].sort());
      for (const x of s.body.sessions) {
        assert.equal(typeof x.sessionId, 'string');
        assert.equal(x.role, 'radiologist');
        assert.match(x.connectedAt, TS_RE);
        assert.match(x.lastActivity, TS_RE);
        assert.ok(['polling', 'websocket'].includes(x.transport), x.transport);
      }
      assert.ok(s.body.sessions.some((x) => x.sessionId === a.sessionId));
      const sb = await srv.api('GET', `/api/v1/users/${b.userId}/sessions`);
      assert.equal(sb.body.sessions[0].transport, 'polling');
      const sn = await srv.api('GET', `/api/v1/users/${rid('nobody')}/sessions`);
      assert.equal(sn.status, 200);
      assert.deepEqual(sn.body.sessions, []);
    } finally {
      a1.close();
      a2.close();
      b1.close();
    }
    await eventually(async () => (await srv.api('GET', '/api/v1/users')).body.count === 0, 3000);
  });

  it('DELETE /api/v1/users/{id}/connections -> {disconnected}; the sockets disconnect; the user may reconnect', async () => {
    const a = srv.identity();
    const other = srv.identity();
    const a1 = await srv.connect({ token: a.token });
    const a2 = await srv.connect({ token: a.token, transports: ['polling'] });
    const o = await srv.connect({ token: other.token });
    try {
      const r = await srv.api('DELETE', `/api/v1/users/${a.userId}/connections?reason=admin_logout`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { disconnected: 2 });
      assert.equal(await a1.waitFor('disconnect'), 'io server disconnect');
      assert.equal(await a2.waitFor('disconnect'), 'io server disconnect');
      assert.equal(o.connected, true);
      const u = await srv.api('GET', `/api/v1/users/${a.userId}`);
      assert.equal(u.body.connections, 0);
      const none = await srv.api('DELETE', `/api/v1/users/${rid('x')}/connections`);
      assert.equal(none.status, 200);
      assert.deepEqual(none.body, { disconnected: 0 });
      const again = await srv.connect({ token: a.token });
      again.close();
    } finally {
      a1.close();
      a2.close();
      o.close();
    }
  });

  it('401 without a key, with a wrong key, or a wrong scheme; and nothing changes', async () => {
    const a = srv.identity();
    const c = await srv.connect({ token: a.token });
    try {
      const attempts = [
        { key: null },
        { key: 'wrong-key' },
        { key: null, headers: { authorization: `Basic ${srv.apiKey}` } },
        { key: null, headers: { authorization: srv.apiKey } },
        { key: srv.apiKey + 'x' },
        { key: srv.apiKey.slice(0, -1) },
      ];
      for (const opt of attempts) {
        for (const [m, p, body] of [
          ['POST', `/api/v1/users/${a.userId}/notifications`, { id: rid('x'), t: 1 }],
          ['POST', '/api/v1/notifications', { userIds: [a.userId], notification: { t: 1 } }],
          ['POST', '/api/v1/events', { event: 'hello', data: 1 }],
          ['POST', `/api/v1/roles/${a.role}/events`, { event: 'hello', data: 1 }],
          ['POST', `/api/v1/users/${a.userId}/events`, { event: 'hello', data: 1 }],
          ['POST', `/api/v1/users/${a.userId}/session-warning`, { sessionId: a.sessionId, timeRemaining: 1 }],
          ['POST', `/api/v1/users/${a.userId}/session-expired`, { sessionId: a.sessionId }],
          ['DELETE', `/api/v1/users/${a.userId}/connections`],
          ['GET', '/api/v1/users'],
          ['GET', `/api/v1/users/${a.userId}`],
          ['GET', `/api/v1/users/${a.userId}/sessions`],
          ['GET', `/api/v1/users/${a.userId}/notifications`],
        ]) {
          const r = await srv.api(m, p, body, opt);
          assert.equal(r.status, 401, `${m} ${p} with ${JSON.stringify(opt)} -> ${r.status}`);
        }
      }
      assert.deepEqual(await c.none('critical_notification', 300), []);
      assert.deepEqual(c.all('hello'), []);
      assert.equal(c.connected, true);
      const list = await srv.api('GET', `/api/v1/users/${a.userId}/notifications`);
      assert.deepEqual(list.body.notifications, []);
    } finally {
      c.close();
    }
  });

  it('both configured API keys work', async () => {
    for (const key of srv.apiKeys) {
      const r = await srv.api('GET', '/api/v1/users', undefined, { key });
      assert.equal(r.status, 200);
    }
  });

  it('400 with {error:{code,message}} for malformed JSON and wrong types', async () => {
    const u = rid('u');
    assertErrorBody(await srv.api('POST', `/api/v1/users/${u}/notifications`, '{"title": ', { raw: true }), 400);
    assertErrorBody(await srv.api('POST', `/api/v1/users/${u}/notifications`, 'not json at all', { raw: true }), 400);
    assertErrorBody(await srv.api('POST', `/api/v1/users/${u}/notifications`, '', { raw: true }), 400);
    for (const body of [[1, 2], 'string', 42, null, true]) {
      assertErrorBody(await srv.api('POST', `/api/v1/users/${u}/notifications`, body), 400);
    }
    assertErrorBody(await srv.api('POST', '/api/v1/notifications', '{"userIds": [', { raw: true }), 400);
    assertErrorBody(await srv.api('POST', '/api/v1/notifications', { userIds: [], notification: {} }), 400);
    assertErrorBody(await srv.api('POST', '/api/v1/notifications', { userIds: Array.from({ length: 10_001 }, (_, i) => `u${i}`), notification: {} }), 400);
    assertErrorBody(await srv.api('POST', '/api/v1/events', { event: ['x'] }), 400);
    assertErrorBody(await srv.api('POST', `/api/v1/users/${u}/session-warning`, { sessionId: 's', timeRemaining: 'x' }), 400);
    assertErrorBody(await srv.api('POST', `/api/v1/users/${u}/session-expired`, {}), 400);
    const list = await srv.api('GET', `/api/v1/users/${u}/notifications`);
    assert.deepEqual(list.body.notifications, []);
  });

  it('413 for a body over 1 MB; just under 1 MB is accepted', async () => {
    const u = rid('u');
    const big = await srv.api('POST', `/api/v1/users/${u}/notifications`, { title: 'big', blob: 'x'.repeat(1_100_000) });
    assert.equal(big.status, 413, big.text.slice(0, 200));
    const bigB = await srv.api('POST', '/api/v1/notifications', { userIds: [u], notification: { blob: 'x'.repeat(1_100_000) } });
    assert.equal(bigB.status, 413);
    const list = await srv.api('GET', `/api/v1/users/${u}/notifications`);
    assert.deepEqual(list.body.notifications, []);
    const ok = await srv.api('POST', `/api/v1/users/${u}/notifications`, { title: 'fits', blob: 'x'.repeat(900_000) });
    assert.equal(ok.status, 202, ok.text.slice(0, 200));
  });

  it('404 for unknown notifications and unknown routes under /api/v1', async () => {
    assertErrorBody(await srv.api('GET', `/api/v1/notifications/${rid('nope')}`), 404);
    assertErrorBody(await srv.api('GET', `/api/v1/users/${rid('u')}/notifications/${rid('nope')}`), 404);
    const r = await srv.api('GET', '/api/v1/no-such-route');
    assert.equal(r.status, 404);
  });

  it('GET /healthz and /readyz without a key', async () => {
    const h = await srv.api('GET', '/healthz', undefined, { key: null });
    assert.equal(h.status, 200);
    const r = await srv.api('GET', '/readyz', undefined, { key: null });
    assert.equal(r.status, 200, r.text);
  });

  it('GET /metrics is Prometheus text without a key', async () => {
    // generate some traffic first
    const a = srv.identity();
    const c = await srv.connect({ token: a.token });
    await srv.notify(a.userId, { t: 1 });
    await c.waitFor('critical_notification');
    c.close();
    await srv.connectError({ token: 'garbage' });
    const m = await srv.api('GET', '/metrics', undefined, { key: null });
    assert.equal(m.status, 200);
    assert.match(m.headers.get('content-type') || '', /^text\/plain/);
    assert.match(m.text, /^# (HELP|TYPE) /m);
    assert.match(m.text, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [0-9.eE+-]+$/m);
    assert.ok(!m.text.includes(a.token), 'no token in metrics');
  });

  it('GET /api/v1/openapi.json is an OpenAPI document listing the routes, without a key', async () => {
    const r = await srv.api('GET', '/api/v1/openapi.json', undefined, { key: null });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') || '', /application\/json/);
    assert.equal(typeof r.body, 'object');
    assert.match(String(r.body.openapi), /^3\./);
    // normalise: servers may carry the /api/v1 prefix, parameter names may differ
    const norm = (x) => x.replace(/^\/api\/v1/, '').replace(/\{[^}]+\}/g, '{}');
    const paths = Object.keys(r.body.paths || {}).map(norm);
    for (const p of [
      '/api/v1/users/{userId}/notifications',
      '/api/v1/notifications',
      '/api/v1/notifications/{id}',
      '/api/v1/roles/{role}/events',
      '/api/v1/events',
      '/api/v1/users',
      '/api/v1/users/{userId}',
      '/api/v1/users/{userId}/sessions',
      '/api/v1/users/{userId}/connections',
      '/api/v1/users/{userId}/session-warning',
      '/api/v1/users/{userId}/session-expired',
    ]) {
      assert.ok(paths.includes(norm(p)), `openapi lacks ${p}; has ${paths.join(', ')}`);
    }
  });
});
