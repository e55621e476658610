// The clinical closed loop on real time with a policy of seconds: reminders, escalation to a role and to users,
// notification_escalated to the earlier recipients, the signed webhook retried until it is taken, closing by an
// escalation recipient on every screen, no step after closing, and no escalation for a severity without a policy.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, rid, recordSecret, sleep, TS_RE } from '../helpers.mjs';

const ROLE = 'attending';

/** The next unconsumed `event` whose payload satisfies `pred`, waiting at most `ms`. */
async function waitWhere(c, event, pred, ms = 4000) {
  const deadline = Date.now() + ms;
  while (true) {
    const e = c.events.find((x) => !x.used && x.event === event && pred(x.args[0]));
    if (e) {
      e.used = true;
      return e;
    }
    if (Date.now() > deadline) throw new Error(`timeout ${ms}ms waiting for ${event}; got: ${JSON.stringify(c.summary())}`);
    await sleep(20);
  }
}

const about = (id) => (p) => p?.id === id || p?.notificationId === id;

/** Every payload of `event` about notification `id` that `c` received. */
const received = (c, event, id) => c.all(event).filter(about(id));

/**
 * A pager gateway: checks each POST's signature, refuses the first attempt for each notification with a 500 and
 * takes the next ones with a 200.
 */
function startReceiver(secret) {
  const posts = [];
  const tried = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const expected = `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
      const body = JSON.parse(raw.toString('utf8'));
      const id = body.notification.id;
      const status = tried.has(id) ? 200 : 500;
      tried.add(id);
      posts.push({ at: Date.now(), id, body, signed: req.headers['x-herald-signature'] === expected, status });
      res.writeHead(status).end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, posts, port: server.address().port })));
}

async function waitPost(posts, pred, ms = 4000) {
  const deadline = Date.now() + ms;
  while (true) {
    const p = posts.find(pred);
    if (p) return p;
    if (Date.now() > deadline) throw new Error(`no such webhook POST within ${ms}ms; got ${JSON.stringify(posts.map((p) => [p.id, p.status]))}`);
    await sleep(20);
  }
}

describe('escalation of an unacknowledged critical notification', () => {
  let srv;
  let receiver;
  let dir;
  const chief = rid('chief');

  before(async () => {
    const secret = `whsec-${randomBytes(16).toString('hex')}`;
    recordSecret('webhook_secret', secret);
    receiver = await startReceiver(secret);
    dir = mkdtempSync(join(tmpdir(), 'herald-escalation-'));
    const config = join(dir, 'herald.toml');
    writeFileSync(
      config,
      `[escalation]
lease = "5s"
webhook_timeout = "2s"

[escalation.policies.critical]
steps = [
  { after = "1s", renotify = true },
  { after = "2s", to_role = "${ROLE}" },
  { after = "3s", to_users = ["${chief}"] },
  { after = "4s", webhook = "http://127.0.0.1:${receiver.port}/hook" },
]
`,
    );
    srv = await startServer({ HERALD_CONFIG: config, HERALD_ESCALATION_WEBHOOK_SECRET: secret });
  });
  after(async () => {
    await srv?.stop();
    receiver?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reminds, escalates to a role and to users, pages by webhook until taken, and closes on every screen', async () => {
    const doctor = srv.identity();
    const t1 = await srv.connect({ token: doctor.token });
    const t2 = await srv.connect({ token: srv.token({ userId: doctor.userId, sessionId: rid('s'), role: 'radiologist' }) });
    const member = await srv.connect({ token: srv.identity({ role: ROLE }).token });
    const boss = await srv.connect({ token: srv.identity({ userId: chief }).token });
    const late = srv.identity({ role: ROLE });
    let lateTab;
    try {
      const r = await srv.notify(doctor.userId, { id: rid('crit'), severity: 'critical', title: 'Critical finding' });
      assert.equal(r.status, 202, r.text);
      const { id, createdAt } = r.body.notification;
      const created = Date.parse(createdAt);
      for (const t of [t1, t2]) assert.equal((await waitWhere(t, 'critical_notification', about(id))).args[0].reminder, undefined);

      // 1s: a reminder on every tab of the original recipient, same id
      for (const t of [t1, t2]) {
        const e = await waitWhere(t, 'critical_notification', (n) => n.id === id && n.reminder === 1);
        assert.ok(e.at - created >= 1000, `reminder ${e.at - created}ms after createdAt`);
        assert.equal(e.args[0].title, 'Critical finding');
      }

      // 2s: the role's connected member gets it with the escalation; the earlier recipient is told
      const toRole = await waitWhere(member, 'critical_notification', about(id));
      assert.ok(toRole.at - created >= 2000, `to_role ${toRole.at - created}ms after createdAt`);
      assert.deepEqual(toRole.args[0].escalation, { level: 2, reason: 'unacknowledged for 2s' });
      assert.equal(toRole.args[0].redelivered, undefined);
      for (const t of [t1, t2]) {
        const e = (await waitWhere(t, 'notification_escalated', (x) => x.notificationId === id && x.level === 2)).args[0];
        assert.deepEqual({ ...e, at: undefined }, { notificationId: id, level: 2, to: { role: ROLE }, at: undefined });
        assert.match(e.at, TS_RE);
      }
      // a member who connects while it is open gets it in the catch-up
      lateTab = await srv.connect({ token: late.token });
      const caught = (await waitWhere(lateTab, 'critical_notification', about(id))).args[0];
      assert.equal(caught.redelivered, true);
      assert.deepEqual(caught.escalation, { level: 2, reason: 'unacknowledged for 2s' });

      // 3s: the named user; every earlier recipient (original, and the role's sockets) is told
      const toUser = await waitWhere(boss, 'critical_notification', about(id));
      assert.ok(toUser.at - created >= 3000, `to_users ${toUser.at - created}ms after createdAt`);
      assert.deepEqual(toUser.args[0].escalation, { level: 3, reason: 'unacknowledged for 3s' });
      for (const t of [t1, t2, member, lateTab]) {
        const e = (await waitWhere(t, 'notification_escalated', (x) => x.notificationId === id && x.level === 3)).args[0];
        assert.deepEqual(e.to, { users: [chief] });
      }
      assert.deepEqual(received(boss, 'notification_escalated', id), [], 'the added user is not told of its own escalation');
      assert.deepEqual(received(member, 'critical_notification', id).length, 1, 'no reminder to a role member');

      // 4s: the webhook, signed; refused once, retried after the backoff and taken
      const first = await waitPost(receiver.posts, (p) => p.id === id);
      assert.ok(first.at - created >= 4000, `webhook ${first.at - created}ms after createdAt`);
      assert.equal(first.signed, true, 'X-Herald-Signature is the HMAC-SHA256 of the body');
      assert.equal(first.status, 500);
      assert.equal(first.body.level, 4);
      assert.equal(first.body.notification.id, id);
      assert.equal(first.body.notification.createdAt, createdAt);
      assert.ok(first.body.openFor >= 4000 && first.body.openFor < 10_000, `openFor ${first.body.openFor}`);
      const retry = await waitPost(receiver.posts, (p) => p.id === id && p.status === 200);
      assert.equal(retry.signed, true);
      assert.ok(retry.at - first.at >= 900, `retried ${retry.at - first.at}ms after the failure`);

      // the added user acknowledges: closed on every screen of every recipient
      const ack = await boss.emitAck('acknowledge_notification', { notificationId: id });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.equal((await waitWhere(boss, 'notification_acknowledged', about(id))).args[0].acknowledgedAt, ack.acknowledgedAt);
      for (const t of [t1, t2, member, lateTab, boss]) {
        const e = (await waitWhere(t, 'notification_closed', about(id))).args[0];
        assert.deepEqual(e, { notificationId: id, closedAt: ack.acknowledgedAt, closedBy: chief });
      }
      assert.deepEqual(received(t1, 'notification_acknowledged', id), [], 'only the acknowledging user hears notification_acknowledged');
      // a later message on the same socket: any second notification_closed would have come before it
      const after = await srv.notify(late.userId, { id: rid('later'), title: 'next' });
      await waitWhere(lateTab, 'critical_notification', about(after.body.notification.id));
      assert.equal(received(lateTab, 'notification_closed', id).length, 1, 'a user both added and in the role hears it once');
    } finally {
      for (const c of [t1, t2, member, boss, lateTab]) c?.close();
    }
  });

  it('no step fires after closing, and a severity without a policy never escalates', async () => {
    const closedOne = srv.identity();
    const openOne = srv.identity();
    const a = await srv.connect({ token: closedOne.token });
    const b = await srv.connect({ token: openOne.token });
    const member = srv.identity({ role: ROLE });
    const m = await srv.connect({ token: member.token });
    const boss = await srv.connect({ token: srv.identity({ userId: chief }).token });
    try {
      const routine = (await srv.notify(openOne.userId, { id: rid('routine'), severity: 'routine', title: 'Routine' })).body.notification.id;
      const closing = (await srv.notify(closedOne.userId, { id: rid('closing'), severity: 'critical', title: 'To close' })).body.notification.id;
      const open = (await srv.notify(openOne.userId, { id: rid('open'), severity: 'critical', title: 'Left open' })).body.notification.id;

      // the role member closes `closing` once it reached the role (it was no recipient before)
      await waitWhere(m, 'critical_notification', about(closing));
      const ack = await m.emitAck('acknowledge_notification', { notificationId: closing });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      await waitWhere(m, 'notification_acknowledged', about(closing));
      for (const t of [a, m]) {
        const e = (await waitWhere(t, 'notification_closed', about(closing))).args[0];
        assert.deepEqual(e, { notificationId: closing, closedAt: ack.acknowledgedAt, closedBy: member.userId });
      }

      // `open`, created after both, reaches its to_users and webhook steps: theirs for `closing` and `routine` were due
      await waitWhere(boss, 'critical_notification', about(open));
      await waitPost(receiver.posts, (p) => p.id === open);
      assert.deepEqual(received(boss, 'critical_notification', closing), [], 'no to_users step after closing');
      assert.deepEqual(received(a, 'notification_escalated', closing).map((e) => e.level), [2], 'only the step before closing');
      assert.deepEqual(receiver.posts.filter((p) => p.id === closing), [], 'no webhook after closing');

      // the routine notification, created first, saw none of the steps `open` went through
      assert.equal(received(b, 'critical_notification', open).filter((n) => n.reminder === 1).length, 1);
      assert.deepEqual(received(b, 'critical_notification', routine).map((n) => n.reminder), [undefined]);
      assert.deepEqual(received(b, 'notification_escalated', routine), []);
      for (const t of [m, boss]) assert.deepEqual(received(t, 'critical_notification', routine), []);
      assert.deepEqual(receiver.posts.filter((p) => p.id === routine), []);
    } finally {
      for (const c of [a, b, m, boss]) c.close();
    }
  });
});

describe('a role member connected with a token for another role', () => {
  let srv;
  let dir;
  const chief = rid('chief');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-escalation-roles-'));
    const config = join(dir, 'herald.toml');
    // time between the role's step and the next for the member to connect twice
    writeFileSync(
      config,
      `[escalation.policies.critical]
steps = [
  { after = "1s", to_role = "${ROLE}" },
  { after = "4s", to_users = ["${chief}"] },
]
`,
    );
    srv = await startServer({ HERALD_CONFIG: config });
  });
  after(async () => {
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("hears the role's later escalation and the closing once on every socket, whichever role its token carries", async () => {
    const doctor = srv.identity();
    const d = await srv.connect({ token: doctor.token });
    const member = srv.identity({ role: ROLE });
    let asRole;
    let asOther;
    const boss = await srv.connect({ token: srv.identity({ userId: chief }).token });
    try {
      const r = await srv.notify(doctor.userId, { id: rid('crit'), severity: 'critical', title: 'Critical finding' });
      assert.equal(r.status, 202, r.text);
      const { id } = r.body.notification;
      await waitWhere(d, 'notification_escalated', (x) => x.notificationId === id && x.level === 1);

      // the member connects with the role's token: a recipient from now on, caught up
      asRole = await srv.connect({ token: member.token });
      assert.deepEqual((await waitWhere(asRole, 'critical_notification', about(id))).args[0].escalation, { level: 1, reason: 'unacknowledged for 1s' });
      // and, in another application, with a token for another role
      asOther = await srv.connect({ token: srv.token({ userId: member.userId, sessionId: rid('s'), role: 'radiologist' }) });
      assert.equal((await waitWhere(asOther, 'critical_notification', about(id))).args[0].redelivered, true);

      // 4s: the next step; both sockets of the member are told, once each
      await waitWhere(boss, 'critical_notification', about(id), 6000);
      for (const t of [asRole, asOther, d]) {
        const e = (await waitWhere(t, 'notification_escalated', (x) => x.notificationId === id && x.level === 2)).args[0];
        assert.deepEqual(e.to, { users: [chief] });
      }

      // the added user acknowledges: closed on both sockets of the member, once each
      const ack = await boss.emitAck('acknowledge_notification', { notificationId: id });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      for (const t of [asRole, asOther, d, boss]) {
        const e = (await waitWhere(t, 'notification_closed', about(id))).args[0];
        assert.deepEqual(e, { notificationId: id, closedAt: ack.acknowledgedAt, closedBy: chief });
      }
      // a later message on each socket: any second event would have come before it
      const later = await srv.notify(member.userId, { id: rid('later'), title: 'next' });
      for (const t of [asRole, asOther]) {
        await waitWhere(t, 'critical_notification', about(later.body.notification.id));
        assert.equal(received(t, 'notification_escalated', id).filter((e) => e.level === 2).length, 1, 'told of the escalation once');
        assert.equal(received(t, 'notification_closed', id).length, 1, 'told of the closing once');
      }
    } finally {
      for (const c of [d, boss, asRole, asOther]) c?.close();
    }
  });
});
