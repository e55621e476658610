// Cluster e2e harness: N Herald processes sharing one private redis-server and one fresh PostgreSQL database.
//
// Every cluster test file gets its own redis-server on a spare port (so a file may stop it, and files that
// node --test runs concurrently never see each other's keys) and its own database, dropped at the end.
// Nodes reuse HeraldServer from helpers.mjs: same JWT_SECRET and API keys, distinct ports and data dirs,
// HERALD_NODE_ID=node-a/node-b/node-c.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { HeraldServer, HERALD_BIN, captureOutput, freePort, recordSecret, sleep, rid } from './helpers.mjs';

/** Base URL of the PostgreSQL server, without a database name. */
export const PG_URL = (process.env.HERALD_E2E_PG_URL || 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');

export const NODE_IDS = ['node-a', 'node-b', 'node-c', 'node-d', 'node-e'];

// ---------------------------------------------------------------------------------------------------------
// Child processes: whatever this file starts is SIGKILLed when the test process goes away, even on a crash.

const children = new Set();
export function track(proc) {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}
function killAll() {
  for (const p of children) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}
process.once('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    killAll();
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  });
}

/** Wait for a child to exit (after sending `signal`, if given); SIGKILL after `ms`. */
export async function waitExit(proc, signal, ms = 5000) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const done = new Promise((r) => proc.once('exit', r));
  if (signal) proc.kill(signal);
  const t = await Promise.race([done.then(() => 'exit'), sleep(ms).then(() => 'timeout')]);
  if (t === 'timeout') {
    proc.kill('SIGKILL');
    await done;
  }
}

/** `cmd args` run under the command prefix `wrap` (none: as is). */
function wrapped(wrap, cmd, args) {
  return wrap.length ? [wrap[0], [...wrap.slice(1), cmd, ...args]] : [cmd, args];
}

// ---------------------------------------------------------------------------------------------------------
// Redis

function redisPing(host, port, ms = 500) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let buf = '';
    const done = (v) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(false), ms);
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    s.on('error', () => done(false));
  });
}

/**
 * A private redis-server child on a spare port; stop() and start() keep the port. `wrap` prefixes the command
 * (e.g. `ip netns exec NS`, to run it in a network namespace), `bind` is what it listens on and `host` the address
 * this process reaches it at (both 127.0.0.1 by default).
 */
export class RedisServer {
  constructor(port, { wrap = [], bind = '127.0.0.1', host = '127.0.0.1' } = {}) {
    this.port = port;
    this.wrap = wrap;
    this.bind = bind;
    this.host = host;
    this.url = `redis://${host}:${port}`;
    this.proc = null;
    this.log = '';
  }

  /**
   * Start redis-server on this.port. On the first start a port that another process took meanwhile
   * (freePort() only finds one that was free a moment ago) is replaced by a new one; on a restart the
   * port is kept, as the nodes' REDIS_URL names it.
   */
  async start({ retries = this.started ? 0 : 3 } = {}) {
    const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    if (probe.error) {
      throw new Error(
        `redis-server is not runnable (${probe.error.message}): the cluster tests start their own redis-server; ` +
          'install the Debian package redis-server (scripts/setup.sh does)',
      );
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this._start();
        this.started = true;
        return;
      } catch (e) {
        if (!e.portTaken || attempt >= retries) throw e;
        this.port = await freePort();
        this.url = `redis://${this.host}:${this.port}`;
      }
    }
  }

  async _start() {
    this.log = '';
    // a bind address other than loopback needs protected mode off (no password: private, test-only servers)
    const args = ['--port', String(this.port), '--bind', this.bind, '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
    const [cmd, argv] = wrapped(this.wrap, 'redis-server', args);
    const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() });
    track(proc);
    this.proc = proc;
    const onData = (d) => {
      this.log += d.toString();
      if (this.log.length > 50_000) this.log = this.log.slice(-20_000);
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        const err = new Error(`redis-server on port ${this.port} exited at start:\n${this.log.slice(-2000)}`);
        err.portTaken = /Address already in use/.test(this.log);
        this.proc = null;
        throw err;
      }
      // our own process's line, not just any server answering on that port
      if (/Ready to accept connections/.test(this.log) && (await redisPing(this.host, this.port))) return;
      await sleep(30);
    }
    throw new Error(`redis-server on port ${this.port} did not get ready within 10s:\n${this.log.slice(-2000)}`);
  }

  /** Stop it (SIGKILL by default: an outage, not a maintenance). */
  async stop(signal = 'SIGKILL') {
    await waitExit(this.proc, signal);
    this.proc = null;
  }

  get running() {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }
}

