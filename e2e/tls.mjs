// A Herald serving HTTPS and WSS on its port (HERALD_TLS_CERT, HERALD_TLS_KEY) with a self-signed certificate
// for localhost and 127.0.0.1 made here with the openssl tool, and clients that trust only that certificate.
// For the TLS tests and the TLS benchmark.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { io } from 'socket.io-client';
import { HeraldServer, freePort, sleep, Client } from './helpers.mjs';

/** A Herald served over TLS: health checks and API calls over https, trusting only `ca`. */
export class TlsServer extends HeraldServer {
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

/** Starts a TlsServer with a fresh certificate and data directory; `env` adds settings as startServer's does. */
export async function startTlsServer(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const srv = new TlsServer({
    port: await freePort(),
    dataDir: join(dir, 'data'),
    secret: randomBytes(32).toString('hex'),
    apiKeys: [`k1-${randomBytes(12).toString('hex')}`],
    extraEnv: { ...env, HERALD_TLS_CERT: cert, HERALD_TLS_KEY: key },
  }, readFileSync(cert));
  await srv.start();
  return srv;
}
