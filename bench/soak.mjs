#!/usr/bin/env node
// Soak: minutes of mixed load (connects, notifications, acknowledgements, broadcasts, disconnects) against a
// release Herald, sampling its RSS every 10 s; prints a Markdown table and exits non-zero if a notification
// that got a 202 never reached its connected user. Not run in CI (it takes minutes by design).
//
//   node bench/soak.mjs [--minutes 10] [--users 200] [--sample 10]
//
// Uses the official socket.io-client from e2e/node_modules (run `npm ci` in e2e/ first) and
// $HERALD_BIN (default $CARGO_TARGET_DIR/release/herald, else target/release/herald).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import net from 'node:net';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(ROOT, 'e2e', 'package.json'));
const { io } = require('socket.io-client');
const jwt = require('jsonwebtoken');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const MINUTES = opt('minutes', 10);
const USERS = opt('users', 200);
const SAMPLE_S = opt('sample', 10);
const BIN =
  process.env.HERALD_BIN || join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'release', 'herald');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const SECRET = randomBytes(32).toString('hex');
const KEY = `soak-${randomBytes(16).toString('hex')}`;

async function freePort() {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function rssKb(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) : NaN;
}

const port = await freePort();
const dataDir = mkdtempSync(join(tmpdir(), 'herald-soak-'));
const url = `http://127.0.0.1:${port}`;
const server = spawn(BIN, ['serve'], {
  env: {
    ...process.env,
    HERALD_PORT: String(port),
    HERALD_HOST: '127.0.0.1',
    HERALD_DATA_DIR: dataDir,
    JWT_SECRET: SECRET,
    HERALD_API_KEYS: KEY,
    HERALD_LOG: 'warn',
    HERALD_API_RATE_LIMIT_PER_SECOND: '1000000',
    HERALD_API_RATE_LIMIT_BURST: '1000000',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${url}/healthz`)).status === 200) break;
  } catch {
    /* not up yet */
  }
  if (i > 200) throw new Error(`${BIN} did not answer /healthz`);
  await sleep(50);
}

async function api(method, path, body) {
  const r = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

const c = {
  connects: 0,
  disconnects: 0,
  notified202: 0,
  non202: 0,
  received: 0,
  redelivered: 0,
  acked: 0,
  broadcasts: 0,
  broadcastRecipients: 0,
  events: 0,
};
// "id/user" of every 202 handed to a connected socket, and of every notification a socket received (the
// socket may get it before the API answer arrives here)
const awaited = new Map();
const got = new Set();
const users = Array.from({ length: USERS }, (_, i) => ({ id: `soak-u${i}`, sockets: [] }));

function connect(u) {
  const token = jwt.sign({ userId: u.id, sessionId: `soak-s-${u.id}`, role: 'soak' }, SECRET, { expiresIn: '2h' });
  const s = io(url, { forceNew: true, reconnection: false, auth: { token }, transports: c.connects % 3 ? ['websocket'] : undefined });
  s.on('connected', () => c.connects++);
  s.on('critical_notification', (n) => {
    c.received++;
    if (n.redelivered) c.redelivered++;
    got.add(`${n.id}/${u.id}`);
    if (c.received % 2 === 0) {
      s.timeout(10_000)
        .emitWithAck('acknowledge_notification', { notificationId: n.id, userId: u.id })
        .then((a) => a?.ok && c.acked++, () => {});
    }
  });
  s.on('soak_event', () => c.events++);
  u.sockets.push(s);
  return new Promise((res) => {
    s.once('connected', res);
    s.once('connect_error', res);
  });
}

function disconnect(u) {
  const s = u.sockets.shift();
  if (s) {
    s.close();
    c.disconnects++;
    // its last socket gone: what was in flight to it is caught up on the next connection instead
    if (u.sockets.length === 0) for (const k of awaited.keys()) if (k.endsWith(`/${u.id}`)) awaited.delete(k);
  }
}

// a steady population: every user has one socket to begin with
for (let i = 0; i < USERS; i += 50) await Promise.all(users.slice(i, i + 50).map(connect));

const started = Date.now();
const end = started + MINUTES * 60_000;
const samples = [{ t: 0, rss: rssKb(server.pid), sockets: users.reduce((n, u) => n + u.sockets.length, 0), ...c }];
const sampler = setInterval(() => {
  samples.push({
    t: Math.round((Date.now() - started) / 1000),
    rss: rssKb(server.pid),
    sockets: users.reduce((n, u) => n + u.sockets.length, 0),
    ...c,
  });
  const s = samples.at(-1);
  console.error(`soak t=${s.t}s rss=${s.rss}kB sockets=${s.sockets} 202=${c.notified202} received=${c.received}`);
}, SAMPLE_S * 1000);

let n = 0;
while (Date.now() < end) {
  n++;
  const u = users[Math.floor(Math.random() * USERS)];
  const roll = Math.random();
  if (roll < 0.6) {
    const online = u.sockets.length > 0;
    const r = await api('POST', `/api/v1/users/${u.id}/notifications`, { title: `soak ${n}`, severity: 'critical' });
    if (r.status === 202) {
      c.notified202++;
      if (online && r.body.deliveredTo > 0) awaited.set(`${r.body.notification.id}/${u.id}`, Date.now());
    } else c.non202++;
  } else if (roll < 0.7) {
    const ids = Array.from({ length: 20 }, () => users[Math.floor(Math.random() * USERS)].id);
    const r = await api('POST', '/api/v1/notifications', { userIds: [...new Set(ids)], notification: { title: `soak b${n}` } });
    if (r.status === 202) {
      c.broadcasts++;
      c.broadcastRecipients += r.body.results.length;
    } else c.non202++;
  } else if (roll < 0.75) {
    await api('POST', '/api/v1/roles/soak/events', { event: 'soak_event', data: { n } });
  } else if (roll < 0.875) {
    if (u.sockets.length < 3) await connect(u);
  } else if (u.sockets.length > 1 || Math.random() < 0.3) {
    disconnect(u);
  }
  if (n % 20 === 0) await sleep(5);
}
clearInterval(sampler);
// a notification delivered live is in flight for at most a moment; then whatever is still awaited was lost
await sleep(3000);
const lost = [...awaited.keys()].filter((k) => !got.has(k));
samples.push({ t: Math.round((Date.now() - started) / 1000), rss: rssKb(server.pid), sockets: users.reduce((k, u) => k + u.sockets.length, 0), ...c });
for (const u of users) for (const s of u.sockets) s.close();
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });

console.log(`Soak: ${MINUTES} min, ${USERS} users, binary ${BIN}`);
console.log('');
console.log('| t (s) | RSS (MiB) | sockets | notifications 202 | received (of which caught up) | acks | broadcasts | connects | disconnects |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const s of samples) {
  console.log(
    `| ${s.t} | ${(s.rss / 1024).toFixed(1)} | ${s.sockets} | ${s.notified202} | ${s.received} (${s.redelivered}) | ${s.acked} | ${s.broadcasts} | ${s.connects} | ${s.disconnects} |`,
  );
}
console.log('');
console.log(`non-202 answers: ${c.non202}; live notifications not received: ${lost.length}`);
process.exit(lost.length === 0 && c.non202 === 0 ? 0 : 1);