export async function startRedis() {
  const r = new RedisServer(await freePort());
  await r.start();
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// PostgreSQL

function psql(sql) {
  const r = spawnSync('psql', [`${PG_URL}/postgres`, '-v', 'ON_ERROR_STOP=1', '-qAtX', '-c', sql], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (r.error) {
    throw new Error(
      `psql is not runnable (${r.error.message}): install the Debian package postgresql-client (scripts/setup.sh does)`,
    );
  }
  if (r.status !== 0) {
    throw new Error(
      `PostgreSQL at ${PG_URL} refused \`${sql}\` (is it running? scripts/setup.sh starts it; ` +
        `HERALD_E2E_PG_URL overrides the address):\n${r.stderr.trim()}`,
    );
  }
  return r.stdout;
}

// databases not dropped yet: dropped when the process exits (after a crash or a signal too)
const databases = new Set();
process.once('exit', () => {
  for (const name of databases) dropDatabase(name);
});

function dropDatabase(name) {
  try {
    psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } catch (e) {
    process.stderr.write(`cluster e2e: could not drop database ${name}: ${e.message}\n`);
  }
  databases.delete(name);
}

/** A fresh, empty database; drop() removes it (WITH (FORCE): PostgreSQL 13+). */
export function createDatabase() {
  const name = `herald_e2e_${randomBytes(6).toString('hex')}`;
  psql(`CREATE DATABASE ${name}`);
  databases.add(name);
  return {
    name,
    url: `${PG_URL}/${name}`,
    drop() {
      dropDatabase(name);
    },
  };
}

/**
 * A private PostgreSQL server (initdb + pg_ctl on a spare port in a temp dir, as the user postgres when run as
 * root, since initdb refuses root), for a test that restarts its database: the shared one is never stopped.
 * Resolves with { url, stop(), start(), remove() }, or with { skip: reason } when this machine cannot run one.
 * `wrap` prefixes its commands (e.g. `ip netns exec NS`), `listen` is its listen_addresses, `host` the address
 * this process reaches it at, and `allow` a further client network (CIDR) it trusts, as the loopback one.
 */
export async function startPrivatePostgres({ wrap = [], listen = '127.0.0.1', host = '127.0.0.1', allow = null } = {}) {
  const bins = spawnSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1'], { encoding: 'utf8' });
  const bin = bins.stdout.trim();
  if (!bin || !existsSync(join(bin, 'initdb'))) return { skip: 'no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin' };
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'herald-e2e-pg-'));
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) return { skip: 'running as root and there is no postgres user for initdb' };
    chownSync(dir, Number(id.stdout), Number(gid.stdout));
  }
  const run = (cmd, args) =>
    new Promise((resolve) => {
      const [c, a] = asRoot
        ? wrapped(wrap, 'runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args])
        : wrapped(wrap, join(bin, cmd), args);
      execFile(c, a, { timeout: 60_000 }, (err, stdout, stderr) => resolve({ ok: !err, out: `${stdout}${stderr}${err ? err.message : ''}` }));
    });
  const data = join(dir, 'data');
  const init = await run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  if (!init.ok) {
    rmSync(dir, { recursive: true, force: true });
    return { skip: `initdb failed: ${init.out.slice(-500)}` };
  }
  if (allow) appendFileSync(join(data, 'pg_hba.conf'), `host all all ${allow} trust\n`);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=${listen}`;
  const pg = {
    port,
    dir,
    url: `postgres://postgres@${host}:${port}/postgres`,
    async start() {
      const r = await run('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'server.log'), '-w', '-t', '30', 'start']);
      if (!r.ok) throw new Error(`private PostgreSQL did not start: ${r.out.slice(-1000)}`);
    },
    /** `-m immediate`: a crash, as a power loss; what was committed must survive it. */
    async stop(mode = 'immediate') {
      await run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
    },
    async remove() {
      await pg.stop('fast');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await pg.start();
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return { skip: e.message };
  }
  return pg;
}

// ---------------------------------------------------------------------------------------------------------
// Herald nodes

/** GET /readyz; { status, body }. status 0 when nothing answered. */
export async function readyz(node) {
  try {
    const r = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(2000) });
    const text = await r.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, body, text };
  } catch (e) {
    return { status: 0, body: null, text: String(e) };
  }
}

