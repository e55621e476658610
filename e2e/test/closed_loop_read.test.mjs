// The closed loop's read side with the official socket.io-client on real time: a notification's timeline tells its
// story in order; the acknowledgement report's figures match a scripted scenario whose times the client saw (the
// notification's createdAt and the acknowledgement's acknowledgedAt); and the exported audit trail is one hash
// chain that this test verifies on its own, with node:crypto, from the records' fields.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, rid, sleep, TS_RE } from '../helpers.mjs';

const GENESIS = '0'.repeat(64);

/** A record's hash as the chain defines it: SHA-256 of a JSON array of its fields and the previous hash. */
function link(r) {
  const fields = [
    r.seq,
    Date.parse(r.at),
    r.type,
    r.notificationId ?? null,
    r.userId ?? null,
    r.socketId ?? null,
    r.level ?? null,
    r.detail === undefined ? null : JSON.stringify(r.detail),
    r.prevHash,
  ];
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

describe('the closed loop read side: timeline, report, audit export', () => {
  let srv;
  let dir;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-closed-loop-'));
    const config = join(dir, 'herald.toml');
    writeFileSync(config, '[escalation.policies.critical]\nsteps = [{ after = "1s", renotify = true }]\n');
    srv = await startServer({ HERALD_CONFIG: config });
  });
  after(async () => {
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a timeline in order, the report of a scripted scenario, and an export whose chain verifies', async () => {
    const from = new Date(Date.now() - 1000).toISOString();
    const doctor = srv.identity();
    const tab = await srv.connect({ token: doctor.token });
    const ack = async (id) => {
      const a = await tab.emitAck('acknowledge_notification', { notificationId: id });
      assert.equal(a.ok, true, JSON.stringify(a));
      return Date.parse(a.acknowledgedAt);
    };
    const send = async (severity) => {
      const r = await srv.notify(doctor.userId, { id: rid('n'), severity, title: 'Critical Finding Detected' });
      assert.equal(r.status, 202, r.text);
      return r.body.notification;
    };

    // slow: reminded after 1 s, then acknowledged; quick: acknowledged at once; waiting: open past its first
    // step (overdue); routine: open, without a policy (never overdue).
    const slow = await send('critical');
    const quick = await send('critical');
    const quickAt = await ack(quick.id);
    const waiting = await send('critical');
    const routine = await send('routine');
    const reminder = await tab.waitFor('critical_notification', 4000).then(async () => {
      // The live deliveries come first; wait for the reminders themselves.
      const deadline = Date.now() + 4000;
      while (Date.now() < deadline) {
        const r = tab.all('critical_notification').filter((p) => p.id === slow.id && p.reminder === 1);
        if (r.length) return r[0];
        await sleep(20);
      }
      throw new Error(`no reminder: ${JSON.stringify(tab.summary())}`);
    });
    assert.equal(reminder.id, slow.id);
    const slowAt = await ack(slow.id);
    // The waiting one is reminded too: past its first step, it is overdue.
    const deadline = Date.now() + 4000;
    while (!tab.all('critical_notification').some((p) => p.id === waiting.id && p.reminder === 1)) {
      assert.ok(Date.now() < deadline, 'the waiting notification was reminded');
      await sleep(20);
    }

    const timeline = await srv.api('GET', `/api/v1/notifications/${slow.id}/timeline`);
    assert.equal(timeline.status, 200, timeline.text);
    const types = timeline.body.events.map((e) => e.type);
    assert.deepEqual(types, ['created', 'delivered', 'reminded', 'acknowledged', 'closed'], JSON.stringify(timeline.body));
    const times = timeline.body.events.map((e) => e.at);
    for (const t of times) assert.match(t, TS_RE);
    assert.deepEqual([...times].sort(), times, 'oldest first');
    const acked = timeline.body.events[3];
    assert.equal(acked.userId, doctor.userId);
    assert.equal(acked.socketId, tab.socket.id, 'from which socket');
    assert.match(acked.detail.remote, /^127\.0\.0\.1:\d+$/, 'from which address');
    assert.equal(timeline.body.events[2].level, 1);
    assert.equal((await srv.api('GET', `/api/v1/notifications/${rid('nope')}/timeline`)).status, 404);

    const to = new Date(Date.now() + 1000).toISOString();
    const q = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
    const report = await srv.api('GET', `/api/v1/reports/acknowledgement?${q}`);
    assert.equal(report.status, 200, report.text);
    const tta = [quickAt - Date.parse(quick.createdAt), slowAt - Date.parse(slow.createdAt)].sort((a, b) => a - b);
    const critical = report.body.bySeverity.critical;
    assert.deepEqual(
      { count: critical.count, acknowledged: critical.acknowledged, open: critical.open, overdue: critical.overdue },
      { count: 3, acknowledged: 2, open: 1, overdue: 1 },
    );
    // Nearest rank over two times: the median is the shorter, the 90th and 99th the longer.
    assert.deepEqual(critical.timeToAcknowledge, { p50: tta[0], p90: tta[1], p99: tta[1] });
    const routineFigures = report.body.bySeverity.routine;
    assert.equal(routineFigures.open, 1);
    assert.equal(routineFigures.overdue, 0, 'no policy, never overdue');
    assert.equal(report.body.count, 4);
    assert.equal(report.body.open, 2);
    assert.equal(routine.severity, 'routine');
    const only = await srv.api('GET', `/api/v1/reports/acknowledgement?${q}&severity=routine`);
    assert.equal(only.body.count, 1);
    assert.equal((await srv.api('GET', '/api/v1/reports/acknowledgement?from=yesterday')).status, 400);

    // The export: every record of the period, in chain order, each linked to the one before and hashing to itself.
    const exported = await srv.api('GET', `/api/v1/audit?${q}&format=jsonl`);
    assert.equal(exported.status, 200);
    const records = exported.text.trim().split('\n').map((l) => JSON.parse(l));
    // Each closing acknowledgement is one record that says it closed the notification.
    assert.ok(records.length >= 12, `${records.length} records`);
    const closing = records.filter((r) => r.type === 'acknowledged' && r.notificationId === slow.id);
    assert.equal(closing.length, 1);
    assert.equal(closing[0].detail.closed, true, 'the acknowledgement that closed it says so');
    assert.equal(records[0].prevHash, GENESIS, 'the period starts with the first record of a fresh server');
    let prev = GENESIS;
    for (const r of records) {
      assert.equal(r.prevHash, prev, `record ${r.seq} links to the one before`);
      assert.equal(link(r), r.hash, `record ${r.seq} hashes to itself`);
      prev = r.hash;
    }
    const csv = await srv.api('GET', `/api/v1/audit?${q}&format=csv`);
    const lines = csv.text.trim().split('\n');
    assert.equal(lines[0], 'seq,at,type,notification_id,user_id,socket_id,level,detail,prev_hash,hash');
    assert.equal(lines.length, records.length + 1);
    assert.ok(!exported.text.includes('Critical Finding Detected'), 'no notification text in the trail');
  });
});
