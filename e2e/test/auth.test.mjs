// Authentication at connect: where the JWT is read from, the three exact connect_error messages, claims rules, and the `connected` event.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid, TS_RE, rawJwt, nowSec, eventually } from '../helpers.mjs';

const REQUIRED = 'Authentication token required';
const INVALID = 'Invalid authentication token';
const FAILED = 'Authentication failed';

describe('authentication at connect', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  const claims = () => ({ userId: rid('u'), sessionId: rid('s'), role: 'radiologist' });

  it('no token anywhere -> "Authentication token required"', async () => {
    assert.equal(await srv.connectError({}), REQUIRED);
    assert.equal(await srv.connectError({ auth: {} }), REQUIRED);
    assert.equal(await srv.connectError({ transports: ['websocket'] }), REQUIRED);
  });

  it('bad signature -> "Invalid authentication token"', async () => {
    const t = srv.token(claims(), { secret: 'not-the-secret' });
    assert.equal(await srv.connectError({ token: t }), INVALID);
  });

  it('expired token -> "Invalid authentication token"', async () => {
    const t = srv.token({ ...claims(), exp: nowSec() - 5 });
    assert.equal(await srv.connectError({ token: t }), INVALID);
  });

  it('token not yet valid (nbf in the future) -> "Invalid authentication token"', async () => {
    const t = srv.token({ ...claims(), nbf: nowSec() + 600 });
    assert.equal(await srv.connectError({ token: t }), INVALID);
  });

  it('alg none -> "Invalid authentication token"', async () => {
    const t = rawJwt({ alg: 'none', typ: 'JWT' }, { ...claims(), iat: nowSec(), exp: nowSec() + 3600 });
    assert.equal(await srv.connectError({ token: t }), INVALID);
    // "none" with an empty signature section removed entirely
    assert.equal(await srv.connectError({ token: t.slice(0, -1) }), INVALID);
  });

  it('HS512 token signed with the right secret is refused when HS256 is pinned', async () => {
    const t = srv.token(claims(), { algorithm: 'HS512' });
    assert.equal(await srv.connectError({ token: t }), INVALID);
  });

  it('a kid header does not select another key', async () => {
    const t = srv.token(claims(), { secret: 'attacker', header: { alg: 'HS256', kid: '../../dev/null' } });
    assert.equal(await srv.connectError({ token: t }), INVALID);
  });

  it('garbage tokens -> "Invalid authentication token"', async () => {
    for (const t of ['garbage', 'a.b.c', 'Bearer x', '...', '\u00e9\u00e9\u00e9']) {
      assert.equal(await srv.connectError({ token: t }), INVALID, `token ${JSON.stringify(t)}`);
    }
  });

  it('a token that is not a string -> refused with a contract message', async () => {
    const m = await srv.connectError({ auth: { token: 12345 } });
    assert.ok([INVALID, REQUIRED].includes(m), m);
  });

  it('valid token without sessionId -> "Authentication failed"', async () => {
    const { sessionId, ...c } = claims();
    assert.equal(await srv.connectError({ token: srv.token(c) }), FAILED);
  });

  it('valid token without role -> "Authentication failed"', async () => {
    const { role, ...c } = claims();
    assert.equal(await srv.connectError({ token: srv.token(c) }), FAILED);
  });

  it('valid token without userId or sub -> "Authentication failed"', async () => {
    const { userId, ...c } = claims();
    assert.equal(await srv.connectError({ token: srv.token(c) }), FAILED);
  });

  it('token without exp is refused (exp is required)', async () => {
    const t = srv.token(claims(), { expiresIn: null });
    const m = await srv.connectError({ token: t });
    assert.ok([INVALID, FAILED].includes(m), m);
  });

  it('token via auth.token: connected is the first event with {socketId, userId, timestamp}', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token });
    try {
      const evs = c.names().filter((n) => n !== 'connect');
      assert.equal(evs[0], 'connected');
      const p = c.connectedPayload;
      assert.equal(p.userId, id.userId);
      assert.equal(typeof p.socketId, 'string');
      assert.ok(p.socketId.length > 0);
      assert.equal(p.socketId, c.id, 'socketId is the Socket.IO socket id');
      assert.match(p.timestamp, TS_RE);
      assert.ok(Math.abs(Date.parse(p.timestamp) - Date.now()) < 10_000);
    } finally {
      c.close();
    }
  });

  it('token via query parameter `token`', async () => {
    const id = srv.identity();
    const c = await srv.connect({ query: { token: id.token } });
    assert.equal(c.connectedPayload.userId, id.userId);
    c.close();
    const w = await srv.connect({ query: { token: id.token }, transports: ['websocket'] });
    assert.equal(w.connectedPayload.userId, id.userId);
    w.close();
  });

  it('token via Authorization: Bearer header (polling)', async () => {
    const id = srv.identity();
    const c = await srv.connect({ transports: ['polling'], extraHeaders: { Authorization: `Bearer ${id.token}` } });
    assert.equal(c.connectedPayload.userId, id.userId);
    c.close();
  });

  it('token via Authorization: Bearer header (websocket)', async () => {
    const id = srv.identity();
    const c = await srv.connect({ transports: ['websocket'], extraHeaders: { Authorization: `Bearer ${id.token}` } });
    assert.equal(c.connectedPayload.userId, id.userId);
    c.close();
  });

  it('auth.token wins over query and header', async () => {
    const good = srv.identity();
    const bad = srv.token(claims(), { secret: 'wrong' });
    const c = await srv.connect({
      token: good.token,
      query: { token: bad },
      transports: ['polling'],
      extraHeaders: { Authorization: `Bearer ${bad}` },
    });
    assert.equal(c.connectedPayload.userId, good.userId);
    c.close();
  });

  it('numeric userId 42 shows as "42" (connected, rooms, API)', async () => {
    const userId = 4200000 + Math.floor(Math.random() * 99999);
    const t = srv.token({ userId, sessionId: rid('s'), role: 'radiologist' });
    const c = await srv.connect({ token: t });
    try {
      assert.strictEqual(c.connectedPayload.userId, String(userId));
      const r = await srv.notify(String(userId), { title: 'numeric' });
      assert.equal(r.status, 202);
      assert.equal(r.body.deliveredTo, 1);
      const n = await c.waitFor('critical_notification');
      assert.equal(n.title, 'numeric');
      const u = await srv.api('GET', `/api/v1/users/${userId}`);
      assert.strictEqual(u.body.userId, String(userId));
      assert.equal(u.body.connected, true);
      const all = await srv.api('GET', '/api/v1/users');
      assert.ok(all.body.users.includes(String(userId)), JSON.stringify(all.body));
    } finally {
      c.close();
    }
  });

  it('numeric sessionId is a string too', async () => {
    const userId = rid('u');
    const sessionId = 900000 + Math.floor(Math.random() * 99999);
    const c = await srv.connect({ token: srv.token({ userId, sessionId, role: 'radiologist' }) });
    try {
      const s = await srv.api('GET', `/api/v1/users/${userId}/sessions`);
      assert.equal(s.status, 200);
      assert.strictEqual(s.body.sessions[0].sessionId, String(sessionId));
    } finally {
      c.close();
    }
  });

  it('`sub` stands in for a missing userId', async () => {
    const sub = rid('sub');
    const c = await srv.connect({ token: srv.token({ sub, sessionId: rid('s'), role: 'tech' }) });
    try {
      assert.equal(c.connectedPayload.userId, sub);
      const r = await srv.notify(sub, { title: 'via sub' });
      assert.equal(r.body.deliveredTo, 1);
      assert.equal((await c.waitFor('critical_notification')).title, 'via sub');
    } finally {
      c.close();
    }
  });

  it('userId wins over sub', async () => {
    const userId = rid('u');
    const c = await srv.connect({ token: srv.token({ userId, sub: rid('sub'), sessionId: rid('s'), role: 'tech' }) });
    assert.equal(c.connectedPayload.userId, userId);
    c.close();
  });

  it('socket is in user:{userId} and role:{role} rooms from connect on', async () => {
    const role = rid('role');
    const id = srv.identity({ role });
    const c = await srv.connect({ token: id.token });
    try {
      const r1 = await srv.api('POST', `/api/v1/roles/${role}/events`, { event: 'hello_role', data: { a: 1 } });
      assert.equal(r1.status, 202);
      assert.equal(r1.body.deliveredTo, 1);
      assert.deepEqual(await c.waitFor('hello_role'), { a: 1 });
      const r2 = await srv.api('POST', `/api/v1/users/${id.userId}/events`, { event: 'hello_user', data: 'x' });
      assert.equal(r2.body.deliveredTo, 1);
      assert.equal(await c.waitFor('hello_user'), 'x');
    } finally {
      c.close();
    }
  });

  it('no broadcast reaches a socket before `connected`', async () => {
    const role = rid('race');
    let stop = false;
    let delivered = 0;
    const blaster = (async () => {
      let n = 0;
      while (!stop && n < 400) {
        const r = await srv.api('POST', `/api/v1/roles/${role}/events`, { event: 'noise', data: n++ });
        assert.equal(r.status, 202);
        delivered += r.body.deliveredTo;
      }
    })();
    try {
      for (let i = 0; i < 6; i++) {
        const id = srv.identity({ role });
        const c = await srv.connect({ token: id.token, transports: i % 2 ? ['websocket'] : undefined });
        const evs = c.names().filter((n) => n !== 'connect');
        assert.equal(evs[0], 'connected', `order: ${evs.slice(0, 5)}`);
        c.close();
      }
    } finally {
      stop = true;
      await blaster;
    }
    assert.ok(delivered > 0, 'the race was exercised: some noise reached connected sockets');
  });

  it('aud and iss are ignored when not configured', async () => {
    const c = await srv.connect({ token: srv.token({ ...claims(), aud: 'someone-else', iss: 'whoever' }) });
    c.close();
  });

  it('an event emitted right at connect is handled (handlers registered before CONNECT reply)', async () => {
    const id = srv.identity();
    const c = srv.open({ token: id.token, transports: ['websocket'] });
    const ack = new Promise((resolve, reject) => {
      c.socket.once('connect', () => {
        c.emitAck('activity', undefined, 3000).then(resolve, reject);
      });
    });
    try {
      assert.deepEqual(await ack, { ok: true });
    } finally {
      c.close();
    }
  });

  it('failed connects leave no trace in the API', async () => {
    const { sessionId, ...c } = claims();
    await srv.connectError({ token: srv.token(c) });
    const r = await srv.api('GET', `/api/v1/users/${c.userId}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.connected, false);
    assert.equal(r.body.connections, 0);
  });

  it('the precise refusal reason goes to the log and the metrics', async () => {
    await srv.connectError({});
    await srv.connectError({ token: srv.token({ ...claims(), exp: nowSec() - 5 }) });
    const id = srv.identity();
    await srv.api('POST', `/api/v1/users/${id.userId}/session-expired`, { sessionId: id.sessionId });
    assert.equal(await srv.connectError({ token: id.token }), FAILED);
    const m = (await srv.api('GET', '/metrics', undefined, { key: null })).text;
    for (const reason of ['token_missing', 'token_expired', 'session_expired']) {
      assert.match(m, new RegExp(`^[a-z_]+\\{[^}]*reason="${reason}"[^}]*\\} [1-9]`, 'm'), `metrics lack reason ${reason}`);
      assert.ok(srv.log.includes(reason), `log lacks reason ${reason}`);
    }
  });

  it('a user id that is an empty string is refused -> "Authentication failed"', async () => {
    assert.equal(await srv.connectError({ token: srv.token({ userId: '', sessionId: rid('s'), role: 'r' }) }), FAILED);
    assert.equal(await srv.connectError({ token: srv.token({ sub: '', sessionId: rid('s'), role: 'r' }) }), FAILED);
    assert.equal(await srv.connectError({ token: srv.token({ userId: rid('u'), sessionId: '', role: 'r' }) }), FAILED);
  });

  it('the log never contains the token', async () => {
    const id = srv.identity();
    const bad = srv.token(claims(), { secret: 'leak-check' });
    await srv.connectError({ token: bad });
    const c = await srv.connect({ token: id.token });
    c.close();
    await eventually(() => true);
    const sig = id.token.split('.')[2];
    assert.ok(!srv.log.includes(sig), 'token signature in log');
    assert.ok(!srv.log.includes(bad.split('.')[2]), 'bad token signature in log');
    assert.ok(!srv.log.includes(srv.secret), 'secret in log');
  });
});

describe('audience and issuer when configured', () => {
  let srv;
  before(async () => {
    srv = await startServer({ HERALD_JWT_AUDIENCE: 'herald-e2e', HERALD_JWT_ISSUER: 'pacs-e2e' });
  });
  after(async () => {
    await srv?.stop();
  });
  const claims = () => ({ userId: rid('u'), sessionId: rid('s'), role: 'radiologist' });

  it('matching aud and iss connect', async () => {
    const c = await srv.connect({ token: srv.token({ ...claims(), aud: 'herald-e2e', iss: 'pacs-e2e' }) });
    c.close();
  });

  it('missing or wrong aud / iss -> "Invalid authentication token"', async () => {
    const got = [];
    for (const extra of [{}, { aud: 'herald-e2e' }, { iss: 'pacs-e2e' }, { aud: 'other', iss: 'pacs-e2e' }, { aud: 'herald-e2e', iss: 'other' }]) {
      const m = await srv.connectError({ token: srv.token({ ...claims(), ...extra }) }).catch((e) => e.message);
      got.push(`${JSON.stringify(extra)} -> ${m}`);
    }
    assert.deepEqual(got.filter((g) => !g.endsWith(`-> ${INVALID}`)), [], got.join('; '));
  });
});
