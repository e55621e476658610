#!/usr/bin/env node
// Bystanders: the delivery latency of ordinary clients while someone else misbehaves, in one run against one
// release Herald. N websocket clients (socket.io-client) each get notifications at a steady total rate; the
// time from just before the API call to the `critical_notification` event is recorded per notification.
// Phases of equal length, the disturbance in a child process of its own so it does not stall this one:
//
//   baseline  nothing else
//   bulk      64 KiB notifications at the same pace as `slow` to one more client that reads them: the cost of
//             the big notifications alone (stored, sent), the reference for `slow`
//   slow      the same 64 KiB notifications to a client that never reads (4 KiB receive buffer): its
//             backlog passes socket.max_queued_bytes (4 MiB) and it is dropped; then the next such client, and
//             so on (socket.max_buffer_size is 64 in every phase, so that happens every second or so)
//   flood     one client emitting `activity` events as fast as its answers come back (rate-limited past 20/s)
//   baseline  again, nothing else: how far the machine itself drifted during the run
//
// Prints a Markdown table: p50/p99/max per phase and the ratio of each to the baseline of the same run. Not
// run in CI (timings). Uses socket.io-client from e2e/node_modules (`npm ci` in e2e/ first) and $HERALD_BIN
// (default $CARGO_TARGET_DIR/release/herald, else target/release/herald).
//
//   node bench/bystanders.mjs [--clients 100] [--rate 200] [--seconds 10] [--big-rate 100]
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import net from 'node:net';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const require = createRequire(join(ROOT, 'e2e', 'package.json'));
const { io } = require('socket.io-client');
const jwt = require('jsonwebtoken');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

function token(secret, userId, role) {
  return jwt.sign({ userId, sessionId: `${userId}-s`, role }, secret, { expiresIn: '2h' });
}

function api(url, key, method, path, body) {
  return fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  }).then(async (r) => ({ status: r.status, body: await r.json().catch(() => null) }));
}

// A websocket client that connects its socket (CONNECT right behind the upgrade request) and then never reads
// a byte, with a 4 KiB receive buffer: the server's queue for it fills at once instead of after the tens of MiB
// a Linux receive buffer can grow to. Python, because Node cannot set SO_RCVBUF.
const DEAF = `
import base64, os, socket, sys, time
port, token = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /socket.io/?EIO=4&transport=websocket&token={token} HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\n"
           f"Upgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: {key}\\r\\n"
           "Sec-WebSocket-Version: 13\\r\\n\\r\\n").encode())
mask = os.urandom(4)
s.sendall(bytes([0x81, 0x82]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"40")))
time.sleep(3600)
`;

function deafSocket(port, tok) {
  return spawn('python3', ['-c', DEAF, String(port), tok], { stdio: 'ignore' });
}

/** The child processes: a disturbance that runs until SIGTERM, then prints its counts as JSON. */
async function disturb(kind) {
  const { URL: url, KEY: key, SECRET: secret, PORT: port, BIG_RATE } = process.env;
  const counts = { sent: 0, refused: 0, dropped: 0, answered: 0 };
  let running = true;
  process.on('SIGTERM', () => (running = false));
  const big = 'x'.repeat(64 * 1024);
  const pace = 1000 / Number(BIG_RATE);
  if (kind === 'bulk' || kind === 'slow') {
    let k = 0;
    let reader = null;
    if (kind === 'bulk') {
      reader = io(url, { forceNew: true, reconnection: false, transports: ['websocket'], auth: { token: token(secret, 'bulk-reader', 'other') } });
      await new Promise((r) => reader.once('connected', r));
    }
    while (running) {
      const user = kind === 'bulk' ? 'bulk-reader' : `deaf-${k}`;
      const sock = kind === 'slow' ? deafSocket(Number(port), token(secret, user, 'other')) : null;
      if (sock) await sleep(500); // connected before its first notification
      // Paced, up to 8 calls in flight (each waits for its commit), until the deaf client is let go.
      let next = now();
      let inflight = 0;
      let gone = false;
      while (running && !gone) {
        if (inflight < 8) {
          inflight++;
          counts.sent++;
          api(url, key, 'POST', `/api/v1/users/${user}/notifications`, { title: 'big', text: big }).then((r) => {
            inflight--;
            if (r.status !== 202) counts.refused++;
            // its backlog passed socket.max_queued_bytes: the server dropped it
            if (sock && r.body?.deliveredTo === 0) gone = true;
          });
        }
        next += pace;
        await sleep(Math.max(0, next - now()));
      }
      while (inflight > 0) await sleep(10);
      if (gone) counts.dropped++;
      sock?.kill();
      k++;
    }
    reader?.close();
  } else if (kind === 'flood') {
    const s = io(url, { forceNew: true, reconnection: false, transports: ['websocket'], auth: { token: token(secret, 'flooder', 'other') } });
    await new Promise((r) => s.once('connected', r));
    let outstanding = 0;
    while (running) {
      while (outstanding < 500) {
        outstanding++;
        counts.sent++;
        s.emit('activity', () => {
          outstanding--;
          counts.answered++;
        });
      }
      await sleep(1);
    }
    s.close();
  }
  console.log(JSON.stringify(counts));
  process.exit(0);
}

