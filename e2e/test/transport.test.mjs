// Transports: polling-only, websocket-only and upgrade transports, ping settings, max payload on both transports.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, eventually, sleep } from '../helpers.mjs';

describe('transports', () => {
  let srv;
  before(async () => {
    srv = await startServer({
      HERALD_PING_INTERVAL: '300ms',
      HERALD_PING_TIMEOUT: '2s',
      HERALD_MAX_PAYLOAD: '20000',
    });
  });
  after(async () => {
    await srv?.stop();
  });

  async function sessionTransport(userId, socketId) {
    const r = await srv.api('GET', `/api/v1/users/${userId}/sessions`);
    assert.equal(r.status, 200, r.text);
    const s = r.body.sessions.find((x) => x.socketId === socketId);
    return s?.transport;
  }

  it('polling only: connects, receives a notification, sessions show "polling"', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token, transports: ['polling'] });
    try {
      assert.equal(c.socket.io.engine.transport.name, 'polling');
      const r = await srv.notify(id.userId, { title: 'over polling' });
      assert.equal(r.status, 202);
      assert.equal(r.body.deliveredTo, 1);
      assert.equal((await c.waitFor('critical_notification')).title, 'over polling');
      assert.equal(await sessionTransport(id.userId, c.id), 'polling');
      // still alive after several ping intervals
      await sleep(1000);
      assert.equal(c.connected, true);
      assert.deepEqual(await c.emitAck('activity'), { ok: true });
    } finally {
      c.close();
    }
  });

  it('websocket only: connects, receives a notification, sessions show "websocket"', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token, transports: ['websocket'] });
    try {
      assert.equal(c.socket.io.engine.transport.name, 'websocket');
      const r = await srv.notify(id.userId, { title: 'over ws' });
      assert.equal(r.body.deliveredTo, 1);
      assert.equal((await c.waitFor('critical_notification')).title, 'over ws');
      assert.equal(await sessionTransport(id.userId, c.id), 'websocket');
    } finally {
      c.close();
    }
  });

  it('default: polling then upgrade to websocket; notification after upgrade; sessions show "websocket"', async () => {
    const id = srv.identity();
    const c = srv.open({ token: id.token });
    const upgraded = new Promise((res) => c.socket.io.engine.once('upgrade', res));
    try {
      await c.ready();
      await Promise.race([upgraded, sleep(5000).then(() => { throw new Error('no upgrade within 5s'); })]);
      assert.equal(c.socket.io.engine.transport.name, 'websocket');
      const r = await srv.notify(id.userId, { title: 'after upgrade' });
      assert.equal(r.body.deliveredTo, 1);
      assert.equal((await c.waitFor('critical_notification')).title, 'after upgrade');
      await eventually(async () => (await sessionTransport(id.userId, c.id)) === 'websocket', 3000);
    } finally {
      c.close();
    }
  });

  it('handshake advertises the configured ping interval/timeout and max payload', async () => {
    const r = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(r.status, 200);
    const text = await r.text();
    assert.equal(text[0], '0', text);
    const hs = JSON.parse(text.slice(1));
    assert.equal(hs.pingInterval, 300);
    assert.equal(hs.pingTimeout, 2000);
    assert.equal(hs.maxPayload, 20000);
    assert.deepEqual(hs.upgrades, ['websocket']);
  });

  it('a socket survives many ping cycles on websocket', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token, transports: ['websocket'] });
    try {
      await sleep(1500);
      assert.equal(c.connected, true);
      assert.deepEqual(c.all('disconnect'), []);
    } finally {
      c.close();
    }
  });

  it('a dead websocket client (no pong) is dropped after pingInterval + pingTimeout', async () => {
    const id = srv.identity();
    // raw engine.io websocket that never answers pings
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`);
    const msgs = [];
    ws.on('message', (d) => msgs.push(d.toString()));
    await new Promise((res, rej) => (ws.once('open', res), ws.once('error', rej)));
    ws.send(`40${JSON.stringify({ token: id.token })}`);
    await eventually(async () => (await srv.api('GET', `/api/v1/users/${id.userId}`)).body.connections === 1, 3000);
    const closed = new Promise((res) => ws.once('close', res));
    const t = await Promise.race([closed.then(() => 'closed'), sleep(5000).then(() => 'open')]);
    assert.equal(t, 'closed', 'server should close a socket that never pongs');
    await eventually(async () => (await srv.api('GET', `/api/v1/users/${id.userId}`)).body.connections === 0, 3000);
  });

  it('an oversized websocket message closes that connection; a normal one does not', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token, transports: ['websocket'] });
    try {
      // within the limit: a refused (not_found) ack, socket stays up
      const ok = await c.emitAck('acknowledge_notification', { notificationId: 'x'.repeat(100), pad: 'p'.repeat(5000) });
      assert.equal(ok.ok, false);
      assert.equal(c.connected, true);
      c.emit('acknowledge_notification', { notificationId: 'y', pad: 'p'.repeat(50_000) });
      const reason = await c.waitFor('disconnect', 4000);
      assert.ok(reason === 'transport close' || reason === 'transport error', reason);
    } finally {
      c.close();
    }
  });

  it('an oversized polling POST is refused and closes that session', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token, transports: ['polling'] });
    try {
      c.emit('acknowledge_notification', { notificationId: 'y', pad: 'p'.repeat(50_000) });
      const reason = await c.waitFor('disconnect', 4000);
      assert.ok(['transport close', 'transport error', 'ping timeout'].includes(reason), reason);
    } finally {
      c.close();
    }
  });
});
