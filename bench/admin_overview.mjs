// What the dashboard costs the server: with N idle websocket sockets (N users, one session each) and
// M unacknowledged notifications, the time and size of GET /admin/api/overview, the picture that the
// dashboard's stream takes once a second for every open dashboard. Starts its own release server
// (HERALD_BIN, default $CARGO_TARGET_DIR/release/herald) on a free port; no timing assertions.
// --title-kb K gives every notification a title of K KiB (what a backend may send: the picture carries
// a cut of it).
//
//   cargo build --release && node bench/admin_overview.mjs [--sockets 1000] [--notifications 200] [--rounds 50] [--title-kb 0]
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const e2e = join(here, '..', 'e2e');

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SOCKETS = arg('sockets', 1000);
const NOTIFICATIONS = arg('notifications', 200);
const ROUNDS = arg('rounds', 50);
const TITLE_KB = arg('title-kb', 0);
const target = process.env.CARGO_TARGET_DIR || join(here, '..', 'target');
// Before the helpers are loaded: they read it once (loaded earlier, they ran a debug build).
process.env.HERALD_BIN ||= join(target, 'release', 'herald');
const require = createRequire(join(e2e, 'package.json'));
const { startServer, rid } = await import(join(e2e, 'helpers.mjs'));
const { io } = require('socket.io-client');

console.log(`server: ${process.env.HERALD_BIN}`);
const server = await startServer({ HERALD_LOG: 'warn' });
const sockets = [];
try {
  for (let i = 0; i < SOCKETS; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(SOCKETS, i + 100); j++) {
      const s = io(server.url, { forceNew: true, reconnection: false, transports: ['websocket'], auth: { token: server.identity().token } });
      sockets.push(s);
      batch.push(new Promise((ok, fail) => { s.once('connected', ok); s.once('connect_error', fail); }));
    }
    await Promise.all(batch);
  }
  for (let i = 0; i < NOTIFICATIONS; i++) {
    const title = TITLE_KB ? `n${i} `.padEnd(TITLE_KB * 1024, 'x') : `n${i}`;
    const r = await server.notify(rid('offline'), { type: 'bench', severity: 'high', title });
    if (r.status !== 202) throw new Error(`notify: ${r.status}`);
  }
  // GET /api/v1/users (one listing of the same sockets) beside it: a yardstick for a busy machine.
  const timed = async (path) => {
    const times = [];
    let text = '';
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      const r = await fetch(server.url + path, { headers: { authorization: `Bearer ${server.apiKey}` } });
      text = await r.text();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(1);
    console.log(`GET ${path} x${ROUNDS}: p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${q(1)} ms; ${(text.length / 1024).toFixed(0)} KiB`);
    return text;
  };
  const picture = JSON.parse(await timed('/admin/api/overview'));
  await timed('/api/v1/users');
  console.log(`sockets ${picture.sockets.total}, users ${picture.users.length}, unacknowledged ${picture.unacknowledged.total} (listed ${picture.unacknowledged.notifications.length})`);
} finally {
  for (const s of sockets) s.close();
  await server.stop();
}