if (process.env.BYSTANDERS_ROLE) {
  await disturb(process.env.BYSTANDERS_ROLE);
}

const CLIENTS = opt('clients', 100);
const RATE = opt('rate', 200);
const SECONDS = opt('seconds', 10);
const BIG_RATE = opt('big-rate', 100);
const BIN = process.env.HERALD_BIN || join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'release', 'herald');
const SECRET = randomBytes(32).toString('hex');
const KEY = `bystanders-${randomBytes(16).toString('hex')}`;

const port = await new Promise((res) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => res(port));
  });
});
const url = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(join(tmpdir(), 'herald-bystanders-'));
const server = spawn(BIN, ['serve'], {
  env: {
    ...process.env,
    HERALD_PORT: String(port),
    HERALD_HOST: '127.0.0.1',
    HERALD_DATA_DIR: dataDir,
    JWT_SECRET: SECRET,
    HERALD_API_KEYS: KEY,
    HERALD_LOG: 'warn',
    HERALD_PRESENCE_AUDIENCE: 'none',
    // 64 packets per socket (default 1024) before notifications wait in the backlog bounded by
    // socket.max_queued_bytes: with 64 KiB notifications the default buffer alone holds 64 MiB, and a deaf
    // client would be dropped once a phase instead of every second or so. Every phase has the same setting.
    HERALD_MAX_BUFFER_SIZE: '64',
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

// id -> when its API call started; the latency is recorded when the event arrives
const pending = new Map();
let samples = [];
const clients = await Promise.all(
  Array.from({ length: CLIENTS }, (_, i) => {
    const s = io(url, { forceNew: true, reconnection: false, transports: ['websocket'], auth: { token: token(SECRET, `by-${i}`, 'bench') } });
    s.on('critical_notification', (n) => {
      const t0 = pending.get(n.id);
      if (t0 !== undefined) {
        pending.delete(n.id);
        samples.push(now() - t0);
      }
    });
    return new Promise((r) => s.once('connected', () => r(s)));
  }),
);

/** Notifications to the clients at RATE a second for SECONDS; the latencies of those delivered. */
async function phase(name, index) {
  samples = [];
  pending.clear();
  const started = now();
  let sent = 0;
  let non202 = 0;
  const inflight = [];
  while (now() - started < SECONDS * 1000) {
    const id = `p${index}-${sent}`;
    pending.set(id, now());
    inflight.push(
      api(url, KEY, 'POST', `/api/v1/users/by-${sent % CLIENTS}/notifications`, { id, title: 'bystander' }).then((r) => {
        if (r.status !== 202) non202++;
      }),
    );
    sent++;
    await sleep(Math.max(0, started + (sent * 1000) / RATE - now()));
  }
  await Promise.all(inflight);
  const deadline = now() + 10_000;
  while (pending.size > 0 && now() < deadline) await sleep(50);
  const sorted = samples.slice().sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { name, sent, delivered: sorted.length, non202, p50: q(0.5), p99: q(0.99), max: sorted[sorted.length - 1] };
}

async function withDisturbance(kind, index) {
  if (kind === 'baseline') return [await phase(index ? 'baseline again' : kind, index), null];
  const child = spawn(process.execPath, [SELF], {
    env: { ...process.env, BYSTANDERS_ROLE: kind, URL: url, KEY, SECRET, PORT: String(port), BIG_RATE: String(BIG_RATE) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await sleep(1000); // under way before the phase starts
  const result = await phase(kind, index);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await sleep(1000);
  return [result, JSON.parse(out.trim() || '{}')];
}

const rows = [];
// The baseline again at the end: how much the machine itself drifted over the run.
const KINDS = ['baseline', 'bulk', 'slow', 'flood', 'baseline'];
for (const [i, kind] of KINDS.entries()) rows.push(await withDisturbance(kind, i));
for (const c of clients) c.close();
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });

const base = rows[0][0];
const ms = (v) => (v === undefined ? '-' : v.toFixed(1));
const ratio = (v, b) => (v === undefined || !b ? '-' : `${(v / b).toFixed(2)}x`);
console.log(`| phase (${CLIENTS} clients, ${RATE}/s, ${SECONDS} s) | delivered | p50 ms | p99 ms | max ms | p50 / baseline | p99 / baseline | disturbance |`);
console.log('|---|---|---|---|---|---|---|---|');
for (const [r, d] of rows) {
  const what = !d
    ? '-'
    : r.name === 'flood'
      ? `${d.sent} events, ${d.answered} answered`
      : `${d.sent} x 64 KiB${r.name === 'slow' ? `, ${d.dropped} clients dropped` : ''}${d.refused ? `, ${d.refused} not 202` : ''}`;
  console.log(
    `| ${r.name} | ${r.delivered} of ${r.sent}${r.non202 ? ` (${r.non202} not 202)` : ''} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${ratio(r.p50, base.p50)} | ${ratio(r.p99, base.p99)} | ${what} |`,
  );
}
