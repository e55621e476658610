// Covers multi-recipient notifications (POST /api/v1/notifications) and the events API (role / user / all, reserved names).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid, TS_RE, eventually } from '../helpers.mjs';

const RESERVED = [
  'connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener',
  'connected', 'critical_notification', 'notification_acknowledged', 'session_timeout_warning',
  'session_expired', 'session_extended', 'error',
];

describe('broadcast notifications', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  it('one shared generated id, per-recipient delivery and ack state', async () => {
    const a = srv.identity();
    const b = srv.identity();
    const offline = rid('off');
    const ca1 = await srv.connect({ token: a.token });
    const ca2 = await srv.connect({ token: a.token, transports: ['websocket'] });
    const cb = await srv.connect({ token: b.token });
    try {
      const r = await srv.api('POST', '/api/v1/notifications', {
        userIds: [a.userId, b.userId, offline],
        notification: { type: 'critical_finding', title: 'broadcast', extra: { k: 1 } },
      });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.results.length, 3);
      const byUser = Object.fromEntries(r.body.results.map((x) => [x.userId, x]));
      const id = byUser[a.userId].notificationId;
      assert.equal(typeof id, 'string');
      for (const x of r.body.results) assert.equal(x.notificationId, id, 'one shared id');
      assert.equal(byUser[a.userId].deliveredTo, 2);
      assert.equal(byUser[b.userId].deliveredTo, 1);
      assert.equal(byUser[offline].deliveredTo, 0);

      for (const c of [ca1, ca2, cb]) {
        const n = await c.waitFor('critical_notification');
        assert.equal(n.id, id);
        assert.equal(n.title, 'broadcast');
        assert.deepEqual(n.extra, { k: 1 });
        assert.match(n.createdAt, TS_RE);
        assert.equal('redelivered' in n, false);
      }

      // a acknowledges: only a's state changes; b's tabs get no notification_acknowledged
      const ack = await ca1.emitAck('acknowledge_notification', { notificationId: id, userId: a.userId });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      await ca2.waitFor('notification_acknowledged');
      assert.deepEqual(await cb.none('notification_acknowledged', 300), []);

      const g = await srv.api('GET', `/api/v1/notifications/${id}`);
      assert.equal(g.status, 200, g.text);
      const st = Object.fromEntries(g.body.recipients.map((x) => [x.userId, x]));
      assert.equal(st[a.userId].state, 'acknowledged');
      assert.equal(st[a.userId].acknowledgedAt, ack.acknowledgedAt);
      assert.equal(st[b.userId].state, 'delivered');
      assert.match(st[b.userId].deliveredAt, TS_RE);
      assert.equal(st[b.userId].acknowledgedAt ?? null, null);
      assert.equal(st[offline].state, 'pending');

      // the offline recipient gets it on connect, redelivered
      const co = await srv.connect({ token: srv.token({ userId: offline, sessionId: rid('s'), role: 'tech' }) });
      try {
        const n = await co.waitFor('critical_notification');
        assert.equal(n.id, id);
        assert.strictEqual(n.redelivered, true);
      } finally {
        co.close();
      }
      await eventually(async () => {
        const gg = await srv.api('GET', `/api/v1/users/${offline}/notifications/${id}`);
        return gg.body.state === 'delivered';
      });
      // b acknowledging with a's userId is forbidden
      const fb = await cb.emitAck('acknowledge_notification', { notificationId: id, userId: a.userId });
      assert.equal(fb.error?.code, 'forbidden');
    } finally {
      ca1.close();
      ca2.close();
      cb.close();
    }
  });

  it('a broadcast with a given id keeps it; duplicate userIds count once', async () => {
    const u1 = rid('u');
    const u2 = rid('u');
    const id = rid('bc');
    const r = await srv.api('POST', '/api/v1/notifications', { userIds: [u1, u2, u1], notification: { id, t: 1 } });
    assert.equal(r.status, 202, r.text);
    for (const x of r.body.results) assert.equal(x.notificationId, id);
    const g = await srv.api('GET', `/api/v1/notifications/${id}`);
    assert.deepEqual(g.body.recipients.map((x) => x.userId).sort(), [u1, u2].sort());
    // retry of the same broadcast: same notification, nothing re-sent
    const again = await srv.api('POST', '/api/v1/notifications', { userIds: [u1, u2], notification: { id, t: 2 } });
    assert.equal(again.status, 202, again.text);
    for (const x of again.body.results) assert.equal(x.deliveredTo, 0);
    assert.equal((await srv.api('GET', `/api/v1/notifications/${id}`)).body.notification.t, 1);
  });

  it('exactly 10,000 userIds is accepted; a connected one among them gets it live', async () => {
    const a = srv.identity();
    const c = await srv.connect({ token: a.token });
    try {
      const userIds = Array.from({ length: 9_999 }, (_, i) => `many-${i}-${a.userId}`);
      userIds.splice(5000, 0, a.userId);
      const r = await srv.api('POST', '/api/v1/notifications', { userIds, notification: { title: 'to many' } });
      assert.equal(r.status, 202, r.text.slice(0, 300));
      assert.equal(r.body.results.length, 10_000);
      assert.equal(new Set(r.body.results.map((x) => x.notificationId)).size, 1);
      assert.equal(r.body.results.find((x) => x.userId === a.userId).deliveredTo, 1);
      assert.equal((await c.waitFor('critical_notification')).title, 'to many');
    } finally {
      c.close();
    }
  });

  it('userIds empty, missing, not an array, or over 10,000 -> 400', async () => {
    const cases = [
      { userIds: [], notification: { t: 1 } },
      { notification: { t: 1 } },
      { userIds: 'u1', notification: { t: 1 } },
      { userIds: Array.from({ length: 10_001 }, (_, i) => `u${i}`), notification: { t: 1 } },
      { userIds: ['u1'] },
      { userIds: ['u1'], notification: 'text' },
      { userIds: ['u1'], notification: [1, 2] },
      { userIds: ['u1'], notification: { id: 'bad/id' } },
    ];
    for (const body of cases) {
      const r = await srv.api('POST', '/api/v1/notifications', body);
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)} -> ${r.status} ${r.text.slice(0, 200)}`);
      assert.equal(typeof r.body.error.code, 'string');
      assert.equal(typeof r.body.error.message, 'string');
    }
  });
});

describe('events API', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  it('POST /api/v1/events reaches every socket; deliveredTo counts them', async () => {
    // first test of this server: nothing else is connected
    const cs = [];
    try {
      for (let i = 0; i < 3; i++) cs.push(await srv.connect({ token: srv.identity({ role: `r${i}` }).token, transports: i ? ['websocket'] : undefined }));
      const r = await srv.api('POST', '/api/v1/events', { event: 'maintenance', data: { at: 'soon' } });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 3);
      for (const c of cs) assert.deepEqual(await c.waitFor('maintenance'), { at: 'soon' });
    } finally {
      cs.forEach((c) => c.close());
    }
    await eventually(async () => (await srv.api('GET', '/api/v1/users')).body.count === 0);
  });

  it('role broadcast reaches exactly the sockets of that role', async () => {
    const role = rid('radiologist');
    const r1 = await srv.connect({ token: srv.identity({ role }).token });
    const r2 = await srv.connect({ token: srv.identity({ role }).token, transports: ['websocket'] });
    const other = await srv.connect({ token: srv.identity({ role: rid('tech') }).token });
    try {
      const r = await srv.api('POST', `/api/v1/roles/${role}/events`, { event: 'worklist_updated', data: [1, 'two', { three: 3 }] });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 2);
      assert.deepEqual(await r1.waitFor('worklist_updated'), [1, 'two', { three: 3 }]);
      assert.deepEqual(await r2.waitFor('worklist_updated'), [1, 'two', { three: 3 }]);
      assert.deepEqual(await other.none('worklist_updated', 300), []);
      const none = await srv.api('POST', `/api/v1/roles/${rid('nobody')}/events`, { event: 'x', data: 1 });
      assert.equal(none.status, 202);
      assert.equal(none.body.deliveredTo, 0);
    } finally {
      r1.close();
      r2.close();
      other.close();
    }
  });

  it('user event reaches all sockets of that user only', async () => {
    const a = srv.identity();
    const b = srv.identity();
    const a1 = await srv.connect({ token: a.token });
    const a2 = await srv.connect({ token: a.token, transports: ['websocket'] });
    const b1 = await srv.connect({ token: b.token });
    try {
      const r = await srv.api('POST', `/api/v1/users/${a.userId}/events`, { event: 'study_ready', data: { studyId: 's1' } });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 2);
      assert.deepEqual(await a1.waitFor('study_ready'), { studyId: 's1' });
      assert.deepEqual(await a2.waitFor('study_ready'), { studyId: 's1' });
      assert.deepEqual(await b1.none('study_ready', 300), []);
    } finally {
      a1.close();
      a2.close();
      b1.close();
    }
  });

  it('absent data -> the event arrives with no argument; scalar data arrives as-is', async () => {
    const a = srv.identity();
    const c = await srv.connect({ token: a.token });
    try {
      const r = await srv.api('POST', `/api/v1/users/${a.userId}/events`, { event: 'ping_me' });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 1);
      assert.deepEqual(await c.waitForArgs('ping_me'), []);
      await srv.api('POST', `/api/v1/users/${a.userId}/events`, { event: 'num', data: 7 });
      assert.deepEqual(await c.waitForArgs('num'), [7]);
      await srv.api('POST', `/api/v1/users/${a.userId}/events`, { event: 'str', data: 'hello' });
      assert.deepEqual(await c.waitForArgs('str'), ['hello']);
    } finally {
      c.close();
    }
  });

  it('reserved event names -> 400 on every events route, nothing delivered', async () => {
    const a = srv.identity({ role: rid('role') });
    const c = await srv.connect({ token: a.token });
    try {
      for (const event of RESERVED) {
        for (const path of ['/api/v1/events', `/api/v1/users/${a.userId}/events`, `/api/v1/roles/${a.role}/events`]) {
          const r = await srv.api('POST', path, { event, data: { sneaky: true } });
          assert.equal(r.status, 400, `${event} on ${path} -> ${r.status} ${r.text}`);
          assert.equal(typeof r.body.error.code, 'string');
        }
      }
      await new Promise((r) => setTimeout(r, 300));
      const sneaky = c.events.filter((e) => e.args[0]?.sneaky);
      assert.deepEqual(sneaky.map((e) => e.event), []);
    } finally {
      c.close();
    }
  });

  it('missing or non-string event name -> 400', async () => {
    for (const body of [{}, { data: 1 }, { event: 5 }, { event: '' }, { event: null }, 'x', []]) {
      const r = await srv.api('POST', '/api/v1/events', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.status} ${r.text}`);
    }
  });
});
