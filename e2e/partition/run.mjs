// One partition run: three Herald nodes, Redis and PostgreSQL each in its own network namespace (net.mjs), the
// workload from the root namespace (workload.mjs), the nemesis (faults.mjs), the final reads, and the checker
// (checker.mjs) over the history (history.mjs). Everything it creates (namespaces, processes, temp dirs) is removed
// at the end, also when it fails.
//
// As a command, the long form: `node e2e/partition/run.mjs --seconds 600 [--history FILE]` (HERALD_BIN names the
// binary); it prints the counted results as JSON and exits 1 when the checker found a violation.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RedisServer, startCluster, startPrivatePostgres, waitReady } from '../cluster.mjs';
import { HERALD_BIN, recordSecret, sleep } from '../helpers.mjs';
import { check } from './checker.mjs';
import { FAULTS, randomSchedule, shortSchedule } from './faults.mjs';
import { History } from './history.mjs';
import { createNet } from './net.mjs';
import { observe } from './observe.mjs';
import { startWebhookReceiver } from './webhook.mjs';
import { Fleet, backend } from './workload.mjs';

const ROLE = 'attending';
const LEASE_MS = 1500;
/** The escalation policy of the run: steps of seconds, so that claims race under every fault. */
const policy = (hook) => `[escalation]
lease = "${LEASE_MS}ms"
webhook_timeout = "1s"

[escalation.policies.critical]
steps = [
  { after = "1500ms", renotify = true },
  { after = "3s", to_role = "${ROLE}" },
  { after = "4s", webhook = "${hook}" },
]
`;

/** The users: radiologists who acknowledge at once, late or never, one who lets the session idle out (no activity, no acknowledgement), two attendings. */
const SPECS = [
  { userId: 'rad-fast-1', role: 'radiologist', ack: 'fast' },
  { userId: 'rad-fast-2', role: 'radiologist', ack: 'fast' },
  { userId: 'rad-slow', role: 'radiologist', ack: 'slow' },
  { userId: 'rad-never', role: 'radiologist', ack: 'never' },
  { userId: 'rad-idle', role: 'radiologist', ack: 'never', idle: true }, // an acknowledgement is activity too
  { userId: 'att-1', role: ROLE, ack: 'slow' },
  { userId: 'att-2', role: ROLE, ack: 'fast' },
];

/**
 * Run once. `seconds` null: the short schedule (every fault alone, then overlapping pairs); else random faults for
 * that long. Resolves with { result: { violations, checked }, counts, faults, ops }.
 */