/** Poll until GET /readyz says ready and (cluster mode) "redis": "ok". */
export async function waitReady(node, { ms = 20_000, redis = 'ok' } = {}) {
  const deadline = Date.now() + ms;
  let last;
  let noRedisSince = null;
  while (Date.now() < deadline) {
    if (node.proc && (node.proc.exitCode !== null || node.proc.signalCode !== null)) {
      throw new Error(`${node.nodeId ?? node.url} exited while waiting for /readyz\n${node.log.slice(-4000)}`);
    }
    last = await readyz(node);
    if (last.status === 200 && (redis === null || last.body?.redis === redis)) return last.body;
    // ready, but no "redis" field at all: a binary without cluster mode ignores REDIS_URL
    if (redis !== null && last.status === 200 && last.body && !('redis' in last.body)) {
      noRedisSince ??= Date.now();
      if (Date.now() - noRedisSince > 5000) {
        throw new Error(
          `${node.nodeId}: /readyz answers ${last.text} with no "redis" field although REDIS_URL is set: ` +
            `does ${HERALD_BIN} have cluster mode?\n${node.log.slice(-2000)}`,
        );
      }
    }
    await sleep(50);
  }
  throw new Error(
    `${node.nodeId ?? node.url}: /readyz not ready with redis=${redis} within ${ms}ms; last: ${last?.status} ${last?.text}\n${node.log.slice(-4000)}`,
  );
}

/**
 * A HeraldServer that remembers its node id and is tracked for clean-up. Its first start uses
 * HERALD_PORT=0 and reads the port from the "herald listening addr=..." line, so that files running in
 * parallel never race for a port; a restart keeps that port. `wrap` prefixes the command (e.g. `ip netns exec NS`)
 * and `host` is the address its clients reach it at.
 */
class ClusterNode extends HeraldServer {
  constructor(opts, nodeId, { wrap = [], host = '127.0.0.1' } = {}) {
    super({ ...opts, port: 0 });
    this.nodeId = nodeId;
    this.wrap = wrap;
    this.host = host;
  }

  async start() {
    this.log = '';
    const [cmd, argv] = wrapped(this.wrap, HERALD_BIN, ['serve']);
    const proc = track(spawn(cmd, argv, { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] }));
    this.proc = proc;
    captureOutput(proc, this.nodeId, (d) => {
      this.log += d.toString();
      if (this.log.length > 200_000) this.log = this.log.slice(-100_000);
      if (process.env.HERALD_E2E_VERBOSE) process.stderr.write(`[${this.nodeId}] ${d}`);
      if (this.port === 0) {
        const m = this.log.match(/herald listening addr=\S*:(\d+)/);
        if (m) {
          this.port = Number(m[1]);
          this.url = `http://${this.host}:${this.port}`;
        }
      }
    });
    await this.waitHealthy(this.nodeId, () =>
      proc.exitCode !== null || proc.signalCode !== null ? String(proc.exitCode ?? proc.signalCode) : null,
    );
  }

  get running() {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }
}

export class Cluster {
  constructor({ redis, db, nodes, secret, apiKeys, ownsRedis, ownsDb }) {
    this.redis = redis;
    this.db = db;
    this.nodes = nodes;
    this.secret = secret;
    this.apiKeys = apiKeys;
    this.ownsRedis = ownsRedis;
    this.ownsDb = ownsDb;
    [this.a, this.b, this.c] = nodes;
  }

