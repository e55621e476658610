// CORS: the Origin allow-list on polling requests and websocket upgrades (default and configured lists).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket from 'ws';
import { startServer, eventually } from '../helpers.mjs';

const HS = '/socket.io/?EIO=4&transport=polling';

/** Try a raw websocket upgrade; resolves 'open' or the HTTP status of the refusal. */
function tryUpgrade(port, headers = {}, origin) {
  return new Promise((resolve) => {
    const opts = { headers };
    if (origin) opts.origin = origin;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, opts);
    const done = (v) => {
      try {
        ws.terminate();
      } catch {}
      resolve(v);
    };
    ws.once('open', () => done('open'));
    ws.once('unexpected-response', (_req, res) => done(res.statusCode));
    ws.once('error', (e) => done(`error: ${e.message}`));
  });
}

/** Status of a GET sent with exactly these headers (fetch may not set Host). */
function rawStatus(port, path, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}

async function handshake(url, origin) {
  const headers = origin ? { origin } : {};
  const r = await fetch(url + HS, { headers });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text };
}

describe('CORS with the default allow-list', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  it('polling handshake from http://evil.example -> 403, no session, no CORS grant', async () => {
    const r = await handshake(srv.url, 'http://evil.example');
    assert.equal(r.status, 403, r.text);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    assert.ok(!r.text.startsWith('0{'), 'no engine.io open packet');
  });

  for (const origin of ['http://localhost:5173', 'http://localhost:3010', 'http://localhost:3000']) {
    it(`polling handshake from ${origin} -> 200 with ACAO and credentials`, async () => {
      const r = await handshake(srv.url, origin);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('access-control-allow-origin'), origin);
      assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
      assert.ok(r.text.startsWith('0{'), r.text);
    });
  }

  it('lookalike origins are refused', async () => {
    for (const origin of ['http://localhost:5174', 'https://localhost:5173', 'http://localhost:5173.evil.example', 'http://evil.localhost:5173', 'null']) {
      const r = await handshake(srv.url, origin);
      assert.equal(r.status, 403, `${origin} -> ${r.status}`);
    }
  });

  it('no Origin header (server-side / native client) -> allowed', async () => {
    const r = await handshake(srv.url);
    assert.equal(r.status, 200);
    assert.ok(r.text.startsWith('0{'), r.text);
  });

  it('same-origin Origin (the server\'s own http://host:port, as native clients such as python-socketio send) is allowed', async () => {
    const own = `http://127.0.0.1:${srv.port}`;
    const r = await handshake(srv.url, own);
    assert.equal(r.status, 200, r.text);
    assert.equal(await tryUpgrade(srv.port, {}, own), 'open');
  });

  it('same-origin by localhost (a name browsers never resolve through DNS) is allowed on both transports', async () => {
    const own = `http://localhost:${srv.port}`;
    const r = await handshake(own, own);
    assert.equal(r.status, 200, r.text);
    assert.equal(await tryUpgrade(srv.port, { host: `localhost:${srv.port}` }, own), 'open');
  });

  it('DNS rebinding is refused: Origin and Host both an unlisted name -> 403 on both transports', async () => {
    const host = `rebound.example:${srv.port}`;
    const own = `http://${host}`;
    assert.equal(await rawStatus(srv.port, HS, { host, origin: own }), 403);
    assert.equal(await tryUpgrade(srv.port, { host }, own), 403);
  });

  it('polling requests after the handshake are checked too', async () => {
    const r = await handshake(srv.url, 'http://localhost:5173');
    const sid = JSON.parse(r.text.slice(1)).sid;
    const bad = await fetch(`${srv.url}${HS}&sid=${sid}`, {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'text/plain;charset=UTF-8' },
      body: '40',
    });
    assert.equal(bad.status, 403);
  });

  it('preflight OPTIONS: allowed origin gets the grant, evil does not', async () => {
    const ok = await fetch(srv.url + HS, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    assert.ok(ok.status >= 200 && ok.status < 300, String(ok.status));
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://localhost:5173');
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
    const bad = await fetch(srv.url + HS, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(bad.headers.get('access-control-allow-origin'), null);
    assert.notEqual(bad.headers.get('access-control-allow-origin'), '*');
  });

  it('websocket upgrade with a bad Origin is refused; allowed and absent Origin open', async () => {
    assert.equal(await tryUpgrade(srv.port, {}, 'http://evil.example'), 403);
    assert.equal(await tryUpgrade(srv.port, {}, 'http://localhost:5173'), 'open');
    assert.equal(await tryUpgrade(srv.port, {}), 'open');
  });

  it('socket.io-client polling with a bad Origin gets connect_error; with a good one connects', async () => {
    const id = srv.identity();
    const bad = srv.open({ token: id.token, transports: ['polling'], extraHeaders: { Origin: 'http://evil.example' } });
    const e = await bad.waitAny(['connect_error', 'connected'], 5000);
    bad.close();
    assert.equal(e.event, 'connect_error');
    const badWs = srv.open({ token: id.token, transports: ['websocket'], extraHeaders: { Origin: 'http://evil.example' } });
    const e2 = await badWs.waitAny(['connect_error', 'connected'], 5000);
    badWs.close();
    assert.equal(e2.event, 'connect_error');
    const u = await srv.api('GET', `/api/v1/users/${id.userId}`);
    assert.equal(u.body.connections, 0);
    const good = await srv.connect({ token: id.token, extraHeaders: { Origin: 'http://localhost:5173' } });
    good.close();
  });
});

describe('CORS with HERALD_CORS_ORIGINS configured', () => {
  let srv;
  before(async () => {
    // a trailing '/' on an entry is ignored (docs/configuration.md)
    srv = await startServer({ HERALD_CORS_ORIGINS: 'https://pacs.example.org/, http://app.example:8080' });
  });
  after(async () => {
    await srv?.stop();
  });

  it('listed origins pass, the defaults no longer do', async () => {
    for (const o of ['https://pacs.example.org', 'http://app.example:8080']) {
      const r = await handshake(srv.url, o);
      assert.equal(r.status, 200, o);
      assert.equal(r.headers.get('access-control-allow-origin'), o);
    }
    assert.equal((await handshake(srv.url, 'http://localhost:5173')).status, 403);
    assert.equal(await tryUpgrade(srv.port, {}, 'http://localhost:5173'), 403);
    assert.equal(await tryUpgrade(srv.port, {}, 'https://pacs.example.org'), 'open');
  });
});

describe('refused origins are logged', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  it('one line with the origin and path, never the token; a flood is not a line each', async () => {
    const id = srv.identity();
    const r = await fetch(`${srv.url}${HS}&token=${id.token}`, { headers: { origin: 'http://evil.example' } });
    assert.equal(r.status, 403);
    await eventually(async () => srv.log.includes('refused a Socket.IO request'), 3000);
    const line = srv.log.split('\n').find((l) => l.includes('refused a Socket.IO request'));
    assert.ok(line.includes('http://evil.example'), line);
    assert.ok(line.includes('/socket.io/'), line);
    assert.ok(!srv.log.includes(id.token), 'the token is never logged');
    for (let i = 0; i < 20; i++) {
      assert.equal((await fetch(srv.url + HS, { headers: { origin: 'http://flood.example' } })).status, 403);
    }
    // The answer to a request after the flood proves the server handled the flood.
    assert.equal((await fetch(srv.url + HS)).status, 200);
    const lines = srv.log.split('\n').filter((l) => l.includes('refused a Socket.IO request'));
    assert.equal(lines.length, 1, lines.join('\n'));
  });
});