export async function runPartition({ seconds = null, historyFile = null, log = () => {} } = {}) {
  const suffix = randomBytes(4).toString('hex');
  const runId = `${process.pid}-${suffix}`;
  const dir = mkdtempSync(join(tmpdir(), 'herald-partition-'));
  const history = new History(historyFile);
  const cleanup = [];
  const ctx = { history, dir, pauseMs: LEASE_MS + 1500 };
  // an interrupted run (SIGINT, a crash) still removes its directories: the nodes' processes are SIGKILLed by
  // cluster.mjs, the namespaces by net.mjs, PostgreSQL below
  const removeDirs = () => {
    for (const d of [dir, ...(ctx.cluster?.nodes ?? []).map((n) => n.dataDir)]) rmSync(d, { recursive: true, force: true });
  };
  process.once('exit', removeDirs);
  let fleet;
  let load;
  try {
    const net = createNet(3);
    cleanup.push(() => net.teardown());
    ctx.net = net;
    log(`partition ${runId}: namespaces hj-${net.tag}-*, 10.213.${net.k}.0/24`);

    const pg = await startPrivatePostgres({ wrap: net.exec('pg'), listen: '*', host: net.pgControl, allow: `10.213.${net.k}.0/24` });
    if (pg.skip) throw Object.assign(new Error(`partition: no private PostgreSQL: ${pg.skip}`), { skip: pg.skip });
    // pg_ctl's server is no child of this process: stopped by its pid file if the run is interrupted
    const stopPg = () => stopPostgresNow(pg.dir);
    process.once('exit', stopPg);
    cleanup.push(async () => {
      process.removeListener('exit', stopPg);
      await pg.remove();
    });
    ctx.pg = pg;

    const redis = new RedisServer(6379, { wrap: net.exec('redis'), bind: '0.0.0.0', host: net.redisControl });
    await redis.start();
    cleanup.push(() => redis.stop());
    ctx.redis = redis;

    const webhookSecret = `whsec-${randomBytes(16).toString('hex')}`;
    recordSecret('webhook_secret', webhookSecret);
    const receiver = await startWebhookReceiver({ history, host: net.webhookHost, secret: webhookSecret });
    cleanup.push(() => receiver.close());
    const config = join(dir, 'herald.toml');
    writeFileSync(config, policy(receiver.url));

    ctx.serverEnv = { HERALD_CONFIG: config, HERALD_ESCALATION_WEBHOOK_SECRET: webhookSecret };
    const cluster = await startCluster({
      nodes: 3,
      redis,
      db: { url: pg.url, drop() {} },
      wrap: net.nodes.map((n) => n.wrap),
      host: net.nodes.map((n) => n.host),
      env: {
        HERALD_HOST: '0.0.0.0',
        ...ctx.serverEnv,
        HERALD_CLUSTER_NODE_TIMEOUT: '3s',
        HERALD_PING_INTERVAL: '1s',
        HERALD_PING_TIMEOUT: '2s',
        HERALD_SESSION_IDLE_TIMEOUT: '6s',
        HERALD_SESSION_WARNING_BEFORE: '2s',
      },
      nodeEnv: net.nodes.map((n) => ({
        REDIS_URL: `redis://${n.redisHost}:${redis.port}`,
        DATABASE_URL: `postgres://postgres@${n.pgHost}:${pg.port}/postgres`,
      })),
    });
    cleanup.push(() => cluster.stop());
    ctx.cluster = cluster;
    log(`partition ${runId}: cluster up`);

    const started = Date.now();
    history.add('config', { escalationRole: ROLE, escalationUsers: [], faults: Object.keys(FAULTS) });
    fleet = new Fleet({ cluster, history, specs: SPECS, slowAckMs: 2500 });
    fleet.start();
    load = backend({ cluster, history, userIds: SPECS.filter((s) => s.role === 'radiologist').map((s) => s.userId) });
    await sleep(3000);

    const faults = seconds === null ? await shortSchedule(ctx) : await randomSchedule(ctx, { untilMs: started + seconds * 1000 });
    log(`partition ${runId}: ${faults} faults injected; healing`);

    // Everything healed (each fault ended itself); wait until every node is back with Redis, then let the backend
    // stop and the escalations of the last notifications run their course.
    for (const n of cluster.nodes) await waitReady(n, { ms: 30_000 });
    await sleep(2000);
    await load.stop();
    await sleep(5000);
    await fleet.catchUp(4000);
    log(`partition ${runId}: final reads`);
    await finalReads(ctx, started);

    const result = check(history.ops);
    return { result, counts: history.counts(), faults, ops: history.ops, seconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    await load?.stop().catch(() => {});
    await fleet?.stop().catch(() => {});
    for (const f of cleanup.reverse()) {
      try {
        await f();
      } catch (e) {
        log(`partition ${runId}: clean-up: ${e.message}`);
      }
    }
    process.removeListener('exit', removeDirs);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * On an interrupted run (SIGINT, a crash): an immediate shutdown of the run's own PostgreSQL, found by its pid file,
 * and its directory removed. Synchronous, as an exit handler must be.
 */
function stopPostgresNow(dir) {
  try {
    const pid = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGQUIT');
  } catch {
    /* not running */
  }
  rmSync(dir, { recursive: true, force: true });
}

/** GET `path` on the first node that answers 200; the answer, or the last failure. */
async function read(cluster, path) {
  let last;
  for (const n of cluster.nodes) {
    last = await n.api('GET', path).catch((e) => ({ status: 0, text: String(e) }));
    if (last.status === 200) return last;
  }
  return last;
}

/**
 * The final reads the checker needs: each acknowledgement answered ok read back from the store, each critical
 * notification's timeline, the audit trail's `created` records (export API) and `herald audit verify`.
 */
async function finalReads(ctx, started) {
  const { history, cluster, pg } = ctx;
  const acked = new Map();
  for (const op of history.ops) if (op.type === 'ack_answer' && op.ok) acked.set(`${op.userId}\0${op.id}`, op);
  for (const { userId, id } of acked.values()) {
    const r = await read(cluster, `/api/v1/users/${encodeURIComponent(userId)}/notifications/${encodeURIComponent(id)}`);
    history.add('store', { userId, id, state: r.status === 200 ? r.body.state : `unread (${r.status})` });
  }
  for (const op of history.ops.filter((o) => o.type === 'notify' && o.status === 202 && o.severity === 'critical')) {
    const r = await read(cluster, `/api/v1/notifications/${encodeURIComponent(op.id)}/timeline`);
    history.add('timeline', { id: op.id, events: r.status === 200 ? r.body.events.map((e) => ({ type: e.type, level: e.level })) : [] });
  }
  const from = new Date(started - 60_000).toISOString();
  const to = new Date(Date.now() + 60_000).toISOString();
  const exported = await read(cluster, `/api/v1/audit?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&format=jsonl`);
  const created = exported.status === 200
    ? exported.text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)).filter((r) => r.type === 'created').map((r) => r.notificationId)
    : [];
  const verify = await new Promise((resolve) => {
    // the nodes' configuration, keys and (the run's own) data dir: the command creates no development credentials
    // where it runs, and reads the store as the server does
    const env = {
      ...process.env,
      ...ctx.serverEnv,
      DATABASE_URL: pg.url,
      JWT_SECRET: cluster.secret,
      HERALD_API_KEYS: cluster.apiKeys.join(','),
      HERALD_DATA_DIR: ctx.dir,
      HERALD_LOG: 'warn',
      RUST_BACKTRACE: '0',
    };
    execFile(HERALD_BIN, ['audit', 'verify'], { env, cwd: ctx.dir, timeout: 60_000 }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`.trim();
      resolve({ code: err ? (err.code ?? -1) : 0, out: out.length > 1500 ? `${out.slice(0, 1200)}\n…\n${out.slice(-300)}` : out });
    });
  });
  history.add('audit', { created, exportStatus: exported.status, verify });
}

/** Counted results for docs/reliability.md: operations, faults, invariants checked, violations. */
export function summary({ result, counts, faults, seconds, ops }) {
  const operations = Object.entries(counts)
    .filter(([t]) => !['config', 'fault', 'store', 'timeline', 'audit'].includes(t))
    .reduce((s, [, n]) => s + n, 0);
  return { seconds, operations, byType: counts, faults, checked: result.checked, violations: result.violations.length, observed: observe(ops) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const seconds = arg('--seconds') !== undefined ? Number(arg('--seconds')) : Number(process.env.HERALD_PARTITION_SECONDS || 600);
  const historyFile = arg('--history') ?? join(tmpdir(), `herald-partition-${process.pid}.jsonl`);
  const run = await runPartition({ seconds, historyFile, log: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(JSON.stringify(summary(run), null, 2) + '\n');
  for (const v of run.result.violations.slice(0, 20)) process.stdout.write(`VIOLATION ${v.invariant}: ${v.message}\n  ${JSON.stringify(v.evidence).slice(0, 1500)}\n`);
  process.stderr.write(`history: ${historyFile}\n`);
  process.exit(run.result.violations.length ? 1 : 0);
}
