// Shared e2e helpers: start a real Herald process, mint JWTs, drive socket.io-client sockets and the HTTP API.
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomUUID } from 'node:crypto';
import net from 'node:net';
import jwt from 'jsonwebtoken';
import { io } from 'socket.io-client';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..');
// cargo's output directory: CARGO_TARGET_DIR (relative to the repository root) or target/
export const HERALD_BIN =
  process.env.HERALD_BIN || resolve(REPO, process.env.CARGO_TARGET_DIR || 'target', 'debug', 'herald');

/** RFC 3339 UTC with milliseconds, as the contract requires. */
export const TS_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------
// The run's evidence folder (e2e/run.sh sets HERALD_E2E_LOG_DIR): every server's whole output, and every secret
// the tests handed it (JWT secrets, API keys, tokens, notification texts), so that scan-logs.mjs can prove that
// no log line of the whole run carries one. Unset (one file run by hand): nothing is written.
const LOG_DIR = process.env.HERALD_E2E_LOG_DIR || null;
const TEST_FILE = basename(process.argv[1] ?? 'e2e').replace(/\.test\.mjs$|\.mjs$/, '');
const recordedSecrets = new Set();
let logSeq = 0;

/** Remember a value no server log may contain; `kind` is jwt_secret, api_key, token or notification_body. */
export function recordSecret(kind, value) {
  if (!LOG_DIR || typeof value !== 'string' || value.length < 8 || recordedSecrets.has(value)) return;
  recordedSecrets.add(value);
  mkdirSync(LOG_DIR, { recursive: true });
  appendFileSync(join(LOG_DIR, `secrets-node-${process.pid}.jsonl`), JSON.stringify({ kind, value, file: TEST_FILE }) + '\n');
}

// Body fields that are identifiers or enumerations (ids, type, severity) may legitimately appear in a log line;
// every other text of a notification is what a patient's record says, and must not.
const LOGGABLE_FIELD = /id$|^type$|^severity$|^createdAt$/i;

/** Record the free-text fields (12+ characters) of a notification body sent through the API. */
export function recordNotificationBody(body) {
  if (!body || typeof body !== 'object') return;
  for (const [k, v] of Object.entries(body)) {
    if (LOGGABLE_FIELD.test(k)) continue;
    if (typeof v === 'string' && v.length >= 12) recordSecret('notification_body', v);
    else if (v && typeof v === 'object') recordNotificationBody(v);
  }
}

/**
 * Collect a child's stdout and stderr: each chunk goes to `onData` and, during a run of e2e/run.sh, to its own
 * file `<test file>-<name>-<pid>-<n>.log` in the run's folder.
 */
export function captureOutput(proc, name, onData) {
  let file = null;
  if (LOG_DIR) {
    mkdirSync(LOG_DIR, { recursive: true });
    file = join(LOG_DIR, `${TEST_FILE}-${name}-${process.pid}-${++logSeq}.log`);
    appendFileSync(file, '');
  }
  const on = (d) => {
    if (file) appendFileSync(file, d);
    onData(d);
  };
  proc.stdout.on('data', on);
  proc.stderr.on('data', on);
}

/** A log a server wrote to a file of its own (`logTo`) joins the run's folder, for scan-logs.mjs. */
export function keepLog(name, path) {
  if (!LOG_DIR || !existsSync(path)) return;
  mkdirSync(LOG_DIR, { recursive: true });
  copyFileSync(path, join(LOG_DIR, `${TEST_FILE}-${name}-${process.pid}-${++logSeq}.log`));
}

