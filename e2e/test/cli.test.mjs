// The herald command for a newcomer: useful help, settings errors that name the setting, and no silent expired token.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { HERALD_BIN } from '../helpers.mjs';

/** Runs herald with only `env` set (plus PATH and a fresh data dir); returns { status, stdout, stderr }. */
function herald(args, env = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-cli-'));
  try {
    const r = spawnSync(HERALD_BIN, args, {
      env: { PATH: process.env.PATH, HERALD_DATA_DIR: dataDir, HERALD_HOST: '127.0.0.1', HERALD_PORT: '0', ...env },
      encoding: 'utf8',
      timeout: 10_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('the herald command', () => {
  it('--help names the commands, the settings and an example', () => {
    const r = herald(['--help']);
    assert.equal(r.status, 0, r.stderr);
    for (const word of ['serve', 'token', 'check-config', 'JWT_SECRET', 'HERALD_API_KEYS', 'Examples']) assert.ok(r.stdout.includes(word), `${word} in:\n${r.stdout}`);
  });

  it('token -h explains every flag', () => {
    const r = herald(['token', '-h']); // the short form: one line per flag
    assert.equal(r.status, 0, r.stderr);
    for (const flag of ['--user', '--role', '--session', '--ttl', '--config']) {
      const line = r.stdout.split('\n').find((l) => l.trim().startsWith(flag));
      assert.ok(line && line.trim().length > flag.length + 8, `${flag} has help text:\n${r.stdout}`);
    }
  });

  it('token --ttl 0s refuses instead of printing an expired token', () => {
    const r = herald(['token', '--user', 'u1', '--role', 'radiologist', '--ttl', '0s']);
    assert.notEqual(r.status, 0);
    assert.equal(r.stdout, '', 'no token printed');
    assert.match(r.stderr, /--ttl/);
    assert.match(r.stderr, /already expired/);
  });

  it('an out-of-range port says so and names the setting', () => {
    const r = herald(['serve'], { HERALD_PORT: '70000' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /HERALD_PORT/);
    assert.match(r.stderr, /out of range \(1-65535/);
  });

  for (const name of ['HERALD_LOG', 'RUST_LOG']) {
    it(`${name}=bogus stops start-up naming ${name}`, () => {
      const r = herald(['serve'], { [name]: 'bogus' });
      assert.notEqual(r.status, 0, 'it must not start');
      assert.match(r.stderr, new RegExp(`${name}.*bogus`));
    });
  }

  it('HERALD_LOG wins over RUST_LOG', () => {
    const r = herald(['check-config'], { HERALD_LOG: 'warn', RUST_LOG: 'bogus' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /log_filter: "warn"/);
  });
});