  /** Tokens and identities are valid on every node (one JWT_SECRET). */
  token(...args) {
    return this.nodes[0].token(...args);
  }

  identity(...args) {
    return this.nodes[0].identity(...args);
  }

  live() {
    return this.nodes.filter((n) => n.running);
  }

  /** kill -9 one node: no goodbye, its client sockets are left to notice on their own. */
  async kill9(node) {
    await waitExit(node.proc, 'SIGKILL');
  }

  /** Start a stopped or killed node again on its port, data dir and node id; wait until ready. */
  async restart(node) {
    if (node.running) await waitExit(node.proc, 'SIGTERM');
    await node.start();
    await waitReady(node);
  }

  /**
   * Positive signal that the cluster is formed: one probe socket per live node, until every live node
   * counts all of them; then they leave and every node counts none.
   */
  async converged(ms = 20_000) {
    const nodes = this.live();
    const probe = rid('probe');
    const token = this.token({ userId: probe, sessionId: rid('probe-s'), role: 'herald-e2e-probe' });
    const socks = [];
    try {
      for (const n of nodes) socks.push(await n.connect({ token, transports: ['websocket'] }));
      await this.waitCount(probe, nodes.length, ms);
    } finally {
      for (const s of socks) s.close();
    }
    await this.waitCount(probe, 0, ms);
  }

  /** Poll GET /users/{id} on every live node until each answers `connections === n`. */
  async waitCount(userId, n, ms = 10_000, nodes = this.live()) {
    const deadline = Date.now() + ms;
    let last = {};
    while (true) {
      let ok = true;
      for (const node of nodes) {
        const r = await node.api('GET', `/api/v1/users/${encodeURIComponent(userId)}`).catch((e) => ({ status: 0, text: String(e) }));
        last[node.nodeId] = r.status === 200 ? r.body.connections : `${r.status} ${r.text}`;
        if (r.status !== 200 || r.body.connections !== n) ok = false;
      }
      if (ok) return;
      if (Date.now() > deadline) {
        throw new Error(`user ${userId}: expected ${n} connections on every node within ${ms}ms; last: ${JSON.stringify(last)}`);
      }
      await sleep(50);
    }
  }

  /** The last lines of every node's log, for assertion messages. */
  logs(lines = 40) {
    return this.nodes.map((n) => `--- ${n.nodeId} ---\n${n.log.split('\n').slice(-lines).join('\n')}`).join('\n');
  }

  /** WARN and ERROR lines of every node's log, prefixed with the node id. */
  warnings(max = 30) {
    return this.nodes.flatMap((n) =>
      n.log
        .split('\n')
        .filter((l) => /\b(WARN|ERROR)\b/.test(l))
        .slice(-max)
        .map((l) => `[${n.nodeId}] ${l}`),
    );
  }

  async stop() {
    await Promise.allSettled(this.nodes.map((n) => n.stop()));
    // on stderr for the runner's report: a node taken for dead, Redis timeouts, ... explain odd counts
    const w = this.warnings();
    if (w.length) process.stderr.write(`cluster e2e: node warnings (${this.nodes.map((n) => n.nodeId).join(', ')}):\n${w.join('\n')}\n`);
    if (this.ownsRedis) await this.redis?.stop().catch(() => {});
    if (this.ownsDb) this.db?.drop();
  }
}

/**
 * Start a cluster of `nodes` Herald processes.
 *  env:      extra environment for every node (HERALD_CLUSTER_NODE_TIMEOUT, HERALD_PRESENCE_GRACE, ...)
 *  nodeEnv:  per-node extra environment, by index
 *  redis/db: reuse a RedisServer / database (else a private one each, owned and removed by stop())
 *  wrap:     per-node command prefix, by index (e.g. ['ip', 'netns', 'exec', NS] to run it in a namespace)
 *  host:     per-node address its clients reach it at, by index (default 127.0.0.1)
 *  warmup:   wait for converged() (a positive signal that every node sees every other)
 * The first node starts alone (it may create the schema), the others in parallel after it.
 */