/** A short random id with a readable prefix, so tests never share users/sessions. */
export function rid(prefix = 'id') {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export async function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/**
 * Start a Herald server. `env` adds/overrides environment variables
 * (e.g. { HERALD_PING_INTERVAL: '300ms' }). Returns a handle.
 */
export async function startServer(env = {}, { dataDir, port, secret, apiKeys, logTo } = {}) {
  const handle = new HeraldServer({
    port: port ?? (await freePort()),
    dataDir: dataDir ?? mkdtempSync(join(tmpdir(), 'herald-e2e-')),
    secret: secret ?? randomBytes(32).toString('hex'),
    apiKeys: apiKeys ?? [`k1-${randomBytes(12).toString('hex')}`, `k2-${randomBytes(12).toString('hex')}`],
    extraEnv: env,
    logTo,
  });
  await handle.start();
  return handle;
}

export class HeraldServer {
  /** `logTo`: a file that gets the process's stdout and stderr, as `herald serve >file 2>&1` (else they are piped). */
  constructor({ port, dataDir, secret, apiKeys, extraEnv, logTo }) {
    this.logTo = logTo ?? null;
    this.port = port;
    this.dataDir = dataDir;
    this.secret = secret;
    this.apiKeys = apiKeys;
    this.apiKey = apiKeys[0];
    this.extraEnv = extraEnv;
    this.url = `http://127.0.0.1:${port}`;
    this.clients = new Set();
    this.proc = null;
    this.log = '';
    recordSecret('jwt_secret', secret);
    for (const k of apiKeys) recordSecret('api_key', k);
  }

  env() {
    const env = {
      ...process.env,
      HERALD_PORT: String(this.port),
      HERALD_HOST: '127.0.0.1',
      HERALD_DATA_DIR: this.dataDir,
      JWT_SECRET: this.secret,
      HERALD_API_KEYS: this.apiKeys.join(','),
      HERALD_LOG: process.env.HERALD_LOG || 'info',
      ...this.extraEnv,
    };
    // a knob set to null/undefined in extraEnv means "leave unset"
    for (const [k, v] of Object.entries(env)) if (v === undefined || v === null) delete env[k];
    return env;
  }

  async start() {
    this.log = '';
    let proc;
    if (this.logTo) {
      // Appending, as a shell's `>>` does; the process keeps its own descriptor.
      const fd = openSync(this.logTo, 'a');
      try {
        proc = spawn(HERALD_BIN, ['serve'], { env: this.env(), stdio: ['ignore', fd, fd] });
      } finally {
        closeSync(fd);
      }
    } else {
      proc = spawn(HERALD_BIN, ['serve'], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
      captureOutput(proc, 'herald', (d) => {
        this.log += d.toString();
        if (this.log.length > 200_000) this.log = this.log.slice(-100_000);
        if (process.env.HERALD_E2E_VERBOSE) process.stderr.write(d);
      });
    }
    this.proc = proc;
    let exited = null;
    proc.once('exit', (code, sig) => {
      exited = { code, sig };
    });
    proc.once('error', (e) => {
      exited = { error: e.message };
    });
    await this.waitHealthy('herald', () => exited && JSON.stringify(exited));
  }

  /**
   * Polls /healthz until it answers 200 (at most 20 s; the port is known
   * once it is not 0). `gone()` says why the process ended, if it did.
   */
  async waitHealthy(name, gone) {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const why = gone();
      if (why) throw new Error(`${name} exited before ready (${why})\n${this.log.slice(-4000)}`);
      if (this.port !== 0) {
        try {
          const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
          if (r.status === 200) return;
        } catch {
          /* not listening yet */
        }
      }
      await sleep(50);
    }
    this.proc.kill('SIGKILL');
    throw new Error(`${name} not ready within 20s\n${this.log.slice(-4000)}`);
  }

  async _waitExit(signal, ms) {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    const t = await Promise.race([done.then(() => 'exit'), sleep(ms).then(() => 'timeout')]);
    if (t === 'timeout') {
      proc.kill('SIGKILL');
      await done;
    }
  }

  closeClients() {
    for (const c of this.clients) c.close();
    this.clients.clear();
  }

  /** SIGKILL, keeping the data dir (for restart tests). */
  async kill() {
    this.closeClients();
    await this._waitExit('SIGKILL', 5000);
  }

  /** Graceful stop: SIGTERM (then SIGKILL after 5 s), remove data dir. */
  async stop({ keepData = false } = {}) {
    this.closeClients();
    await this._waitExit('SIGTERM', 5000);
    if (!keepData) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Mint an HS256 JWT. claims default to a fresh user/session/role. */
  token(claims = {}, { expiresIn = '1h', secret = this.secret, algorithm = 'HS256', ...rest } = {}) {
    const opts = { algorithm, ...rest };
    if (expiresIn !== null && claims.exp === undefined) opts.expiresIn = expiresIn;
    const t = jwt.sign(claims, secret, opts);
    recordSecret('token', t);
    return t;
  }

  /** Claims + token for a new identity: { userId, sessionId, role, token }. */
  identity({ userId = rid('user'), sessionId = rid('sess'), role = 'radiologist', ...more } = {}) {
    const token = this.token({ userId, sessionId, role, ...more });
    return { userId, sessionId, role, token };
  }

  /** Call the HTTP API. Returns { status, body (parsed JSON or text), headers, text }. */
  async api(method, path, body, { key = this.apiKey, headers = {}, raw = false } = {}) {
    const h = { ...headers };
    if (key !== null) h.authorization = `Bearer ${key}`;
    let payload;
    if (method === 'POST' && !raw && /\/notifications$/.test(path.split('?')[0])) {
      recordNotificationBody(path === '/api/v1/notifications' ? body?.notification : body);
    }
    if (body !== undefined) {
      payload = raw ? body : JSON.stringify(body);
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
    }
    const r = await fetch(this.url + path, { method, headers: h, body: payload, signal: AbortSignal.timeout(30_000) });
    const text = await r.text();
    let parsed = text;
    try {
      parsed = text.length ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: r.status, body: parsed, headers: r.headers, text };
  }

  /** POST a notification to a user; asserts nothing. */
  notify(userId, notification) {
    return this.api('POST', `/api/v1/users/${encodeURIComponent(userId)}/notifications`, notification);
  }

  /**
   * Open a socket.io-client socket. Resolves with a Client once `connected`
   * arrived; rejects with the connect_error Error otherwise.
   */
  async connect(opts = {}) {
    const c = this.open(opts);
    await c.ready(opts.timeout ?? 5000);
    return c;
  }

  /** Open without waiting. */
  open({ token, auth, query, transports, extraHeaders, ioOpts = {} } = {}) {
    const options = {
      forceNew: true,
      reconnection: false,
      timeout: 5000,
      ...ioOpts,
    };
    if (auth !== undefined) options.auth = auth;
    else if (token !== undefined) options.auth = { token };
    if (query) options.query = query;
    if (transports) options.transports = transports;
    if (extraHeaders) options.extraHeaders = extraHeaders;
    const socket = io(this.url, options);
    const c = new Client(socket);
    this.clients.add(c);
    return c;
  }

  /** Connect expecting refusal; resolves with err.message of connect_error. */
  async connectError(opts = {}) {
    const c = this.open(opts);
    try {
      const first = await c.waitAny(['connected', 'connect_error'], opts.timeout ?? 5000);
      if (first.event === 'connected') throw new Error('connection was accepted, expected connect_error');
      return first.args[0].message;
    } finally {
      c.close();
    }
  }
}

/**
 * Wraps a socket.io-client socket and records every event in arrival order
 * (including connect, connect_error, disconnect), so no event can be missed
 * between two awaits.
 */
export class Client {
  constructor(socket) {
    this.socket = socket;
    this.events = []; // { event, args, at, used }
    this.waiters = [];
    socket.onAny((event, ...args) => this._push(event, args));
    socket.on('connect', () => this._push('connect', []));
    socket.on('connect_error', (err) => this._push('connect_error', [err]));
    socket.on('disconnect', (reason, desc) => this._push('disconnect', [reason, desc]));
  }

  _push(event, args) {
    const e = { event, args, at: Date.now(), used: false };
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (!e.used && w.names.includes(event)) {
        e.used = true;
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  }

  get id() {
    return this.socket.id;
  }

  get connected() {
    return this.socket.connected;
  }

  /** Names of all events so far, in order. */
  names() {
    return this.events.map((e) => e.event);
  }

  /** All recorded payloads (first arg) of one event name. */
  all(event) {
    return this.events.filter((e) => e.event === event).map((e) => e.args[0]);
  }

  /** Wait for the next unconsumed event among `names`; resolves with the record. */
  waitAny(names, ms = 3000) {
    const found = this.events.find((e) => !e.used && names.includes(e.event));
    if (found) {
      found.used = true;
      return Promise.resolve(found);
    }
    return new Promise((resolve, reject) => {
      const w = { names, resolve: (e) => (clearTimeout(w.timer), resolve(e)) };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timeout ${ms}ms waiting for ${names.join('|')}; got: ${JSON.stringify(this.summary())}`));
      }, ms);
      this.waiters.push(w);
    });
  }

  /** Wait for the next unconsumed `event`; resolves with its first argument. */
  async waitFor(event, ms = 3000) {
    const e = await this.waitAny([event], ms);
    return e.args[0];
  }

  /** Wait for the next unconsumed `event`; resolves with all its args. */
  async waitForArgs(event, ms = 3000) {
    const e = await this.waitAny([event], ms);
    return e.args;
  }

  /** Wait for `n` unconsumed events of a name; resolves with their first args. */
  async waitForN(event, n, ms = 5000) {
    const deadline = Date.now() + ms;
    const out = [];
    while (out.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout: got ${out.length}/${n} ${event}`);
      out.push(await this.waitFor(event, left).catch((e) => {
        throw new Error(`got ${out.length}/${n} ${event}: ${e.message.slice(0, 2000)}`);
      }));
    }
    return out;
  }

  /** Resolve after `ms`; return unconsumed events of that name that arrived. */
  async none(event, ms = 300) {
    await sleep(ms);
    return this.events.filter((e) => !e.used && e.event === event);
  }

  /** Wait until `connected` arrives; reject on connect_error. Returns payload. */
  async ready(ms = 5000) {
    const e = await this.waitAny(['connected', 'connect_error'], ms);
    if (e.event === 'connect_error') {
      const err = new Error(`connect_error: ${e.args[0]?.message}`);
      err.connectError = e.args[0];
      throw err;
    }
    this.connectedPayload = e.args[0];
    return e.args[0];
  }

  /** emit with an acknowledgement callback; resolves with the ack payload. */
  emitAck(event, data, ms = 3000) {
    const s = this.socket.timeout(ms);
    return data === undefined ? s.emitWithAck(event) : s.emitWithAck(event, data);
  }

  /** emit without acknowledgement callback. */
  emit(event, ...args) {
    this.socket.emit(event, ...args);
  }

  summary() {
    return this.events.map((e) => [e.event, e.args.length ? safe(e.args[0]) : undefined]).slice(-30);
  }

  close() {
    this.socket.close();
  }
}

function safe(v) {
  if (v instanceof Error) return `Error(${v.message})`;
  try {
    const s = JSON.stringify(v);
    return s && s.length > 200 ? s.slice(0, 200) + '…' : v;
  } catch {
    return String(v);
  }
}

/** Poll `fn` until it returns a truthy value (or doesn't throw); returns that value. */
export async function eventually(fn, ms = 3000, every = 50) {
  const deadline = Date.now() + ms;
  let last;
  while (true) {
    try {
      const v = await fn();
      if (v) return v;
      last = new Error(`condition false: ${JSON.stringify(v)}`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw last;
    await sleep(every);
  }
}

/**
 * Parses Prometheus text into samples: { name, labels: {k: v}, value }.
 * `value(samples, name, labels)` sums the samples of `name` whose labels
 * include `labels` (0 when there is none).
 */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels = {};
    for (const [, k, v] of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

export function metricValue(samples, name, labels = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** Build an unsigned or hand-made JWT (for alg none and friends). */
export function rawJwt(header, payload, signature = '') {
  const b = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const t = `${b(header)}.${b(payload)}.${signature}`;
  recordSecret('token', t);
  return t;
}

export const nowSec = () => Math.floor(Date.now() / 1000);

export { randomUUID, jwt };
