#!/usr/bin/env node
// Upgrade storms: several storms of socket.io clients at once, each client on the default transports (it opens
// on long-polling and upgrades to websocket), on a machine loaded by the storms themselves. Counts, per storm,
// the clients that got `connected`, those upgraded, and those whose session was lost (a disconnect, such as
// `transport error` after `400 Session ID unknown`, or no `connected` at all) while every client is held open
// past the Engine.IO upgrade timeout (10 s). Not run in CI: how many clients miss the upgrade timeout depends
// on the machine's load.
//
//   node bench/upgrade_storm.mjs [--storms 3] [--clients 500] [--hold 20] [--settle 120]
//
// Uses the official socket.io-client from e2e/node_modules (run `npm ci` in e2e/ first) and $HERALD_BIN
// (default $CARGO_TARGET_DIR/debug/herald, else target/debug/herald: the e2e suite's build).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
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
const STORMS = opt('storms', 3);
const CLIENTS = opt('clients', 500);
const HOLD_S = opt('hold', 20);
const SETTLE_S = opt('settle', 120);
const BIN = process.env.HERALD_BIN || join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'debug', 'herald');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const SECRET = process.env.STORM_SECRET || randomBytes(32).toString('hex');

async function freePort() {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** One storm: `CLIENTS` clients of distinct users connecting at once; resolves with its counts. */
async function storm(url, n) {
  const counts = { connected: 0, upgraded: 0, lost: 0, settled: 0, reasons: {} };
  const sockets = [];
  const started = Date.now();
  for (let i = 0; i < CLIENTS; i++) {
    const userId = `storm${n}-u${i}`;
    const token = jwt.sign({ userId, sessionId: `${userId}-s`, role: 'storm' }, SECRET, { expiresIn: '1h' });
    // No reconnection: a lost session stays lost and is counted.
    const s = io(url, { forceNew: true, reconnection: false, timeout: 60_000, auth: { token } });
    s.io.on('open', () => s.io.engine.on('upgrade', () => counts.upgraded++));
    let settled = false;
    const settle = () => {
      if (!settled) counts.settled++;
      settled = true;
    };
    s.on('connected', () => {
      counts.connected++;
      settle();
    });
    // Each client counts once, by the first way it was lost.
    let lost = false;
    const lose = (why) => {
      settle();
      if (lost) return;
      lost = true;
      counts.lost++;
      counts.reasons[why] = (counts.reasons[why] ?? 0) + 1;
    };
    s.on('disconnect', (reason) => lose(reason));
    s.on('connect_error', (e) => lose(`connect_error: ${e.message}`));
    sockets.push(s);
  }
  // Every client settled (connected or refused), then held past the upgrade timeout, so a session closed by a
  // timed-out upgrade shows.
  while (counts.settled < CLIENTS && Date.now() - started < SETTLE_S * 1000) await sleep(250);
  counts.settledIn = (Date.now() - started) / 1000;
  const held = Date.now();
  while (Date.now() - held < HOLD_S * 1000) await sleep(250);
  for (const s of sockets) {
    s.removeAllListeners('disconnect');
    s.close();
  }
  return counts;
}

if (process.env.STORM_URL) {
  // A child: one storm, its counts as JSON on stdout.
  console.log(JSON.stringify(await storm(process.env.STORM_URL, Number(process.env.STORM_N))));
  process.exit(0);
}

const port = await freePort();
const dataDir = mkdtempSync(join(tmpdir(), 'herald-upgrade-storm-'));
const url = `http://127.0.0.1:${port}`;
const server = spawn(BIN, ['serve'], {
  env: {
    ...process.env,
    HERALD_PORT: String(port),
    HERALD_HOST: '127.0.0.1',
    HERALD_DATA_DIR: dataDir,
    JWT_SECRET: SECRET,
    HERALD_API_KEYS: `storm-${randomBytes(16).toString('hex')}`,
    HERALD_LOG: 'warn',
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

// Each storm in a process of its own, as separate clients would be.
const SELF = fileURLToPath(import.meta.url);
const results = await Promise.all(
  Array.from({ length: STORMS }, (_, n) => {
    const child = spawn(process.execPath, [SELF, ...args], {
      env: { ...process.env, STORM_URL: url, STORM_N: String(n), STORM_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    return new Promise((r) => child.once('exit', () => r(JSON.parse(out))));
  }),
);
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });

console.log(`| storm (${CLIENTS} clients, ${STORMS} at once, held ${HOLD_S} s) | settled in | connected | upgraded | lost | how |`);
console.log('|---|---|---|---|---|---|');
results.forEach((c, n) => {
  const how = Object.entries(c.reasons)
    .map(([r, k]) => `${k} ${r}`)
    .join(', ');
  const never = CLIENTS - c.settled;
  const lost = c.lost + never;
  const reasons = never ? `${how ? `${how}, ` : ''}${never} never settled` : how;
  console.log(`| ${n + 1} | ${c.settledIn.toFixed(1)} s | ${c.connected} | ${c.upgraded} | ${lost} | ${reasons || '-'} |`);
});
