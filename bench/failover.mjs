#!/usr/bin/env node
// Failover as users live it: three release Herald nodes with default settings on a private Redis and a fresh
// PostgreSQL database, behind nginx with the docs' configuration (docs/nginx/herald.conf), and --sockets
// socket.io-client sockets (default 10,000) with the client's own reconnection and default delays, one user
// each, all in one role, spread over the nodes by source address. Each user gets one notification, left
// unacknowledged. --bystanders other users (default 200), in a process of their own so that the storm's
// clients do not slow their event loop, connect straight to the two nodes that will survive and get a steady
// --rate notifications a second (default 50) through nginx throughout. Then one node is killed with SIGKILL,
// and the run reports:
//
//   - the time from the kill until every socket of the dead node (as many as its /metrics counted before the
//     kill) is connected again and has been caught up (its unacknowledged notification delivered again), and
//     the per-socket p50/p99 of that;
//   - the survivors' CPU per reconnect (their CPU during the storm above their baseline rate, over the
//     sockets that moved), and Redis commands per reconnect;
//   - the CPU the storm's clients (this process), nginx and Redis used meanwhile: on one machine they share
//     its cores with the servers;
//   - the other users' delivery latency p50/p99 during the storm against the baseline before the kill.
//
// Not run in CI (timings; the e2e test e2e/test/cluster_failover.test.mjs runs the same at a few hundred
// sockets). Needs nginx, redis-server and PostgreSQL on 127.0.0.1:5432 (scripts/setup.sh), the release build
// (`cargo build --release`; $HERALD_BIN or $CARGO_TARGET_DIR/release/herald) and `npm ci` in e2e/.
//
//   node bench/failover.mjs [--sockets 10000] [--bystanders 200] [--rate 50] [--baseline 5]
import { fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.env.HERALD_BIN ||= resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target', 'release', 'herald');
process.env.HERALD_LOG ||= 'info'; // the nodes' port is read from their "listening" line
const { HeraldServer, sleep } = await import('../e2e/helpers.mjs');
const { startCluster } = await import('../e2e/cluster.mjs');
const { NO_NGINX, startNginx } = await import('../e2e/nginx.mjs');
const F = await import('../e2e/failover.mjs');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SOCKETS = opt('sockets', 10_000);
const RATE = opt('rate', 50);
const BASELINE_S = opt('baseline', 5);
const BYSTANDERS = opt('bystanders', 200);
const log = (m) => process.stderr.write(`[failover] ${m}\n`);
const ms = (v) => (v === null ? '-' : `${Math.round(v)}`);

// The bystanders live in a child process of their own, so that the storm's clients (this process, busy with
// thousands of reconnections) do not delay their events: sockets straight to the surviving nodes, and the steady
// load through nginx to them, each notification's latency kept by the phase the parent names.
if (process.env.FAILOVER_BYSTANDERS) {
  const cfg = JSON.parse(process.env.FAILOVER_BYSTANDERS);
  const handle = (port) => new HeraldServer({ port, dataDir: null, secret: cfg.secret, apiKeys: cfg.apiKeys, extraEnv: {} });
  const nodes = cfg.ports.map(handle);
  const members = [];
  for (const n of nodes) {
    members.push(...(await F.openFleet(n, n, { count: Math.ceil(cfg.count / nodes.length), role: cfg.role, concurrency: 50 })));
  }
  const load = F.steadyLoad(handle(cfg.edgePort), members, cfg.rate, { title: 'bystanders' });
  process.on('message', async (m) => {
    if (m.phase) load.phase = m.phase;
    if (m.stop) {
      await load.stop();
      await sleep(2000); // the last deliveries arrive
      process.send({ results: { baseline: load.latencies('baseline'), storm: load.latencies('storm'), refused: load.refused } });
      members.forEach((x) => x.c.close());
      process.exit(0);
    }
  });
  process.send({ ready: true });
  await new Promise(() => {});
}

/** CPU seconds of process `pid` and its children (nginx's master and its workers), from /proc. */
function treeCpuSeconds(pid) {
  let total = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8').split(')').pop().trim().split(/\s+/);
      if (Number(d) === pid || Number(stat[1]) === pid) total += (Number(stat[11]) + Number(stat[12])) / 100;
    } catch {
      /* gone */
    }
  }
  return total;
}

if (NO_NGINX) {
  log(NO_NGINX);
  process.exit(2);
}

