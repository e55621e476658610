// Notifications for one user: delivery to all tabs, ids, idempotency, catch-up with redelivered, acknowledgement, states.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid, TS_RE, eventually } from '../helpers.mjs';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

describe('notifications to a user', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  it('reaches both tabs of the user and not another user; deliveredTo counts sockets', async () => {
    const a = srv.identity();
    const other = srv.identity();
    const t1 = await srv.connect({ token: a.token });
    const t2 = await srv.connect({ token: srv.token({ userId: a.userId, sessionId: rid('s'), role: 'tech' }), transports: ['websocket'] });
    const o = await srv.connect({ token: other.token });
    try {
      const body = {
        id: rid('notification'),
        type: 'critical_finding',
        severity: 'critical',
        title: 'Critical Finding Detected',
        message: 'Urgent review required',
        patientId: 'patient-789',
        studyId: 'study-012',
        nested: { deep: [1, 2, { x: null }], flag: true },
      };
      const r = await srv.notify(a.userId, body);
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 2);
      assert.equal(r.body.notification.id, body.id);
      assert.match(r.body.notification.createdAt, TS_RE);
      const n1 = await t1.waitFor('critical_notification');
      const n2 = await t2.waitFor('critical_notification');
      for (const n of [n1, n2]) {
        const { createdAt, ...rest } = n;
        assert.deepEqual(rest, body, 'unknown fields kept untouched');
        assert.equal(createdAt, r.body.notification.createdAt);
        assert.equal('redelivered' in n, false, 'live notification has no redelivered field');
      }
      assert.deepEqual(await o.none('critical_notification', 300), []);
    } finally {
      t1.close();
      t2.close();
      o.close();
    }
  });

  it('user ids with URL-special characters (e-mail, space, unicode) work through percent-encoded paths', async () => {
    for (const userId of [`dr.smith+${rid('x')}@hospital.org`, `Dr ${rid('x')} Smith`, `ärztin-${rid('x')}`]) {
      const c = await srv.connect({ token: srv.token({ userId, sessionId: rid('s'), role: 'Senior Radiologist' }) });
      try {
        assert.equal(c.connectedPayload.userId, userId);
        const r = await srv.notify(userId, { title: 'encoded' });
        assert.equal(r.status, 202, r.text);
        assert.equal(r.body.deliveredTo, 1, userId);
        assert.equal((await c.waitFor('critical_notification')).title, 'encoded');
        const u = await srv.api('GET', `/api/v1/users/${encodeURIComponent(userId)}`);
        assert.deepEqual(u.body, { userId, connected: true, connections: 1 });
        const e = await srv.api('POST', `/api/v1/roles/${encodeURIComponent('Senior Radiologist')}/events`, { event: 'role_ping' });
        assert.ok(e.body.deliveredTo >= 1, JSON.stringify(e.body));
        await c.waitFor('role_ping');
      } finally {
        c.close();
      }
    }
  });

  it('a backend-supplied `redelivered` field never reaches a live delivery', async () => {
    const a = srv.identity();
    const c = await srv.connect({ token: a.token });
    try {
      const r = await srv.notify(a.userId, { id: rid('rd'), title: 'sneaky', redelivered: true });
      assert.equal(r.status, 202, r.text);
      const n = await c.waitFor('critical_notification');
      assert.equal(n.title, 'sneaky');
      assert.equal('redelivered' in n, false, 'live delivery carries no redelivered field');
    } finally {
      c.close();
    }
  });

  it('fills in a UUID id and createdAt when absent', async () => {
    const a = srv.identity();
    const r = await srv.notify(a.userId, { title: 'no id' });
    assert.equal(r.status, 202, r.text);
    assert.match(r.body.notification.id, UUID_RE);
    assert.match(r.body.notification.createdAt, TS_RE);
    assert.equal(r.body.notification.title, 'no id');
    assert.equal(r.body.deliveredTo, 0);
  });

  it('refuses bad ids with 400 {error:{code,message}}', async () => {
    const u = rid('u');
    for (const id of ['a/b', 'x'.repeat(129), 'x'.repeat(200), '', 'has space', 'ümlaut', 'a?b', 'a#b', 'a%2Fb', 42, true, {}]) {
      const r = await srv.notify(u, { id, title: 't' });
      assert.equal(r.status, 400, `id ${JSON.stringify(id)} -> ${r.status} ${r.text}`);
      assert.equal(typeof r.body.error.code, 'string');
      assert.equal(typeof r.body.error.message, 'string');
    }
    const all = await srv.api('GET', `/api/v1/users/${u}/notifications`);
    assert.deepEqual(all.body.notifications, []);
  });

  it('accepts ids of 1 and 128 chars from A-Z a-z 0-9 . _ : -', async () => {
    const u = rid('u');
    for (const id of ['a', 'x'.repeat(128), 'Az09._:-', `ok.${rid('n')}`]) {
      const r = await srv.notify(u, { id, title: 't' });
      assert.equal(r.status, 202, `id ${id} -> ${r.status} ${r.text}`);
      assert.equal(r.body.notification.id, id);
      const g = await srv.api('GET', `/api/v1/users/${u}/notifications/${encodeURIComponent(id)}`);
      assert.equal(g.status, 200, g.text);
    }
  });

  it('same id twice -> 202, deliveredTo 0, first body stands, nothing re-sent live', async () => {
    const a = srv.identity();
    const c = await srv.connect({ token: a.token });
    try {
      const id = rid('dup');
      const r1 = await srv.notify(a.userId, { id, title: 'first' });
      assert.equal(r1.status, 202);
      assert.equal(r1.body.deliveredTo, 1);
      await c.waitFor('critical_notification');
      const r2 = await srv.notify(a.userId, { id, title: 'second' });
      assert.equal(r2.status, 202, r2.text);
      assert.equal(r2.body.deliveredTo, 0);
      assert.equal(r2.body.notification.title, 'first');
      assert.equal(r2.body.notification.createdAt, r1.body.notification.createdAt);
      assert.deepEqual(await c.none('critical_notification', 300), []);
      const g = await srv.api('GET', `/api/v1/notifications/${id}`);
      assert.equal(g.body.notification.title, 'first');
    } finally {
      c.close();
    }
  });

  it('offline user gets every unacked notification right after connected, oldest first, redelivered:true', async () => {
    const a = srv.identity();
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const r = await srv.notify(a.userId, { id: rid(`off${i}`), seq: i });
      assert.equal(r.status, 202);
      assert.equal(r.body.deliveredTo, 0);
      ids.push(r.body.notification.id);
    }
    const c = await srv.connect({ token: a.token });
    try {
      const got = await c.waitForN('critical_notification', 5, 5000);
      assert.deepEqual(got.map((n) => n.id), ids);
      assert.deepEqual(got.map((n) => n.seq), [0, 1, 2, 3, 4]);
      for (const n of got) assert.strictEqual(n.redelivered, true);
      const order = c.names().filter((n) => n !== 'connect');
      assert.deepEqual(order.slice(0, 6), ['connected', ...Array(5).fill('critical_notification')]);
      // a live one on the same socket afterwards carries no redelivered
      await srv.notify(a.userId, { id: rid('live'), seq: 5 });
      const live = await c.waitFor('critical_notification');
      assert.equal(live.seq, 5);
      assert.equal('redelivered' in live, false);
      assert.deepEqual(await c.none('critical_notification', 300), [], 'each notification at most once');
    } finally {
      c.close();
    }
  });

  it('a new tab gets the unacked ones too (redelivered), including ones delivered live to the first tab', async () => {
    const a = srv.identity();
    const t1 = await srv.connect({ token: a.token });
    try {
      const r = await srv.notify(a.userId, { id: rid('tab'), title: 'to tab 1' });
      assert.equal(r.body.deliveredTo, 1);
      await t1.waitFor('critical_notification');
      const t2 = await srv.connect({ token: a.token });
      try {
        const n = await t2.waitFor('critical_notification');
        assert.equal(n.id, r.body.notification.id);
        assert.strictEqual(n.redelivered, true);
        assert.deepEqual(await t1.none('critical_notification', 300), [], 'first tab gets nothing new');
      } finally {
        t2.close();
      }
    } finally {
      t1.close();
    }
  });

  it('acknowledge from one tab -> ack callback and notification_acknowledged on every tab; not redelivered after', async () => {
    const a = srv.identity();
    const t1 = await srv.connect({ token: a.token });
    const t2 = await srv.connect({ token: srv.token({ userId: a.userId, sessionId: rid('s2'), role: 'radiologist' }), transports: ['websocket'] });
    try {
      const acked = (await srv.notify(a.userId, { id: rid('ack'), title: 'ack me' })).body.notification.id;
      const kept = (await srv.notify(a.userId, { id: rid('keep'), title: 'keep me' })).body.notification.id;
      await t1.waitForN('critical_notification', 2);
      await t2.waitForN('critical_notification', 2);

      const res = await t1.emitAck('acknowledge_notification', { notificationId: acked, userId: a.userId });
      assert.equal(res.ok, true, JSON.stringify(res));
      assert.equal(res.notificationId, acked);
      assert.match(res.acknowledgedAt, TS_RE);
      for (const t of [t1, t2]) {
        const e = await t.waitFor('notification_acknowledged');
        assert.deepEqual(e, { notificationId: acked, acknowledgedAt: res.acknowledgedAt });
      }

      // acknowledge twice: same acknowledgedAt; userId optional
      const again = await t2.emitAck('acknowledge_notification', { notificationId: acked });
      assert.equal(again.ok, true, JSON.stringify(again));
      assert.equal(again.acknowledgedAt, res.acknowledgedAt);

      // new tab: only the unacked one
      const t3 = await srv.connect({ token: a.token });
      try {
        const n = await t3.waitFor('critical_notification');
        assert.equal(n.id, kept);
        assert.deepEqual(await t3.none('critical_notification', 300), []);
      } finally {
        t3.close();
      }
      const g = await srv.api('GET', `/api/v1/users/${a.userId}/notifications/${acked}`);
      assert.equal(g.body.state, 'acknowledged');
      assert.equal(g.body.acknowledgedAt, res.acknowledgedAt);
    } finally {
      t1.close();
      t2.close();
    }
  });

  it('acknowledging an unknown id -> not_found; another userId -> forbidden; nothing changes', async () => {
    const a = srv.identity();
    const b = srv.identity();
    const c = await srv.connect({ token: a.token });
    try {
      const nf = await c.emitAck('acknowledge_notification', { notificationId: rid('nope'), userId: a.userId });
      assert.equal(nf.ok, false);
      assert.equal(nf.error.code, 'not_found');
      assert.equal(typeof nf.error.message, 'string');

      const bn = (await srv.notify(b.userId, { id: rid('forb'), title: 'b only' })).body.notification.id;
      const fb = await c.emitAck('acknowledge_notification', { notificationId: bn, userId: b.userId });
      assert.equal(fb.ok, false);
      assert.equal(fb.error.code, 'forbidden');
      // a's own ack of b's notification id: a is not a recipient
      const nr = await c.emitAck('acknowledge_notification', { notificationId: bn, userId: a.userId });
      assert.equal(nr.ok, false);
      assert.equal(nr.error.code, 'not_found');
      const g = await srv.api('GET', `/api/v1/users/${b.userId}/notifications/${bn}`);
      assert.equal(g.body.state, 'pending');
      assert.equal(g.body.acknowledgedAt ?? null, null);
      assert.equal(c.connected, true);
    } finally {
      c.close();
    }
  });

  it('states pending -> delivered -> acknowledged, with ?state= filters', async () => {
    const a = srv.identity();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await srv.notify(a.userId, { id: rid(`st${i}`), seq: i })).body.notification.id);
    const get = (id) => srv.api('GET', `/api/v1/users/${a.userId}/notifications/${id}`);
    const list = async (state) => {
      const r = await srv.api('GET', `/api/v1/users/${a.userId}/notifications${state ? `?state=${state}` : ''}`);
      assert.equal(r.status, 200, r.text);
      return r.body.notifications.map((n) => n.id ?? n.notification?.id);
    };
    let g = await get(ids[0]);
    assert.equal(g.status, 200);
    assert.equal(g.body.userId, a.userId);
    assert.equal(g.body.state, 'pending');
    assert.equal(g.body.deliveredAt ?? null, null);
    assert.equal(g.body.notification.id, ids[0]);
    assert.deepEqual(await list('pending'), ids);
    assert.deepEqual(await list('delivered'), []);

    const c = await srv.connect({ token: a.token });
    try {
      await c.waitForN('critical_notification', 3);
      await eventually(async () => (await get(ids[2])).body.state === 'delivered', 3000);
      g = await get(ids[0]);
      assert.equal(g.body.state, 'delivered');
      assert.match(g.body.deliveredAt, TS_RE);
      const ack = await c.emitAck('acknowledge_notification', { notificationId: ids[1], userId: a.userId });
      assert.equal(ack.ok, true);
      g = await get(ids[1]);
      assert.equal(g.body.state, 'acknowledged');
      assert.equal(g.body.acknowledgedAt, ack.acknowledgedAt);
      assert.match(g.body.deliveredAt, TS_RE);

      assert.deepEqual(await list(), ids, 'default all, oldest first');
      assert.deepEqual(await list('all'), ids);
      assert.deepEqual(await list('pending'), []);
      assert.deepEqual(await list('delivered'), [ids[0], ids[2]]);
      assert.deepEqual(await list('unacknowledged'), [ids[0], ids[2]]);
      assert.deepEqual(await list('acknowledged'), [ids[1]]);
      const bad = await srv.api('GET', `/api/v1/users/${a.userId}/notifications?state=bogus`);
      assert.equal(bad.status, 400, bad.text);
    } finally {
      c.close();
    }
  });

  it('GET /api/v1/notifications/{id} -> {notification, recipients}; unknown -> 404', async () => {
    const a = srv.identity();
    const id = rid('one');
    await srv.notify(a.userId, { id, k: 'v' });
    const g = await srv.api('GET', `/api/v1/notifications/${id}`);
    assert.equal(g.status, 200, g.text);
    assert.equal(g.body.notification.id, id);
    assert.equal(g.body.notification.k, 'v');
    assert.equal(g.body.recipients.length, 1);
    const r0 = g.body.recipients[0];
    assert.equal(r0.userId, a.userId);
    assert.equal(r0.state, 'pending');
    assert.ok('deliveredAt' in r0 && 'acknowledgedAt' in r0, JSON.stringify(r0));
    const nf = await srv.api('GET', `/api/v1/notifications/${rid('missing')}`);
    assert.equal(nf.status, 404);
    assert.equal(typeof nf.body.error?.code, 'string');
    const nf2 = await srv.api('GET', `/api/v1/users/${a.userId}/notifications/${rid('missing')}`);
    assert.equal(nf2.status, 404);
    const nf3 = await srv.api('GET', `/api/v1/users/${rid('other')}/notifications/${id}`);
    assert.equal(nf3.status, 404, 'not a recipient');
  });

  it('a long catch-up (300 unacked) arrives complete, in order, once each, socket stays connected (ws, polling, upgrade)', async () => {
    const a = srv.identity();
    const ids = [];
    for (let i = 0; i < 300; i++) {
      const r = await srv.notify(a.userId, { id: `bulk-${a.userId}-${String(i).padStart(3, '0')}`, seq: i, pad: 'x'.repeat(200) });
      assert.equal(r.status, 202);
      ids.push(r.body.notification.id);
    }
    // default transports: the polling -> websocket upgrade happens in the middle of the catch-up
    for (const transports of [['websocket'], ['polling'], undefined]) {
      const label = transports ? transports[0] : 'upgrade';
      const c = srv.open({ token: a.token, transports });
      try {
        await c.ready(5000);
        // a notification created during the catch-up is delivered exactly once
        const extra = (await srv.notify(a.userId, { id: rid(`during-${label}`), seq: 300 + ids.length })).body.notification.id;
        const got = await c.waitForN('critical_notification', ids.length + 1, 30_000);
        const gotIds = got.map((n) => n.id);
        assert.deepEqual(gotIds.filter((x) => x !== extra), ids, `${label}: all in order`);
        assert.equal(gotIds.filter((x) => x === extra).length, 1);
        assert.deepEqual(await c.none('critical_notification', 500), [], 'nothing twice');
        assert.equal(c.connected, true);
        assert.deepEqual(c.all('disconnect'), []);
        assert.deepEqual(await c.emitAck('activity'), { ok: true });
        ids.push(extra);
      } finally {
        c.close();
      }
    }
  });
});
