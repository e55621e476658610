// Covers token lifetime on a live socket (token_expired at exp, refresh_token) and the `herald token` CLI.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, rid, TS_RE, sleep, nowSec, jwt, HERALD_BIN } from '../helpers.mjs';

const run = promisify(execFile);

describe('token expiry on a live socket', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  for (const transports of [['websocket'], ['polling']]) {
    it(`at exp the socket gets error {event:"token", code:"token_expired"} then disconnect (${transports})`, async () => {
      const userId = rid('u');
      const sessionId = rid('s');
      const exp = nowSec() + 2;
      const c = await srv.connect({ token: srv.token({ userId, sessionId, role: 'tech', exp }), transports });
      try {
        const e = await c.waitFor('error', 4000);
        const at = Date.now();
        assert.equal(e.event, 'token');
        assert.equal(e.code, 'token_expired');
        assert.equal(typeof e.message, 'string');
        assert.ok(at >= exp * 1000 - 50, `error ${exp * 1000 - at}ms before exp`);
        assert.ok(at <= exp * 1000 + 1500, `error ${at - exp * 1000}ms after exp`);
        assert.equal(await c.waitFor('disconnect', 2000), 'io server disconnect');
        const order = c.names();
        assert.ok(order.indexOf('error') < order.indexOf('disconnect'));
      } finally {
        c.close();
      }
    });
  }

  it('refresh_token with a fresh token of the same user+session -> {ok, expiresAt}; socket survives the old exp', async () => {
    const userId = rid('u');
    const sessionId = rid('s');
    const c = await srv.connect({ token: srv.token({ userId, sessionId, role: 'tech', exp: nowSec() + 2 }) });
    try {
      const freshExp = nowSec() + 3600;
      const res = await c.emitAck('refresh_token', { token: srv.token({ userId, sessionId, role: 'tech', exp: freshExp }) });
      assert.equal(res.ok, true, JSON.stringify(res));
      assert.match(res.expiresAt, TS_RE);
      assert.equal(Date.parse(res.expiresAt), freshExp * 1000);
      await sleep(3200);
      assert.equal(c.connected, true);
      assert.deepEqual(c.all('error'), []);
      assert.deepEqual(c.all('disconnect'), []);
    } finally {
      c.close();
    }
  });

  it('refresh_token moves the expiry to the new token\'s exp (not further)', async () => {
    const userId = rid('u');
    const sessionId = rid('s');
    const c = await srv.connect({ token: srv.token({ userId, sessionId, role: 'tech', exp: nowSec() + 2 }) });
    try {
      const newExp = nowSec() + 4;
      const res = await c.emitAck('refresh_token', { token: srv.token({ userId, sessionId, role: 'tech', exp: newExp }) });
      assert.equal(res.ok, true, JSON.stringify(res));
      assert.equal(Date.parse(res.expiresAt), newExp * 1000);
      const e = await c.waitFor('error', 6000);
      assert.equal(e.code, 'token_expired');
      assert.ok(Date.now() >= newExp * 1000 - 50, `expired ${newExp * 1000 - Date.now()}ms before the new exp`);
      assert.equal(await c.waitFor('disconnect', 2000), 'io server disconnect');
    } finally {
      c.close();
    }
  });

  it('refresh_token with another user\'s or session\'s token -> forbidden, old expiry stays', async () => {
    const userId = rid('u');
    const sessionId = rid('s');
    const c = await srv.connect({ token: srv.token({ userId, sessionId, role: 'tech', exp: nowSec() + 3 }) });
    try {
      const otherUser = await c.emitAck('refresh_token', { token: srv.token({ userId: rid('u'), sessionId, role: 'tech' }) });
      assert.equal(otherUser.ok, false);
      assert.equal(otherUser.error.code, 'forbidden');
      const otherSess = await c.emitAck('refresh_token', { token: srv.token({ userId, sessionId: rid('s'), role: 'tech' }) });
      assert.equal(otherSess.ok, false);
      assert.equal(otherSess.error.code, 'forbidden');
      assert.equal(c.connected, true);
      const e = await c.waitFor('error', 5000);
      assert.equal(e.code, 'token_expired');
      await c.waitFor('disconnect', 2000);
    } finally {
      c.close();
    }
  });

  it('refresh_token with garbage / badly signed / expired / HS512 token -> token_invalid', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token });
    try {
      const same = { userId: id.userId, sessionId: id.sessionId, role: id.role };
      for (const t of [
        'garbage',
        srv.token(same, { secret: 'nope' }),
        srv.token({ ...same, exp: nowSec() - 10 }),
        srv.token(same, { algorithm: 'HS512' }),
      ]) {
        const res = await c.emitAck('refresh_token', { token: t });
        assert.equal(res.ok, false, t);
        assert.equal(res.error.code, 'token_invalid', `${t.slice(0, 20)}: ${JSON.stringify(res)}`);
        assert.equal(typeof res.error.message, 'string');
      }
      assert.equal(c.connected, true);
      // without a callback: an error event
      c.emit('refresh_token', { token: 'garbage' });
      const e = await c.waitFor('error');
      assert.deepEqual({ event: e.event, code: e.code }, { event: 'refresh_token', code: 'token_invalid' });
    } finally {
      c.close();
    }
  });
});

describe('herald token CLI', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  it('prints a JWT signed with JWT_SECRET that connects', async () => {
    const user = rid('cli');
    const session = rid('sess');
    const { stdout } = await run(HERALD_BIN, ['token', '--user', user, '--role', 'radiologist', '--session', session, '--ttl', '1h'], {
      env: srv.env(),
      timeout: 10_000,
    });
    const token = stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const claims = jwt.verify(token, srv.secret, { algorithms: ['HS256'] });
    assert.equal(claims.userId, user);
    assert.equal(claims.role, 'radiologist');
    assert.equal(claims.sessionId, session);
    assert.ok(Math.abs(claims.exp - (nowSec() + 3600)) <= 5, `exp ${claims.exp}`);
    const c = await srv.connect({ token });
    assert.equal(c.connectedPayload.userId, user);
    c.close();
  });

  it('without --session still produces a usable token', async () => {
    const user = rid('cli');
    const { stdout } = await run(HERALD_BIN, ['token', '--user', user, '--role', 'tech'], { env: srv.env(), timeout: 10_000 });
    const claims = jwt.verify(stdout.trim(), srv.secret, { algorithms: ['HS256'] });
    assert.equal(claims.userId, user);
    assert.equal(typeof claims.sessionId, 'string');
    const c = await srv.connect({ token: stdout.trim() });
    c.close();
  });
});
