// The partition test, short form (issue 21): three Herald nodes, Redis and PostgreSQL each in its own network
// namespace; every fault once on its own and then in overlapping pairs (a node cut from Redis, from PostgreSQL, from
// its clients; Redis restarted empty; PostgreSQL restarted; a node killed; a node paused past the escalation lease
// so that two nodes race on the same step) under a steady load of notifications, acknowledgements, session expiries
// and escalations; then the checker (e2e/partition/checker.mjs) proves every invariant over the recorded history.
// Skipped, saying why, where `ip netns` is not permitted. The long form: e2e/partition/run.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { netnsUnsupported } from '../partition/net.mjs';
import { runPartition, summary } from '../partition/run.mjs';

const why = netnsUnsupported();

test('partition: every invariant holds under each fault, alone and overlapping', { skip: why ?? false, timeout: 180_000 }, async (t) => {
  const historyFile = process.env.HERALD_E2E_LOG_DIR
    ? join(process.env.HERALD_E2E_LOG_DIR, `partition-history-${process.pid}.jsonl`)
    : join(tmpdir(), `herald-partition-${process.pid}.jsonl`);
  let run;
  try {
    run = await runPartition({ historyFile, log: (l) => process.stderr.write(`${l}\n`) });
  } catch (e) {
    if (!e.skip) throw e;
    t.skip(e.message);
    return;
  }
  const s = summary(run);
  process.stderr.write(`partition short form: ${JSON.stringify(s)}\nhistory: ${historyFile}\n`);
  const shown = run.result.violations.slice(0, 10).map((v) => `${v.invariant}: ${v.message}\n  ${JSON.stringify(v.evidence).slice(0, 1200)}`);
  assert.equal(run.result.violations.length, 0, `violations (history in ${historyFile}):\n${shown.join('\n')}`);
  // the run really exercised what it claims to check
  assert.ok(s.faults >= 14, `${s.faults} faults`);
  for (const inv of ['delivered', 'ack_durable', 'expiry_once', 'step_once', 'once_per_socket', 'none_after_ack', 'no_cross_user', 'audit']) {
    assert.ok(run.result.checked[inv] > 0, `invariant ${inv} checked on nothing: ${JSON.stringify(run.result.checked)}`);
  }
});
