// Presence on one node, with the real socket.io-client: presence_subscribe / presence_unsubscribe (the default
// audience), their refusals and rate budget, the reserved names, and the batched `role` audience
// (presence_batch once per window, each user's latest status, a flap cancelled).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid, sleep, TS_RE, eventually } from '../helpers.mjs';

const GRACE_MS = 300;
const of = (userId) => (p) => p?.userId === userId;

/** Poll until `client` has a recorded `event` matching `pred`; resolves with its payload. */
async function recordedEvent(client, event, pred, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = client.all(event).find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no matching ${event} in ${ms}ms: ${JSON.stringify(client.summary())}`);
    await sleep(20);
  }
}

async function subscribe(client, userIds) {
  const r = await client.emitAck('presence_subscribe', { userIds });
  assert.equal(r?.ok, true, JSON.stringify(r));
  return r;
}

describe('presence subscriptions (the default audience)', () => {
  let srv;
  before(async () => {
    srv = await startServer({ HERALD_PRESENCE_GRACE: `${GRACE_MS}ms`, HERALD_PRESENCE_MAX_SUBSCRIPTIONS: '5' });
  });
  after(async () => {
    await srv?.stop();
  });

  it('answers the users\' presence now, then `presence` for each change of theirs, and nothing for others', async () => {
    const here = srv.identity();
    const later = srv.identity();
    const stranger = srv.identity();
    const hereSocket = await srv.connect({ token: here.token });
    const watcher = await srv.connect({ token: srv.identity().token });
    const bystander = await srv.connect({ token: srv.identity().token, transports: ['polling'] });
    try {
      const answer = await subscribe(watcher, [here.userId, later.userId]);
      assert.deepEqual(Object.keys(answer).sort(), ['ok', 'presence']);
      assert.equal(answer.presence.length, 2);
      const [a, b] = answer.presence;
      assert.deepEqual(Object.keys(a).sort(), ['connections', 'since', 'status', 'userId']);
      assert.deepEqual([a.userId, a.status, a.connections], [here.userId, 'online', 1]);
      assert.match(a.since, TS_RE);
      assert.deepEqual(b, { userId: later.userId, status: 'offline', since: null, connections: 0 });
      // the same items as GET /presence
      const get = await srv.api('GET', `/api/v1/presence?userIds=${here.userId},${later.userId}`);
      assert.deepEqual(get.body.presence, answer.presence);

      const strangerSocket = await srv.connect({ token: stranger.token });
      const laterSocket = await srv.connect({ token: later.token, transports: ['polling'] });
      const on = await recordedEvent(watcher, 'presence', of(later.userId));
      assert.deepEqual(Object.keys(on).sort(), ['at', 'status', 'userId']);
      assert.equal(on.status, 'online');
      assert.match(on.at, TS_RE);

      hereSocket.close();
      const off = await recordedEvent(watcher, 'presence', of(here.userId), GRACE_MS + 3000);
      assert.equal(off.status, 'offline');
      assert.deepEqual(watcher.all('presence').map((p) => [p.userId, p.status]), [[later.userId, 'online'], [here.userId, 'offline']],
        'the stranger coming online was not told; each change once');
      assert.deepEqual(bystander.all('presence'), [], 'a socket that subscribed to nothing hears nothing');
      assert.deepEqual(bystander.all('presence_batch'), []);
      strangerSocket.close();
      laterSocket.close();
    } finally {
      watcher.close();
      bystander.close();
    }
  });

  it('presence_unsubscribe answers { ok: true } and stops that user\'s changes, not the others\'', async () => {
    const gone = srv.identity();
    const kept = srv.identity();
    const watcher = await srv.connect({ token: srv.identity().token });
    const witness = await srv.connect({ token: srv.identity().token });
    try {
      await subscribe(watcher, [gone.userId, kept.userId]);
      await subscribe(witness, [gone.userId]);
      assert.deepEqual(await watcher.emitAck('presence_unsubscribe', { userIds: [gone.userId, rid('never-watched')] }), { ok: true });
      const g = await srv.connect({ token: gone.token });
      // the positive signal that `gone`'s change went out: a socket still subscribed to it heard it
      await recordedEvent(witness, 'presence', of(gone.userId));
      const k = await srv.connect({ token: kept.token });
      await recordedEvent(watcher, 'presence', of(kept.userId));
      assert.deepEqual(watcher.all('presence').map((p) => p.userId), [kept.userId], 'nothing of the unsubscribed user');
      g.close();
      k.close();
    } finally {
      watcher.close();
      witness.close();
    }
  });

  it('subscriptions end with the socket: a new socket of the same user hears nothing until it subscribes', async () => {
    const subject = srv.identity();
    const watcherId = srv.identity();
    const first = await srv.connect({ token: watcherId.token });
    await subscribe(first, [subject.userId]);
    first.close();
    const second = await srv.connect({ token: watcherId.token });
    const witness = await srv.connect({ token: srv.identity().token });
    try {
      await subscribe(witness, [subject.userId]);
      const s = await srv.connect({ token: subject.token });
      await recordedEvent(witness, 'presence', of(subject.userId));
      assert.deepEqual(second.all('presence'), []);
      s.close();
    } finally {
      second.close();
      witness.close();
    }
  });

  const BAD = [
    ['not an object', 'u1'],
    ['an array', ['u1']],
    ['null', null],
    ['userIds missing', {}],
    ['userIds not an array', { userIds: 'u1,u2' }],
    ['userIds empty', { userIds: [] }],
    ['over 1,000 ids', { userIds: Array.from({ length: 1001 }, (_, i) => `u${i}`) }],
    ['a number among them', { userIds: ['u1', 42] }],
    ['an object among them', { userIds: [{ id: 'u1' }] }],
    ['an empty id', { userIds: [''] }],
    ['a control character', { userIds: ['a\nb'] }],
    ['an id too long', { userIds: ['x'.repeat(257)] }],
  ];

  for (const event of ['presence_subscribe', 'presence_unsubscribe']) {
    it(`${event}: bad input -> invalid_payload, through the callback or the error event; the socket stays up`, async () => {
      const c = await srv.connect({ token: srv.identity().token });
      try {
        for (const [what, payload] of BAD) {
          const r = await c.emitAck(event, payload);
          assert.equal(r?.ok, false, `${what}: ${JSON.stringify(r)}`);
          assert.equal(r.error.code, 'invalid_payload', `${what}: ${JSON.stringify(r)}`);
          assert.equal(typeof r.error.message, 'string');
        }
        const none = await c.emitAck(event);
        assert.equal(none?.error?.code, 'invalid_payload', JSON.stringify(none));
        c.emit(event, { userIds: [] });
        const e = await c.waitFor('error');
        assert.deepEqual({ event: e.event, code: e.code }, { event, code: 'invalid_payload' });
        assert.equal(c.connected, true);
        assert.deepEqual(await c.emitAck('activity'), { ok: true });
      } finally {
        c.close();
      }
    });
  }

  it('over presence.max_subscriptions (5 here) in all: invalid_payload, and nothing of that call is watched', async () => {
    const ids = Array.from({ length: 4 }, () => srv.identity());
    const extra = Array.from({ length: 2 }, () => srv.identity());
    const c = await srv.connect({ token: srv.identity().token });
    try {
      await subscribe(c, ids.map((i) => i.userId));
      // repeats of watched users do not count again: 4 + 1 new = 5
      await subscribe(c, [ids[0].userId, ids[0].userId]);
      const r = await c.emitAck('presence_subscribe', { userIds: [ids[1].userId, ...extra.map((i) => i.userId)] });
      assert.equal(r?.error?.code, 'invalid_payload', JSON.stringify(r));
      assert.match(r.error.message, /at most 5/);
      const e0 = await srv.connect({ token: extra[0].token });
      const w = await srv.connect({ token: ids[1].token });
      await recordedEvent(c, 'presence', of(ids[1].userId));
      assert.deepEqual(c.all('presence').map((p) => p.userId), [ids[1].userId], 'the refused call watched nobody');
      // after unsubscribing one, there is room for one more
      assert.deepEqual(await c.emitAck('presence_unsubscribe', { userIds: [ids[2].userId] }), { ok: true });
      await subscribe(c, [extra[1].userId]);
      e0.close();
      w.close();
    } finally {
      c.close();
    }
  });

  it('the new names are reserved for the event API', async () => {
    for (const event of ['presence', 'presence_batch', 'presence_subscribe', 'presence_unsubscribe']) {
      for (const path of ['/api/v1/events', `/api/v1/roles/${rid('r')}/events`, `/api/v1/users/${rid('u')}/events`]) {
        const r = await srv.api('POST', path, { event, data: { userIds: ['x'] } });
        assert.equal(r.status, 400, `${event} ${path}: ${r.status} ${r.text}`);
      }
    }
  });
});

describe('presence events count against the per-socket event budget', () => {
  let srv;
  before(async () => {
    srv = await startServer({ HERALD_RATE_LIMIT_PER_SECOND: '1', HERALD_RATE_LIMIT_BURST: '3' });
  });
  after(async () => {
    await srv?.stop();
  });

  it('past the burst: rate_limited, nothing watched, the socket stays up', async () => {
    const c = await srv.connect({ token: srv.identity().token });
    try {
      const late = srv.identity();
      const answers = [];
      for (let i = 0; i < 3; i += 1) answers.push(await c.emitAck('presence_subscribe', { userIds: [rid('u')] }));
      assert.deepEqual(answers.map((a) => a.ok), [true, true, true]);
      const limited = await c.emitAck('presence_subscribe', { userIds: [late.userId] });
      assert.equal(limited?.error?.code, 'rate_limited', JSON.stringify(limited));
      const unsub = await c.emitAck('presence_unsubscribe', { userIds: [late.userId] });
      assert.equal(unsub?.error?.code, 'rate_limited', JSON.stringify(unsub));
      assert.equal(c.connected, true);
      // the budget refills at its pace, and the same call is answered
      await eventually(async () => {
        const r = await c.emitAck('presence_subscribe', { userIds: [late.userId] });
        assert.equal(r.ok, true, JSON.stringify(r));
        return true;
      }, 5000, 400);
    } finally {
      c.close();
    }
  });
});

describe('presence.audience = "role": presence_batch once per window', () => {
  const WINDOW_MS = 2000;
  let srv;
  before(async () => {
    srv = await startServer({
      HERALD_PRESENCE_AUDIENCE: 'role',
      HERALD_PRESENCE_BATCH_WINDOW: `${WINDOW_MS}ms`,
      HERALD_PRESENCE_GRACE: `${GRACE_MS}ms`,
    });
  });
  after(async () => {
    await srv?.stop();
  });

  it('each changed user once, in their latest status; a flap inside the window is left out; other roles hear nothing', async () => {
    const role = rid('role');
    const watcher = await srv.connect({ token: srv.identity({ role }).token });
    const other = await srv.connect({ token: srv.identity({ role: rid('other') }).token });
    try {
      // the watcher's own coming online opened a window: once its batch is out, no window is open
      const own = await watcher.waitFor('presence_batch', WINDOW_MS + 3000);
      assert.deepEqual(Object.keys(own), ['changes']);
      const flapper = srv.identity({ role });
      const stayer = srv.identity({ role });
      // one window: the flapper comes online and goes offline (after the grace), the stayer comes online
      const opened = Date.now();
      const f = await srv.connect({ token: flapper.token });
      const s = await srv.connect({ token: stayer.token });
      f.close();
      await eventually(async () => {
        const p = await srv.api('GET', `/api/v1/presence?userIds=${flapper.userId}`);
        assert.equal(p.body.presence[0].status, 'offline', p.text);
        return true;
      }, WINDOW_MS);
      const batch = await watcher.waitFor('presence_batch', WINDOW_MS + 3000);
      assert.ok(Date.now() - opened < 2 * WINDOW_MS, 'the changes of one window came in one batch');
      assert.deepEqual(batch.changes.map((c) => [c.userId, c.status]), [[stayer.userId, 'online']],
        `the flapper ended the window as last told (offline): ${JSON.stringify(batch)}`);
      assert.deepEqual(Object.keys(batch.changes[0]).sort(), ['at', 'status', 'userId']);
      assert.match(batch.changes[0].at, TS_RE);

      // the next window: the stayer goes offline
      s.close();
      const next = await watcher.waitFor('presence_batch', GRACE_MS + WINDOW_MS + 3000);
      assert.deepEqual(next.changes.map((c) => [c.userId, c.status]), [[stayer.userId, 'offline']]);
      assert.deepEqual(watcher.all('presence'), [], 'no per-change presence events to the role');
      // the other role heard only its own socket's window
      for (const b of other.all('presence_batch')) {
        for (const c of b.changes) assert.ok(![flapper.userId, stayer.userId].includes(c.userId), JSON.stringify(b));
      }
    } finally {
      watcher.close();
      other.close();
    }
  });
});
