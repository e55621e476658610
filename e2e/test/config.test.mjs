// Configuration: with no JWT_SECRET / HERALD_API_KEYS the server makes development credentials (0600 files in its data dir) and works.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, rid, jwt, HERALD_BIN } from '../helpers.mjs';

const run = promisify(execFile);

describe('development credentials', () => {
  let srv;
  let secrets; // { file, value }[] of 0600 files in the data dir
  before(async () => {
    srv = await startServer({ JWT_SECRET: null, HERALD_API_KEYS: null });
    secrets = readdirSync(srv.dataDir)
      .map((f) => join(srv.dataDir, f))
      .filter((f) => statSync(f).isFile() && (statSync(f).mode & 0o777) === 0o600)
      .map((file) => ({ file, value: readFileSync(file, 'utf8').trim() }))
      .filter((s) => /^[\w+/=-]{32,}$/.test(s.value));
  });
  after(async () => {
    await srv?.stop();
  });

  it('creates a random JWT secret and an API key as 0600 files in the data dir, says where, and warns', async () => {
    assert.ok(secrets.length >= 2, `0600 secret files: ${secrets.map((s) => s.file)}`);
    for (const s of secrets) assert.ok(srv.log.includes(s.file) || srv.log.includes(s.file.split('/').pop()), `log names ${s.file}`);
    assert.match(srv.log, /development|dev(elopment)? credential|insecure/i);
    for (const s of secrets) assert.ok(!srv.log.includes(s.value), 'the secret itself is never logged');
  });

  it('the generated API key works for the API; a wrong one does not', async () => {
    const ok = [];
    for (const s of secrets) ok.push((await srv.api('GET', '/api/v1/users', undefined, { key: s.value })).status);
    assert.ok(ok.includes(200), `statuses ${ok}`);
    assert.equal((await srv.api('GET', '/api/v1/users', undefined, { key: 'x'.repeat(43) })).status, 401);
  });

  it('`herald token` signs with the generated secret and the token connects', async () => {
    const env = srv.env();
    const user = rid('dev');
    const { stdout } = await run(HERALD_BIN, ['token', '--user', user, '--role', 'radiologist'], { env, timeout: 10_000 });
    const token = stdout.trim();
    const verifies = secrets.filter((s) => {
      try {
        jwt.verify(token, s.value, { algorithms: ['HS256'] });
        return true;
      } catch {
        return false;
      }
    });
    assert.equal(verifies.length, 1, 'signed with one of the generated files');
    const c = await srv.connect({ token });
    assert.equal(c.connectedPayload.userId, user);
    c.close();
  });

  it('a restart on the same data dir keeps the same secret (old tokens still connect)', async () => {
    const { stdout } = await run(HERALD_BIN, ['token', '--user', rid('dev'), '--role', 'tech'], { env: srv.env(), timeout: 10_000 });
    await srv.kill();
    await srv.start();
    const c = await srv.connect({ token: stdout.trim() });
    c.close();
  });
});