export async function startCluster({ nodes = 3, env = {}, nodeEnv = [], redis, db, warmup = true, wrap = [], host = [] } = {}) {
  const ownsRedis = !redis;
  const ownsDb = !db;
  redis = redis ?? (await startRedis());
  try {
    db = db ?? createDatabase();
  } catch (e) {
    if (ownsRedis) await redis.stop();
    throw e;
  }
  const secret = randomBytes(32).toString('hex');
  const apiKeys = [`k1-${randomBytes(12).toString('hex')}`, `k2-${randomBytes(12).toString('hex')}`];
  const list = [];
  for (let i = 0; i < nodes; i++) {
    list.push(
      new ClusterNode(
        {
          dataDir: mkdtempSync(join(tmpdir(), `herald-e2e-${NODE_IDS[i]}-`)),
          secret,
          apiKeys,
          extraEnv: {
            REDIS_URL: redis.url,
            DATABASE_URL: db.url,
            HERALD_NODE_ID: NODE_IDS[i],
            ...env,
            ...(nodeEnv[i] ?? {}),
          },
        },
        NODE_IDS[i],
        { wrap: wrap[i] ?? [], host: host[i] ?? '127.0.0.1' },
      ),
    );
  }
  const cluster = new Cluster({ redis, db, nodes: list, secret, apiKeys, ownsRedis, ownsDb });
  try {
    await list[0].start();
    await Promise.all(list.slice(1).map((n) => n.start()));
    await Promise.all(list.map((n) => waitReady(n)));
    if (warmup) await cluster.converged();
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

/** Spawn `herald serve` with a full environment and wait for it to exit (or `ms`); { code, signal, log, exited }. */
export async function runToExit(env, ms = 15_000) {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-e2e-exit-'));
  const full = { ...process.env, HERALD_HOST: '127.0.0.1', HERALD_PORT: '0', HERALD_DATA_DIR: dataDir, ...env };
  for (const [k, v] of Object.entries(full)) if (v === undefined || v === null) delete full[k];
  recordSecret('jwt_secret', full.JWT_SECRET);
  for (const k of (full.HERALD_API_KEYS ?? '').split(',')) recordSecret('api_key', k.trim());
  const proc = track(spawn(HERALD_BIN, ['serve'], { env: full, stdio: ['ignore', 'pipe', 'pipe'] }));
  let log = '';
  captureOutput(proc, 'herald-exit', (d) => (log += d));
  const res = await new Promise((resolve) => {
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve({ exited: false });
    }, ms);
    proc.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ exited: true, code, signal });
    });
  });
  if (!res.exited) await new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r() : proc.once('exit', r)));
  rmSync(dataDir, { recursive: true, force: true });
  return { ...res, log };
}

// ---------------------------------------------------------------------------------------------------------
// Small assertions helpers shared by the cluster files

/** Resolve after every client got one `event` matching `pred`; the matching payloads, in client order. */
export async function eachGets(clients, event, pred = () => true, ms = 5000) {
  return Promise.all(
    clients.map(async (c) => {
      const deadline = Date.now() + ms;
      while (true) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timeout waiting for a matching ${event}; got: ${JSON.stringify(c.summary())}`);
        const v = await c.waitFor(event, left);
        if (pred(v)) return v;
      }
    }),
  );
}

/** All recorded payloads of `event` on `client` matching `pred` (used or not). */
export function recorded(client, event, pred = () => true) {
  return client.all(event).filter(pred);
}

/**
 * Poll until `client` has recorded an `event` whose payload matches `pred` (consumed or not, so it never
 * steals events from waitFor); resolves with the first such payload.
 */
export async function waitRecorded(client, event, pred = () => true, ms = 5000) {
  const deadline = Date.now() + ms;
  while (true) {
    const hit = client.events.find((e) => e.event === event && pred(e.args[0]));
    if (hit) return hit.args[0];
    if (Date.now() > deadline) {
      throw new Error(`timeout ${ms}ms waiting for a matching ${event}; got: ${JSON.stringify(client.summary())}`);
    }
    await sleep(20);
  }
}
