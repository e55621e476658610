// TLS: with HERALD_TLS_CERT and HERALD_TLS_KEY the one port serves HTTPS and WSS (a self-signed certificate made
// here with openssl), the official socket.io-client connects on both transports, and plain HTTP is not served.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { io } from 'socket.io-client';
import { HeraldServer, freePort, sleep, Client } from '../helpers.mjs';

/** A Herald served over TLS: health checks and API calls over https, trusting only `ca`. */
class TlsServer extends HeraldServer {
  constructor(opts, ca) {
    super(opts);
    this.ca = ca;
    this.url = `https://localhost:${this.port}`;
  }

  request(method, path, body, { key = this.apiKey } = {}) {
    return new Promise((resolve, reject) => {
      const headers = key ? { authorization: `Bearer ${key}` } : {};
      if (body !== undefined) headers['content-type'] = 'application/json';
      const req = https.request(`${this.url}${path}`, { method, headers, ca: this.ca, timeout: 5000 }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, text, body: text ? JSON.parse(text) : undefined }));
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      if (body !== undefined) req.write(JSON.stringify(body));
      req.end();
    });
  }

  async waitHealthy(name, gone) {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const why = gone();
      if (why) throw new Error(`${name} exited before ready (${why})\n${this.log.slice(-4000)}`);
      try {
        if ((await this.request('GET', '/healthz', undefined, { key: null })).status === 200) return;
      } catch {
        /* not listening yet */
      }
      await sleep(50);
    }
    this.proc.kill('SIGKILL');
    throw new Error(`${name} not ready within 20s\n${this.log.slice(-4000)}`);
  }

  openTls(token, transports) {
    const socket = io(this.url, { forceNew: true, reconnection: false, timeout: 5000, auth: { token }, transports, ca: this.ca });
    const c = new Client(socket);
    this.clients.add(c);
    return c;
  }
}

describe('TLS on the same port', () => {
  let srv;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    srv = new TlsServer({
      port: await freePort(),
      dataDir: join(dir, 'data'),
      secret: randomBytes(32).toString('hex'),
      apiKeys: [`k1-${randomBytes(12).toString('hex')}`],
      extraEnv: { HERALD_TLS_CERT: cert, HERALD_TLS_KEY: key },
    }, readFileSync(cert));
    await srv.start();
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
