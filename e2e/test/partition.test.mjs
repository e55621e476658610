// The partition test, short form (issue 21): three Herald nodes, Redis and PostgreSQL each in its own network
// namespace; every fault once on its own and then in overlapping pairs (a node cut from Redis, from PostgreSQL, from
// its clients; Redis restarted empty; PostgreSQL restarted; a node killed; a node paused past the escalation lease
// so that two nodes race on the same step) under a steady load of notifications, acknowledgements, session expiries
// and escalations; then the checker (e2e/partition/checker.mjs) proves every invariant over the recorded history.
// Skipped, saying why, where `ip netns` is not permitted. The long form: e2e/partition/run.mjs.
//
// The two findings these invariants once had (a step's reminder repeated when the node that told it could not record
// it, a reminder told after the acknowledgement) are fixed at the socket; a webhook re-posted under the same
// X-Herald-Delivery is the one step a receiver deduplicates (docs/reliability.md, "The partition test").
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { netnsUnsupported } from '../partition/net.mjs';
import { runPartition, summary } from '../partition/run.mjs';

const why = netnsUnsupported();
const ONCE = ['step_once', 'none_after_ack'];
const HOLDING = ['delivered', 'ack_durable', 'expiry_once', 'once_per_socket', 'no_cross_user', 'audit'];

describe('partition: invariants under each fault, alone and overlapping', { skip: why ?? false, timeout: 180_000 }, () => {
  const historyFile = process.env.HERALD_E2E_LOG_DIR
    ? join(process.env.HERALD_E2E_LOG_DIR, `partition-history-${process.pid}.jsonl`)
    : join(tmpdir(), `herald-partition-${process.pid}.jsonl`);
  let run = null;
  let skipped = null;

  before(async () => {
    try {
      run = await runPartition({ historyFile, log: (l) => process.stderr.write(`${l}\n`) });
    } catch (e) {
      if (!e.skip) throw e;
      skipped = e.message;
      return;
    }
    process.stderr.write(`partition short form: ${JSON.stringify(summary(run))}\nhistory: ${historyFile}\n`);
  });

  /** The violations of `invariants`, shown with their evidence. */
  const violationsOf = (invariants) => {
    const found = run.result.violations.filter((v) => invariants.includes(v.invariant));
    const shown = found.slice(0, 10).map((v) => `${v.invariant}: ${v.message}\n  ${JSON.stringify(v.evidence).slice(0, 1200)}`);
    return { found, message: `violations (history in ${historyFile}):\n${shown.join('\n')}` };
  };

  it('a 202 reaches its user, an acknowledgement answered ok is kept, one expiry, nothing crosses users, the trail verifies', (t) => {
    if (skipped) return t.skip(skipped);
    const { found, message } = violationsOf(HOLDING);
    assert.equal(found.length, 0, message);
    // the run really exercised what it claims to check
    assert.ok(run.faults >= 14, `${run.faults} faults`);
    for (const inv of [...HOLDING, ...ONCE]) {
      assert.ok(run.result.checked[inv] > 0, `invariant ${inv} checked on nothing: ${JSON.stringify(run.result.checked)}`);
    }
  });

  it('no escalation step fires twice and nothing reaches a socket after its acknowledgement', (t) => {
    if (skipped) return t.skip(skipped);
    const { found, message } = violationsOf(ONCE);
    assert.equal(found.length, 0, message);
  });
});
