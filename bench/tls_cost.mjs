// What TLS on Herald's own port (HERALD_TLS_CERT, HERALD_TLS_KEY) costs the server against plain websockets,
// in the same run: N websocket sockets of the official socket.io-client connect (JWT in `auth`), then R role
// broadcasts reach all of them; the server's CPU over each phase (the sum of /proc/PID/task/*/schedstat,
// nanoseconds on CPU, user and system) divided by the connects and by the deliveries. A fresh release server
// per run, pinned to core 1 with this script on core 0 when taskset exists; plain and TLS alternate, `--repeats`
// times each, so that a busy machine's drift touches both. No timing assertions.
//
//   cargo build --release -p herald && node bench/tls_cost.mjs [--sockets 1000] [--rounds 20] [--repeats 2]
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const e2e = join(here, '..', 'e2e');
const target = process.env.CARGO_TARGET_DIR || join(here, '..', 'target');
// Before the helpers are loaded: they read it once.
process.env.HERALD_BIN ||= join(target, 'release', 'herald');
const require = createRequire(join(e2e, 'package.json'));
const { io } = require('socket.io-client');
const { startServer } = await import(join(e2e, 'helpers.mjs'));
const { startTlsServer } = await import(join(e2e, 'tls.mjs'));

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SOCKETS = arg('sockets', 1000);
const ROUNDS = arg('rounds', 20);
const REPEATS = arg('repeats', 2);
const ROLE = 'bench';
// As bench/run.py starts Herald: quiet, no presence events, the API's rate limit out of the way.
const ENV = {
  HERALD_LOG: 'warn',
  HERALD_PRESENCE_AUDIENCE: 'none',
  HERALD_API_RATE_LIMIT_PER_SECOND: '1000000',
  HERALD_API_RATE_LIMIT_BURST: '1000000',
};

const pinned = spawnSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' }).status === 0;

/** Nanoseconds the server's threads have been on a CPU. */
function cpuNs(pid) {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* a thread that ended meanwhile */
    }
  }
  return ns;
}

async function run(mode) {
  const server = mode === 'tls' ? await startTlsServer(ENV) : await startServer(ENV);
  const pid = server.proc.pid;
  if (pinned) spawnSync('taskset', ['-pc', '1', String(pid)], { stdio: 'ignore' });
  const post = (path, body) =>
    mode === 'tls' ? server.request('POST', path, body) : server.api('POST', path, body);
  const sockets = [];
  let received = 0;
  let wake = null;
  try {
    const cpu0 = cpuNs(pid);
    const t0 = performance.now();
    for (let i = 0; i < SOCKETS; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(SOCKETS, i + 100); j++) {
        const s = io(server.url, {
          forceNew: true, reconnection: false, transports: ['websocket'], ca: server.ca,
          auth: { token: server.identity({ role: ROLE }).token },
        });
        s.on('round', () => {
          received++;
          if (wake && received >= wake.want) wake.done();
        });
        sockets.push(s);
        batch.push(new Promise((ok, fail) => { s.once('connected', ok); s.once('connect_error', fail); }));
      }
      await Promise.all(batch);
    }
    const connectNs = cpuNs(pid) - cpu0;
    const connectMs = performance.now() - t0;

    const cpu1 = cpuNs(pid);
    for (let r = 1; r <= ROUNDS; r++) {
      const all = new Promise((done) => (wake = { want: r * SOCKETS, done }));
      const sent = await post(`/api/v1/roles/${ROLE}/events`, { event: 'round', data: { r } });
      if (sent.status !== 202 && sent.status !== 200) throw new Error(`broadcast: ${sent.status} ${sent.text}`);
      await all;
    }
    const deliverNs = cpuNs(pid) - cpu1;
    return {
      mode,
      connectUs: connectNs / 1000 / SOCKETS,
      connectsPerS: SOCKETS / (connectMs / 1000),
      deliveryUs: deliverNs / 1000 / (ROUNDS * SOCKETS),
    };
  } finally {
    for (const s of sockets) s.close();
    await server.stop();
  }
}

const results = [];
for (let i = 0; i < REPEATS; i++) for (const mode of ['plain', 'tls']) results.push(await run(mode));

const mean = (mode, key) => {
  const xs = results.filter((r) => r.mode === mode).map((r) => r[key]);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
};
const range = (mode, key) => results.filter((r) => r.mode === mode).map((r) => r[key].toFixed(1)).join(' / ');
console.log(`${SOCKETS} websockets, ${ROUNDS} role broadcasts, ${REPEATS} runs each${pinned ? ', server on core 1' : ''}`);
console.log('| per | plain ws | TLS wss | TLS / plain |');
console.log('|---|---:|---:|---:|');
for (const [label, key] of [
  ['connect, server CPU (µs)', 'connectUs'],
  ['delivery, server CPU (µs)', 'deliveryUs'],
  ['connects/s (client-bound)', 'connectsPerS'],
]) {
  const p = mean('plain', key);
  const t = mean('tls', key);
  console.log(`| ${label} | ${p.toFixed(1)} (${range('plain', key)}) | ${t.toFixed(1)} (${range('tls', key)}) | ${(t / p).toFixed(2)} |`);
}
