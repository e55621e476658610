// Hostile input at the door: every JWT forgery refused with the exact connect_error message on both transports, keys
// that headers point to never fetched, an origin swap at the websocket upgrade refused, and secrets and notification
// texts that reach refusal paths kept out of the log (scan-logs.mjs checks the whole run; this file feeds it).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { startServer, rid, rawJwt, nowSec, jwt, recordSecret, eventually } from '../helpers.mjs';

const INVALID = 'Invalid authentication token';
const TRANSPORTS = [['polling'], ['websocket']];

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** A token with any header, HMAC-signed with `key` under `hash` (what an attacker can compute). */
function hmacJwt(header, payload, key, hash = 'sha256') {
  const head = `${b64(header)}.${b64(payload)}`;
  const t = `${head}.${createHmac(hash, key).update(head).digest('base64url')}`;
  recordSecret('token', t);
  return t;
}

/** A token really signed with an asymmetric key the attacker owns. */
function asymJwt(payload, privateKey, algorithm, header = {}) {
  const t = jwt.sign(payload, privateKey, { algorithm, header: { alg: algorithm, ...header } });
  recordSecret('token', t);
  return t;
}

/** A server that only counts requests: a key URL in a token header must never be fetched. */
async function keyServer() {
  const hits = [];
  const s = http.createServer((req, res) => {
    hits.push(req.url);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"keys":[]}');
  });
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${s.address().port}`, hits, close: () => new Promise((r) => s.close(r)) };
}

describe('JWT forgeries, HS512 pinned by configuration', () => {
  let srv;
  let keys;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  before(async () => {
    srv = await startServer({ HERALD_JWT_ALGORITHM: 'HS512' });
    keys = await keyServer();
  });
  after(async () => {
    await srv?.stop();
    await keys?.close();
  });

  const claims = (extra = {}) => ({ userId: rid('u'), sessionId: rid('s'), role: 'radiologist', iat: nowSec(), exp: nowSec() + 3600, ...extra });
  const good = (c = claims()) => hmacJwt({ alg: 'HS512', typ: 'JWT' }, c, srv.secret, 'sha512');

  // Each attack: a name and the token it sends. Every one must be refused as an invalid token.
  const attacks = () => [
    ['alg none, empty signature', rawJwt({ alg: 'none', typ: 'JWT' }, claims())],
    ['alg None (mixed case)', rawJwt({ alg: 'None', typ: 'JWT' }, claims())],
    ['alg none carrying the real HS512 signature', (() => {
      const c = claims();
      return rawJwt({ alg: 'none' }, c, good(c).split('.')[2]);
    })()],
    ['HS256 with the right secret (algorithm confusion)', hmacJwt({ alg: 'HS256', typ: 'JWT' }, claims(), srv.secret)],
    ['HS384 with the right secret', hmacJwt({ alg: 'HS384', typ: 'JWT' }, claims(), srv.secret, 'sha384')],
    ['an RS256 header over an HMAC of the secret', hmacJwt({ alg: 'RS256', typ: 'JWT' }, claims(), srv.secret, 'sha512')],
    ['an ES256 header over an HMAC of the secret', hmacJwt({ alg: 'ES256', typ: 'JWT' }, claims(), srv.secret, 'sha512')],
    ['RS256 signed with the attacker\'s RSA key', asymJwt(claims(), rsa.privateKey, 'RS256')],
    ['ES256 signed with the attacker\'s EC key', asymJwt(claims(), ec.privateKey, 'ES256')],
    ['RS256 with the attacker\'s public key embedded as jwk', asymJwt(claims(), rsa.privateKey, 'RS256', { jwk: rsa.publicKey.export({ format: 'jwk' }) })],
    ['HS512 with the attacker\'s secret and a jwk header carrying it', hmacJwt({ alg: 'HS512', jwk: { kty: 'oct', k: Buffer.from('attacker-secret').toString('base64url') } }, claims(), 'attacker-secret', 'sha512')],
    ['HS512 with the attacker\'s secret and kid naming a file', hmacJwt({ alg: 'HS512', kid: '../../../../dev/null' }, claims(), '', 'sha512')],
    ['HS512 with the attacker\'s secret and a kid SQL injection', hmacJwt({ alg: 'HS512', kid: "x' UNION SELECT 'attacker-secret' --" }, claims(), 'attacker-secret', 'sha512')],
    ['RS256 with a jku pointing to the attacker\'s key set', asymJwt(claims(), rsa.privateKey, 'RS256', { jku: `${keys.url}/jwks.json`, kid: 'k1' })],
    ['RS256 with an x5u pointing to the attacker\'s certificate', asymJwt(claims(), rsa.privateKey, 'RS256', { x5u: `${keys.url}/cert.pem` })],
    ['HS512 with a jku and the attacker\'s secret', hmacJwt({ alg: 'HS512', jku: `${keys.url}/hs.json` }, claims(), 'attacker-secret', 'sha512')],
    ['no exp claim', good(claims({ exp: undefined }))],
    ['exp 1 s in the past', good(claims({ exp: nowSec() - 1 }))],
    ['exp as a string', good(claims({ exp: String(nowSec() + 3600) }))],
    ['nbf 10 minutes ahead', good(claims({ nbf: nowSec() + 600 }))],
    ['wrong signature (one character changed)', (() => {
      const t = good();
      const sig = t.split('.')[2];
      const flip = sig[5] === 'A' ? 'B' : 'A';
      return rawJwt(JSON.parse(Buffer.from(t.split('.')[0], 'base64url')), JSON.parse(Buffer.from(t.split('.')[1], 'base64url')), sig.slice(0, 5) + flip + sig.slice(6));
    })()],
    ['signature of another payload', (() => {
      const other = good();
      return rawJwt({ alg: 'HS512', typ: 'JWT' }, { ...claims(), role: 'admin' }, other.split('.')[2]);
    })()],
    ['truncated: signature cut in half', good().slice(0, -43)],
    ['truncated: no signature part', good().split('.').slice(0, 2).join('.')],
    ['truncated: header only', good().split('.')[0]],
    ['garbage: four parts', `${good()}.AAAA`],
    ['garbage: payload not JSON', `${b64({ alg: 'HS512' })}.${Buffer.from('{not json').toString('base64url')}.AAAA`],
    ['garbage: header not base64url', `%%%.${b64(claims())}.AAAA`],
    ['garbage: 8 KiB of random base64url', randomBytes(6144).toString('base64url')],
  ];

  it('a well-formed HS512 token connects on both transports (the attacks below differ from it only where named)', async () => {
    for (const transports of TRANSPORTS) {
      const c = await srv.connect({ token: good(), transports });
      c.close();
    }
  });

  it('every forgery is refused with "Invalid authentication token" on polling and websocket', async () => {
    const wrong = [];
    let tried = 0;
    for (const [name, token] of attacks()) {
      for (const transports of TRANSPORTS) {
        tried++;
        const m = await srv.connectError({ token, transports }).catch((e) => `error: ${e.message}`);
        if (m !== INVALID) wrong.push(`${name} over ${transports[0]}: ${m}`);
      }
    }
    console.log(`security: ${tried} forged-token connects tried, ${tried - wrong.length} refused as invalid`);
    assert.deepEqual(wrong, []);
  });

  it('forgeries in the query parameter and the Authorization header are refused the same way', async () => {
    const forged = [rawJwt({ alg: 'none' }, claims()), hmacJwt({ alg: 'HS256' }, claims(), srv.secret)];
    for (const token of forged) {
      for (const transports of TRANSPORTS) {
        assert.equal(await srv.connectError({ query: { token }, transports }), INVALID);
        assert.equal(await srv.connectError({ extraHeaders: { Authorization: `Bearer ${token}` }, transports }), INVALID);
      }
    }
  });

  it('no key URL from a jku, x5u or jwk header was ever fetched', async () => {
    // the forgeries above carried jku/x5u URLs of this server; a refusal came back for each, so any fetch is done
    assert.equal(await srv.connectError({ token: asymJwt(claims(), rsa.privateKey, 'RS256', { jku: `${keys.url}/last.json` }) }), INVALID);
    assert.deepEqual(keys.hits, []);
  });

  it('refused forgeries leave no socket and no session behind', async () => {
    const c = claims();
    assert.equal(await srv.connectError({ token: hmacJwt({ alg: 'HS256' }, c, srv.secret) }), INVALID);
    const u = await srv.api('GET', `/api/v1/users/${c.userId}`);
    assert.equal(u.status, 200);
    assert.equal(u.body.connections, 0);
    const s = await srv.api('GET', `/api/v1/users/${c.userId}/sessions`);
    assert.deepEqual(s.body.sessions, []);
  });
});

describe('origins at the websocket upgrade', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  /** Open an Engine.IO polling session (optionally with an Origin); its sid. */
  async function pollingSid(origin) {
    const r = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`, { headers: origin ? { origin } : {} });
    assert.equal(r.status, 200);
    return JSON.parse((await r.text()).slice(1)).sid;
  }

  /** Upgrade an existing session to websocket with an Origin; 'open' or the refusal's HTTP status. */
  function upgrade(sid, origin) {
    return new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket&sid=${sid}`, { origin });
      const done = (v) => {
        ws.terminate();
        resolve(v);
      };
      ws.once('open', () => done('open'));
      ws.once('unexpected-response', (_req, res) => done(res.statusCode));
      ws.once('error', (e) => done(`error: ${e.message}`));
    });
  }

  it('a polling session opened by a listed origin cannot be upgraded from an unlisted one', async () => {
    const sid = await pollingSid('http://localhost:5173');
    assert.equal(await upgrade(sid, 'http://evil.example'), 403);
    // the refused upgrade left the session to its owner: it still polls
    const r = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
      method: 'POST',
      headers: { origin: 'http://localhost:5173', 'content-type': 'text/plain;charset=UTF-8' },
      body: '40',
    });
    assert.equal(r.status, 200);
  });

  it('a polling session opened without Origin cannot be upgraded from an unlisted origin', async () => {
    const sid = await pollingSid();
    assert.equal(await upgrade(sid, 'http://evil.example'), 403);
    assert.equal(await upgrade(sid, 'http://localhost:3000'), 'open');
  });

  it('socket.io-client with the upgrade on and an unlisted origin gets no socket on either transport', async () => {
    const id = srv.identity();
    for (const transports of [['polling', 'websocket'], ['websocket', 'polling']]) {
      const c = srv.open({ token: id.token, transports, extraHeaders: { Origin: 'http://evil.example' } });
      const e = await c.waitAny(['connect_error', 'connected'], 5000);
      c.close();
      assert.equal(e.event, 'connect_error', transports.join(','));
    }
    assert.equal((await srv.api('GET', `/api/v1/users/${id.userId}`)).body.connections, 0);
  });
});

describe('secrets on refusal paths', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  const marker = () => `PHI-MARKER ${randomBytes(6).toString('hex')} patient has a critical finding`;

  it('wrong API keys, refused bodies and oversized bodies: nothing they carried is in the log', async () => {
    const texts = [];
    const wrongKeys = [`wrong-key-${randomBytes(12).toString('hex')}`, `${srv.apiKey}x`, srv.apiKey.slice(0, -1)];
    for (const key of wrongKeys) {
      recordSecret('api_key', key);
      const m = marker();
      texts.push(m);
      const r = await srv.api('POST', `/api/v1/users/${rid('u')}/notifications`, { title: m }, { key });
      assert.equal(r.status, 401);
    }
    const bad = [
      { id: 'bad id with spaces', title: marker() },
      { id: 'x'.repeat(129), message: marker() },
    ];
    for (const body of bad) {
      texts.push(body.title ?? body.message);
      const r = await srv.api('POST', `/api/v1/users/${rid('u')}/notifications`, body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
    }
    const notJson = marker();
    texts.push(notJson);
    recordSecret('notification_body', notJson);
    const r1 = await srv.api('POST', `/api/v1/users/${rid('u')}/notifications`, `{"title": "${notJson}"`, { raw: true });
    assert.equal(r1.status, 400);
    const huge = marker();
    texts.push(huge);
    const r2 = await srv.api('POST', `/api/v1/users/${rid('u')}/notifications`, { title: huge, pad: 'x'.repeat(1_100_000) });
    assert.equal(r2.status, 413);
    // and one that is stored and delivered, the usual path
    const id = srv.identity();
    const c = await srv.connect({ token: id.token });
    const ok = marker();
    texts.push(ok);
    assert.equal((await srv.notify(id.userId, { title: ok, message: marker() })).status, 202);
    assert.equal((await c.waitFor('critical_notification')).title, ok);
    c.close();
    // the audit line of a connect made after every request above proves the log has caught up before it is read
    const last = srv.identity();
    (await srv.connect({ token: last.token })).close();
    await eventually(() => srv.log.includes(last.userId), 5000);
    for (const t of [...texts, ...wrongKeys]) assert.ok(!srv.log.includes(t), `log carries ${t.slice(0, 16)}…`);
    assert.ok(srv.log.length > 0);
  });
});
