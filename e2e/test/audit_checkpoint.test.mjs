// Signed checkpoints of the audit chain from a running server: every second it appends one to its checkpoint file
// and POSTs it to a witness (refused once, then taken), signed with HMAC like the escalation webhook; the witness
// checks the Ed25519 signature itself with node's crypto and the public key, without Herald. `herald audit
// checkpoint` hands its line to the same witnesses (exit 3 when one is down), and `herald audit public-key` prints
// the key the lines carry. `herald audit verify
// --checkpoint` then passes the trail against the server's file, and fails, naming the gap, once the newest records
// are cut off the store, and on a checkpoint whose seq was altered.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { startServer, rid, recordSecret, eventually, HERALD_BIN } from '../helpers.mjs';

/** An Ed25519 public key from its 32 raw bytes (hex): the SPKI DER prefix of RFC 8410, then the key. */
const publicKey = (hex) =>
  createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(hex, 'hex')]), format: 'der', type: 'spki' });

/** Whether a checkpoint line's signature holds, checked by node alone: over the checkpoint's JSON text. */
const signatureHolds = (line) =>
  verify(null, Buffer.from(JSON.stringify(line.checkpoint)), publicKey(line.publicKey), Buffer.from(line.signature, 'hex'));

/** A witness that refuses its first POST (503) and keeps the rest, with whether each carried the right HMAC. */
function startWitness(secret) {
  const kept = [];
  let calls = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      calls += 1;
      if (calls === 1) return res.writeHead(503).end();
      const expected = `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
      kept.push({ line: JSON.parse(raw.toString('utf8')), signed: req.headers['x-herald-signature'] === expected });
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, kept, port: server.address().port })));
}

describe('audit checkpoints from a running server', () => {
  let srv;
  let witness;
  let dir;
  let env;
  const key = randomBytes(32).toString('hex');

  before(async () => {
    const secret = `whsec-${randomBytes(16).toString('hex')}`;
    recordSecret('webhook_secret', secret);
    recordSecret('signing_key', key);
    witness = await startWitness(secret);
    dir = mkdtempSync(join(tmpdir(), 'herald-checkpoint-'));
    env = {
      HERALD_AUDIT_SIGNING_KEY: key,
      HERALD_AUDIT_CHECKPOINT_INTERVAL: '1s',
      HERALD_AUDIT_CHECKPOINT_FILE: join(dir, 'checkpoints.jsonl'),
      HERALD_AUDIT_CHECKPOINT_WEBHOOK: `http://127.0.0.1:${witness.port}/witness`,
      HERALD_ESCALATION_WEBHOOK_SECRET: secret,
    };
    srv = await startServer(env);
  });

  after(async () => {
    await srv?.stop();
    witness?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The environment of `herald audit` on the server's store, with its key (and `extra` settings). */
  const auditEnv = (extra = {}) => ({ PATH: process.env.PATH, HERALD_DATA_DIR: srv.dataDir, HERALD_AUDIT_SIGNING_KEY: key, ...extra });
  const audit = (...args) => spawnSync(HERALD_BIN, ['audit', ...args], { env: auditEnv(), encoding: 'utf8', timeout: 10_000 });
  /** As `audit`, with `extra` settings and without blocking: the witness in this process must answer meanwhile. */
  const auditAsync = (extra, ...args) =>
    new Promise((resolve) => {
      const out = { stdout: '', stderr: '' };
      const child = spawn(HERALD_BIN, ['audit', ...args], { env: auditEnv(extra) });
      child.stdout.on('data', (d) => (out.stdout += d));
      child.stderr.on('data', (d) => (out.stderr += d));
      child.on('close', (status) => resolve({ ...out, status }));
    });

  const lines = () =>
    readFileSync(env.HERALD_AUDIT_CHECKPOINT_FILE, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));

  it('the file and the witness get checkpoints of the growing chain, signed', async () => {
    const ids = [rid('cp'), rid('cp')];
    for (const id of ids) assert.equal((await srv.notify('u1', { id, title: 'checkpointed' })).status, 202);
    // the head after both: each notification's created record at least
    let newest;
    await eventually(() => {
      newest = lines().at(-1);
      return newest.checkpoint.seq >= 2;
    }, 10_000, 100);
    for (const l of lines()) assert.ok(signatureHolds(l), `signature of ${JSON.stringify(l)}`);
    // the first POST was refused and retried: the witness still gets every checkpoint, in order
    await eventually(() => witness.kept.some((k) => k.line.checkpoint.seq >= 2), 10_000, 100);
    assert.ok(witness.kept.every((k) => k.signed), 'every POST carries the HMAC of its body');
    assert.ok(witness.kept.every((k) => signatureHolds(k.line)));
    const seqs = witness.kept.map((k) => k.line.checkpoint.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in order');
    assert.ok(!srv.log.includes(key), 'the signing key is never logged');
  });

  it('audit checkpoint hands its line to the same witnesses; audit public-key prints the key the lines carry', async () => {
    const pk = audit('public-key');
    assert.equal(pk.status, 0, pk.stderr);
    assert.equal(pk.stdout.trim(), lines()[0].publicKey);
    assert.match(pk.stderr, /^key id [0-9a-f]{16}$/m);
    const made = await auditAsync(env, 'checkpoint');
    assert.equal(made.status, 0, made.stderr);
    const printed = made.stdout.trim();
    assert.ok(signatureHolds(JSON.parse(printed)));
    assert.ok(readFileSync(env.HERALD_AUDIT_CHECKPOINT_FILE, 'utf8').split('\n').includes(printed), 'appended to the file');
    await eventually(() => witness.kept.some((k) => JSON.stringify(k.line) === printed && k.signed), 10_000, 100);
    // a witness that is down: the line printed all the same, exit 3 and why
    const down = await auditAsync({ ...env, HERALD_AUDIT_CHECKPOINT_WEBHOOK: 'http://127.0.0.1:9/witness' }, 'checkpoint');
    assert.equal(down.status, 3, down.stderr);
    assert.ok(signatureHolds(JSON.parse(down.stdout.trim())));
    assert.match(down.stderr, /audit\.checkpoint_webhook did not keep the checkpoint/);
  });

  it('verify --checkpoint passes the trail, and names the gap once its newest records are cut off', async () => {
    const file = env.HERALD_AUDIT_CHECKPOINT_FILE;
    const ok = audit('verify', '--checkpoint', file);
    assert.equal(ok.status, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /checkpoints: \d+ agree with the trail/);

    // a checkpoint whose seq was moved: its signature no longer holds
    const altered = join(dir, 'altered.jsonl');
    const l = lines().at(-1);
    writeFileSync(altered, JSON.stringify({ ...l, checkpoint: { ...l.checkpoint, seq: l.checkpoint.seq - 1 } }) + '\n');
    const forged = audit('verify', '--checkpoint', altered);
    assert.equal(forged.status, 1, forged.stderr);
    assert.match(forged.stderr, /line 1: its signature does not match/);

    // the server stopped, the newest two records deleted from its store
    await srv.stop({ keepData: true });
    const head = Math.max(...lines().map((x) => x.checkpoint.seq));
    const db = join(srv.dataDir, 'herald.db');
    // python's own sqlite3 module: the sqlite3 shell is not on every machine
    const sql = 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()';
    const cut = spawnSync(process.env.PYTHON || 'python3', ['-c', sql, db, `DELETE FROM audit WHERE seq > ${head - 2}`], { encoding: 'utf8' });
    assert.equal(cut.status, 0, cut.stderr);
    const alone = audit('verify');
    assert.equal(alone.status, 0, 'the shorter chain alone still verifies');
    const bad = audit('verify', '--checkpoint', file);
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    assert.match(bad.stderr, new RegExp(`records ${head - 1} to ${head} are missing`));
    rmSync(srv.dataDir, { recursive: true, force: true });
    srv = null;
  });
});