const cl = await startCluster({ nodes: 3 });
const nginx = await startNginx(cl, { workerProcesses: 2, workerConnections: SOCKETS + 1024 });
let code = 0;
try {
  const edge = nginx.edge;
  log(`connecting ${SOCKETS} sockets through nginx`);
  const fleet = await F.openFleet(edge, cl, { count: SOCKETS, concurrency: 50, timeout: 60_000 });
  log('one unacknowledged notification to each user');
  const first = new Map();
  for (let k = 0; k < fleet.length; k += 64) {
    await Promise.all(
      fleet.slice(k, k + 64).map(async (m) => {
        const id = `pre-${m.i}-${m.userId}`;
        const r = await edge.notify(m.userId, { id, title: 'before the failover', severity: 'critical' });
        if (r.status !== 202) throw new Error(`notification ${m.i}: ${r.status} ${r.text}`);
        first.set(m.i, id);
      }),
    );
  }
  if (!(await F.until(() => fleet.every((m) => F.count(m, 'critical_notification', first.get(m.i)) >= 1), 60_000))) {
    throw new Error('not every user got the first notification');
  }

  const victim = cl.b;
  const survivors = cl.nodes.filter((n) => n !== victim);
  log(`${BYSTANDERS} bystanders on the survivors, ${RATE} notifications/s to them`);
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: {
      ...process.env,
      FAILOVER_BYSTANDERS: JSON.stringify({
        ports: survivors.map((n) => n.port), edgePort: edge.port, secret: cl.secret, apiKeys: cl.apiKeys,
        count: BYSTANDERS, rate: RATE, role: 'radiologist-bystanders',
      }),
    },
  });
  const fromChild = (key) => new Promise((res, rej) => {
    child.on('message', (m) => m[key] !== undefined && res(m[key]));
    child.on('exit', (code) => rej(new Error(`bystanders exited ${code}`)));
  });
  await fromChild('ready');
  const load = { set phase(p) { child.send({ phase: p }); } };
  const cpu0 = survivors.map((n) => F.cpuSeconds(n.proc.pid));
  await sleep(BASELINE_S * 1000);
  const cpu1 = survivors.map((n) => F.cpuSeconds(n.proc.pid));
  const redis0 = await F.redisCalls(cl.redis.port);
  // How many sockets the node to be killed holds (its own count, /metrics): the storm is over when that many
  // fleet sockets have lost their connection and each is caught up. Counting the disconnects a fixed moment
  // after the kill undercounts them when this process is slow to hear them.
  const metrics = await (await fetch(`${victim.url}/metrics`)).text();
  const held = Number(metrics.match(/^herald_connected_sockets\{transport="websocket"\} (\d+)/m)?.[1] ?? NaN);
  if (!Number.isFinite(held) || held === 0) throw new Error(`no socket count in ${victim.nodeId}'s /metrics`);
  const others = { clients: process.cpuUsage(), nginx: treeCpuSeconds(nginx.proc.pid), redis: F.cpuSeconds(cl.redis.proc.pid) };

  load.phase = 'storm';
  const killedAt = Date.now();
  await cl.kill9(victim);
  // the sockets of the dead node are those that lose their connection now
  const lost = () => fleet.filter((m) => m.c.events.some((e) => e.event === 'disconnect' && e.at >= killedAt));
  const caughtUp = (m) => F.connects(m) >= 2 && F.count(m, 'critical_notification', first.get(m.i)) >= 2;
  let victims = [];
  const done = await F.until(() => (victims = lost()).length >= held && victims.every(caughtUp), 120_000, 20);
  const doneAt = Date.now();
  const cpu2 = survivors.map((n) => F.cpuSeconds(n.proc.pid));
  const redis1 = await F.redisCalls(cl.redis.port);
  const clientsCpu = process.cpuUsage(others.clients);
  const elsewhere = {
    clients: (clientsCpu.user + clientsCpu.system) / 1e6,
    nginx: treeCpuSeconds(nginx.proc.pid) - others.nginx,
    redis: F.cpuSeconds(cl.redis.proc.pid) - others.redis,
  };
  load.phase = 'after';
  await sleep(1000);
  const results = fromChild('results');
  child.send({ stop: true });
  const { baseline: base, storm, refused } = await results;

  const perSocket = victims
    .map((m) => F.nthAt(m, 2, (e) => e.event === 'critical_notification' && e.args[0]?.id === first.get(m.i)))
    .filter((t) => t !== null)
    .map((t) => t - killedAt);
  const stormS = (doneAt - killedAt) / 1000;
  const baseRate = (cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]) / BASELINE_S;
  const stormCpu = cpu2[0] - cpu1[0] + cpu2[1] - cpu1[1];
  const rows = [
    ['sockets (on the killed node)', `${SOCKETS} (${held}; lost ${victims.length})`],
    ['all reconnected and caught up', done ? 'yes' : `NO: ${victims.filter((m) => !caughtUp(m)).length} not`],
    ['kill to the last socket caught up (ms)', ms(doneAt - killedAt)],
    ['per socket, kill to caught up p50 / p99 (ms)', `${ms(F.percentile(perSocket, 50))} / ${ms(F.percentile(perSocket, 99))}`],
    ['survivors CPU during the storm (s); their baseline (s/s)', `${stormCpu.toFixed(2)}; ${baseRate.toFixed(3)}`],
    ['survivors CPU per reconnect above baseline (µs)', ms(((stormCpu - baseRate * stormS) / Math.max(1, victims.length)) * 1e6)],
    ['CPU during the storm (s): the storm\'s clients / nginx / Redis', `${elsewhere.clients.toFixed(2)} / ${elsewhere.nginx.toFixed(2)} / ${elsewhere.redis.toFixed(2)}`],
    ['Redis commands per reconnect (all nodes)', ((redis1 - redis0) / Math.max(1, victims.length)).toFixed(1)],
    ['bystanders delivery p50 / p99, baseline (ms)', `${ms(F.percentile(base.ms, 50))} / ${ms(F.percentile(base.ms, 99))} (n=${base.ms.length}, missing ${base.missing})`],
    ['bystanders delivery p50 / p99, during the storm (ms)', `${ms(F.percentile(storm.ms, 50))} / ${ms(F.percentile(storm.ms, 99))} (n=${storm.ms.length}, missing ${storm.missing})`],
    ['bystanders p99 storm / baseline', F.percentile(base.ms, 99) ? (F.percentile(storm.ms, 99) / F.percentile(base.ms, 99)).toFixed(2) : '-'],
    ['bystanders API calls refused (by status)', JSON.stringify(refused)],
  ];
  console.log(`\n| failover: \`node bench/failover.mjs ${args.join(' ')}\` | value |\n|---|---:|`);
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
  if (!done) code = 1;
  fleet.forEach((m) => m.c.close());
} catch (e) {
  log(`failed: ${e.stack ?? e}`);
  code = 1;
} finally {
  await nginx.stop();
  await cl.stop();
}
process.exit(code);
