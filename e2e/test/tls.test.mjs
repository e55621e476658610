// TLS: with HERALD_TLS_CERT and HERALD_TLS_KEY the one port serves HTTPS and WSS (a self-signed certificate made
// here with openssl), the official socket.io-client connects on both transports, and plain HTTP is not served.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTlsServer } from '../tls.mjs';

describe('TLS on the same port', () => {
  let srv;
  before(async () => {
    srv = await startTlsServer();
  });
  after(async () => {
    await srv?.stop();
  });

  for (const transport of ['polling', 'websocket']) {
    it(`delivers a notification over ${transport} with TLS`, async () => {
      const a = srv.identity();
      const c = srv.openTls(a.token, [transport]);
      const hello = await c.ready();
      assert.equal(hello.userId, a.userId);
      assert.equal(c.socket.io.engine.transport.name, transport);
      const sent = await srv.request('POST', `/api/v1/users/${a.userId}/notifications`, { title: `over ${transport}` });
      assert.equal(sent.status, 202, sent.text);
      assert.equal(sent.body.deliveredTo, 1);
      const n = await c.waitFor('critical_notification');
      assert.equal(n.title, `over ${transport}`);
      const ack = await c.emitAck('acknowledge_notification', { notificationId: n.id });
      assert.equal(ack.ok, true);
      c.close();
    });
  }

  it('upgrades from polling to websocket over TLS', async () => {
    const a = srv.identity();
    const c = srv.openTls(a.token, ['polling', 'websocket']);
    await c.ready();
    await new Promise((resolve) => (c.socket.io.engine.transport.name === 'websocket' ? resolve() : c.socket.io.engine.once('upgrade', resolve)));
    assert.equal((await srv.request('POST', `/api/v1/users/${a.userId}/notifications`, { title: 'upgraded' })).status, 202);
    assert.equal((await c.waitFor('critical_notification')).title, 'upgraded');
    c.close();
  });

  it('refuses a client that does not trust the certificate, and plain HTTP', async () => {
    await assert.rejects(fetch(`${srv.url}/healthz`), 'the default trust store refuses a self-signed certificate');
    const plain = await fetch(`http://127.0.0.1:${srv.port}/healthz`).then((r) => r.status, (e) => e.name);
    assert.notEqual(plain, 200, 'no plain HTTP on the TLS port');
    assert.equal((await srv.request('GET', '/readyz', undefined, { key: null })).status, 200, 'still serving');
  });
});
