// Covers refused client events (invalid_payload via ack and via `error` event, socket stays up) and the per-socket rate limit.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid, sleep } from '../helpers.mjs';

async function assertAlive(c) {
  assert.equal(c.connected, true);
  assert.deepEqual(await c.emitAck('activity'), { ok: true });
}

describe('malformed client events', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  const BAD = {
    // integer ids are accepted as their string form (ids are strings everywhere, like claims), so the
    // wrong-typed ids here are non-integers
    acknowledge_notification: ['a string', 42, null, [], {}, { notificationId: 1.5 }, { notificationId: true }, { notificationId: '' }, { notificationId: ['n'] }, { notificationId: 'n', userId: { x: 1 } }, { userId: 'u' }],
    extend_session: ['a string', 7, null, [], {}, { sessionId: 5.5 }, { sessionId: false }, { sessionId: null }],
    refresh_token: ['a string', 9, null, [], {}, { token: 5 }, { token: null }, { token: { a: 1 } }],
  };

  for (const transports of [['websocket'], ['polling']]) {
    it(`invalid_payload through the ack callback, socket stays up (${transports})`, async () => {
      const id = srv.identity();
      const c = await srv.connect({ token: id.token, transports });
      try {
        for (const [event, payloads] of Object.entries(BAD)) {
          for (const p of payloads) {
            const res = await c.emitAck(event, p);
            assert.equal(res?.ok, false, `${event} ${JSON.stringify(p)} -> ${JSON.stringify(res)}`);
            assert.equal(res.error.code, 'invalid_payload', `${event} ${JSON.stringify(p)} -> ${JSON.stringify(res)}`);
            assert.equal(typeof res.error.message, 'string');
            assert.equal(c.connected, true);
          }
          // no argument at all
          const res = await c.emitAck(event);
          assert.equal(res.error?.code, 'invalid_payload', `${event} () -> ${JSON.stringify(res)}`);
        }
        await assertAlive(c);
        assert.deepEqual(c.all('error'), [], 'no error event when a callback was given');
      } finally {
        c.close();
      }
    });
  }

  it('invalid_payload without a callback -> error event {event, code, message}; socket stays up', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token });
    try {
      for (const [event, p] of [
        ['acknowledge_notification', 'a string'],
        ['acknowledge_notification', { notificationId: 1.25 }],
        ['acknowledge_notification', { notificationId: false }],
        ['acknowledge_notification', {}],
        ['extend_session', { sessionId: { id: 'x' } }],
        ['refresh_token', {}],
      ]) {
        c.emit(event, p);
        const e = await c.waitFor('error');
        assert.deepEqual({ event: e.event, code: e.code }, { event, code: 'invalid_payload' }, JSON.stringify(p));
        assert.equal(typeof e.message, 'string');
        assert.equal(c.connected, true);
      }
      await assertAlive(c);
    } finally {
      c.close();
    }
  });

  it('forbidden and not_found without a callback -> error event', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token });
    try {
      c.emit('acknowledge_notification', { notificationId: rid('nope') });
      let e = await c.waitFor('error');
      assert.deepEqual({ event: e.event, code: e.code }, { event: 'acknowledge_notification', code: 'not_found' });
      c.emit('extend_session', { sessionId: rid('other') });
      e = await c.waitFor('error');
      assert.deepEqual({ event: e.event, code: e.code }, { event: 'extend_session', code: 'forbidden' });
      c.emit('acknowledge_notification', { notificationId: 'x', userId: rid('other') });
      e = await c.waitFor('error');
      assert.deepEqual({ event: e.event, code: e.code }, { event: 'acknowledge_notification', code: 'forbidden' });
      await assertAlive(c);
    } finally {
      c.close();
    }
  });

  it('successful events without a callback send no error event', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token });
    try {
      const nid = (await srv.notify(id.userId, { id: rid('n') })).body.notification.id;
      await c.waitFor('critical_notification');
      c.emit('activity');
      c.emit('extend_session', { sessionId: id.sessionId });
      await c.waitFor('session_extended');
      c.emit('acknowledge_notification', { notificationId: nid, userId: id.userId });
      await c.waitFor('notification_acknowledged');
      assert.deepEqual(await c.none('error', 300), []);
    } finally {
      c.close();
    }
  });

  it('an unknown client event is ignored and the socket stays up', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token });
    try {
      c.emit('no_such_event', { a: 1 });
      await sleep(200);
      await assertAlive(c);
    } finally {
      c.close();
    }
  });

  it('activity with an ack -> {ok:true}', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token, transports: ['polling'] });
    try {
      assert.deepEqual(await c.emitAck('activity'), { ok: true });
      assert.deepEqual(await c.emitAck('activity', {}), { ok: true });
    } finally {
      c.close();
    }
  });
});

describe('rate limit (5/s, burst 5)', () => {
  let srv;
  before(async () => {
    srv = await startServer({ HERALD_RATE_LIMIT_PER_SECOND: '5', HERALD_RATE_LIMIT_BURST: '5' });
  });
  after(async () => {
    await srv?.stop();
  });

  it('the 6th+ rapid events get rate_limited (ack); socket stays up and recovers', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token, transports: ['websocket'] });
    try {
      const res = await Promise.all(Array.from({ length: 10 }, () => c.emitAck('activity', undefined, 5000)));
      // events of one socket may be handled concurrently, so count rather than look at positions
      const okCount = res.filter((r) => r.ok === true).length;
      assert.ok(okCount >= 5 && okCount <= 6, `accepted ${okCount} of 10: ${JSON.stringify(res)}`);
      for (const r of res.filter((x) => !x.ok)) assert.equal(r.error.code, 'rate_limited');
      assert.equal(c.connected, true);
      await sleep(1200);
      assert.deepEqual(await c.emitAck('activity'), { ok: true });
    } finally {
      c.close();
    }
  });

  it('rate_limited without a callback -> error event; other sockets have their own budget', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token, transports: ['websocket'] });
    const d = await srv.connect({ token: id.token, transports: ['websocket'] });
    try {
      for (let i = 0; i < 8; i++) c.emit('activity');
      const e = await c.waitFor('error');
      assert.deepEqual({ event: e.event, code: e.code }, { event: 'activity', code: 'rate_limited' });
      assert.equal(c.connected, true);
      assert.deepEqual(await d.emitAck('activity'), { ok: true }, 'per-socket budget');
    } finally {
      c.close();
      d.close();
    }
  });

  it('a rate-limited acknowledge changes nothing', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token, transports: ['websocket'] });
    try {
      await sleep(1100); // refill after connect
      const nid = (await srv.notify(id.userId, { id: rid('rl') })).body.notification.id;
      await c.waitFor('critical_notification');
      const burn = await Promise.all(Array.from({ length: 10 }, () => c.emitAck('activity', undefined, 5000)));
      assert.ok(burn.some((b) => b.error?.code === 'rate_limited'), JSON.stringify(burn));
      const res = await c.emitAck('acknowledge_notification', { notificationId: nid, userId: id.userId });
      assert.equal(res.error?.code, 'rate_limited', JSON.stringify(res));
      const g = await srv.api('GET', `/api/v1/users/${id.userId}/notifications/${nid}`);
      assert.notEqual(g.body.state, 'acknowledged');
    } finally {
      c.close();
    }
  });
});
