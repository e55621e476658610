#!/usr/bin/env node
// Proves that no server log of a whole e2e run carries a JWT secret, an API key, a token or a notification text.
//
//   node scan-logs.mjs DIR          scan the run folder that e2e/run.sh filled (HERALD_E2E_LOG_DIR)
//   node scan-logs.mjs --self-test  plant a leak of each kind in a scratch folder and check that it is found
//
// DIR holds every server's output (*.log, written by helpers.mjs and python/conftest.py) and the values the
// tests handed the servers (secrets-*.jsonl, one { kind, value, file } a line). The scan refuses to pass on
// nothing: it fails when there are no logs, when the logs hold no server start line (it read real output), or
// when any kind of secret was never recorded (the recording broke). A hit names the kind, the test file that
// used the value, the log file and line number, and only the first 6 characters of the value.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const KINDS = ['jwt_secret', 'api_key', 'token', 'notification_body'];
// the shortest value helpers.mjs records
const PREFIX = 8;

/** The strings to look for: each value, and for a token also its payload and signature parts. */
function needles(secrets) {
  const out = [];
  for (const s of secrets) {
    out.push({ ...s, needle: s.value });
    if (s.kind === 'token') {
      const [, payload, sig] = s.value.split('.');
      if (payload && payload.length >= 16) out.push({ ...s, needle: payload, part: 'payload' });
      if (sig && sig.length >= 16) out.push({ ...s, needle: sig, part: 'signature' });
    }
  }
  return out;
}

export function scan(dir) {
  const files = readdirSync(dir);
  const logs = files.filter((f) => f.endsWith('.log'));
  const secrets = [];
  for (const f of files.filter((f) => /^secrets-.*\.jsonl$/.test(f))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) if (line.trim()) secrets.push(JSON.parse(line));
  }
  const problems = [];
  if (logs.length === 0) problems.push(`no server logs in ${dir}`);
  const byKind = Object.fromEntries(KINDS.map((k) => [k, new Set(secrets.filter((s) => s.kind === k).map((s) => s.value)).size]));
  for (const k of KINDS) if (byKind[k] === 0) problems.push(`no ${k} was recorded: the scan would prove nothing about it`);

  // thousands of needles over megabytes of logs: index them by their first PREFIX characters (every needle has
  // at least that many) and look each log position up once, instead of one indexOf per needle
  const index = new Map();
  for (const n of needles(secrets)) {
    const key = n.needle.slice(0, PREFIX);
    if (!index.has(key)) index.set(key, []);
    index.get(key).push(n);
  }
  let bytes = 0;
  let started = 0;
  const hits = [];
  for (const f of logs) {
    const text = readFileSync(join(dir, f), 'utf8');
    bytes += text.length;
    if (/herald listening/.test(text)) started++;
    const found = new Set();
    for (let at = 0; at + PREFIX <= text.length; at++) {
      const candidates = index.get(text.slice(at, at + PREFIX));
      if (!candidates) continue;
      for (const n of candidates) {
        if (found.has(n) || !text.startsWith(n.needle, at)) continue;
        found.add(n);
        const line = text.slice(0, at).split('\n').length;
        hits.push(`${n.kind}${n.part ? ` (${n.part})` : ''} used by ${n.file} (${n.needle.slice(0, 6)}…) in ${f}:${line}`);
      }
    }
  }
  if (logs.length > 0 && started === 0) problems.push('no log holds a "herald listening" line: these are not server logs');
  if (bytes === 0 && logs.length > 0) problems.push('every log is empty');
  return { logs: logs.length, started, bytes, byKind, hits, problems };
}

function report(r, dir) {
  const kinds = KINDS.map((k) => `${r.byKind[k]} ${k}`).join(', ');
  console.log(`log scan: ${r.logs} server logs (${r.started} server starts, ${r.bytes} bytes) in ${dir}`);
  console.log(`log scan: looked for ${kinds}: ${r.hits.length} found`);
  for (const h of r.hits) console.log(`log scan: LEAK ${h}`);
  for (const p of r.problems) console.log(`log scan: FAIL ${p}`);
  return r.hits.length === 0 && r.problems.length === 0;
}

function selfTest() {
  const dir = mkdtempSync(join(tmpdir(), 'herald-scan-self-'));
  try {
    const secrets = [
      { kind: 'jwt_secret', value: 'self-test-jwt-secret-0123', file: 'self' },
      { kind: 'api_key', value: 'self-test-api-key-4567', file: 'self' },
      { kind: 'token', value: 'eyJhbGciOiJIUzI1NiJ9.eyJ1c2VySWQiOiJzZWxmLXRlc3QifQ.c2VsZi10ZXN0LXNpZ25hdHVyZQ', file: 'self' },
      { kind: 'notification_body', value: 'self-test patient text', file: 'self' },
    ];
    writeFileSync(join(dir, 'secrets-self.jsonl'), secrets.map((s) => JSON.stringify(s)).join('\n') + '\n');
    writeFileSync(join(dir, 'clean.log'), 'INFO herald listening addr=127.0.0.1:1\n');
    const clean = scan(dir);
    if (clean.hits.length || clean.problems.length) throw new Error(`clean folder reported: ${JSON.stringify(clean)}`);
    // each kind leaked on its own, and a token's signature alone, must be found
    const leaks = [...secrets.map((s) => s.value), 'c2VsZi10ZXN0LXNpZ25hdHVyZQ'];
    for (const leak of leaks) {
      writeFileSync(join(dir, 'leaky.log'), `INFO herald listening\nWARN refused token=${leak} reason=x\n`);
      const r = scan(dir);
      if (r.hits.length === 0) throw new Error(`planted leak ${leak.slice(0, 6)}… was not found`);
    }
    rmSync(join(dir, 'leaky.log'));
    // a folder without logs, or without any recorded kind, must fail
    writeFileSync(join(dir, 'secrets-self.jsonl'), JSON.stringify(secrets[0]) + '\n');
    if (scan(dir).problems.length === 0) throw new Error('missing kinds were not reported');
    rmSync(join(dir, 'clean.log'));
    if (scan(dir).problems.length === 0) throw new Error('an empty folder was not reported');
    console.log(`log scan self-test: ${leaks.length} planted leaks found, empty and incomplete folders refused`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const arg = process.argv[2];
if (arg === '--self-test') {
  selfTest();
} else if (arg) {
  process.exit(report(scan(arg), arg) ? 0 : 1);
} else {
  console.error('usage: node scan-logs.mjs DIR | --self-test');
  process.exit(2);
}
