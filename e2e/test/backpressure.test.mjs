// Covers bursts of live notifications: deliveredTo matches what arrives, nothing is lost, and a session expiry right after a burst still disconnects.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid, eventually } from '../helpers.mjs';

/** POST `n` notifications to a user with `workers` concurrent requests; returns the API answers. */
async function burst(srv, userId, n, workers = 16) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < n) {
        const i = next++;
        const r = await srv.notify(userId, { id: `burst-${userId}-${i}`, seq: i, pad: 'p'.repeat(300) });
        assert.equal(r.status, 202, r.text);
        out[i] = r.body;
      }
    }),
  );
  return out;
}

describe('bursts of live notifications', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  for (const transports of [['polling'], ['websocket']]) {
    it(`300 concurrent notifications (${transports}): every deliveredTo:1 arrives, the rest is caught up later, nothing lost`, async () => {
      const id = srv.identity();
      const c = await srv.connect({ token: id.token, transports });
      const answers = await burst(srv, id.userId, 300);
      const live = answers.filter((a) => a.deliveredTo === 1).map((a) => a.notification.id);
      const notLive = answers.filter((a) => a.deliveredTo !== 1).map((a) => a.notification.id);
      for (const a of answers) assert.ok(a.deliveredTo === 0 || a.deliveredTo === 1, JSON.stringify(a.deliveredTo));
      try {
        const got = await c.waitForN('critical_notification', live.length, 20_000);
        const gotIds = new Set(got.map((n) => n.id));
        assert.equal(gotIds.size, got.length, 'no duplicates');
        for (const x of live) assert.ok(gotIds.has(x), `deliveredTo:1 but never arrived: ${x}`);
        assert.equal(c.connected, true, 'socket survives the burst');
      } finally {
        c.close();
      }
      // whatever was not handed over live is still pending and comes on the next connection
      const d = await srv.connect({ token: id.token, transports });
      try {
        const all = await d.waitForN('critical_notification', 300, 20_000);
        assert.deepEqual(new Set(all.map((n) => n.id)).size, 300);
        for (const n of all) assert.strictEqual(n.redelivered, true);
        if (notLive.length) {
          const st = await srv.api('GET', `/api/v1/users/${id.userId}/notifications/${notLive[0]}`);
          assert.ok(['pending', 'delivered'].includes(st.body.state), st.text);
        }
      } finally {
        d.close();
      }
    });
  }

  it('session-expired right after a burst still delivers session_expired and disconnects (polling)', async () => {
    const id = srv.identity();
    const c = await srv.connect({ token: id.token, transports: ['polling'] });
    try {
      const answers = await burst(srv, id.userId, 200, 32);
      const r = await srv.api('POST', `/api/v1/users/${id.userId}/session-expired`, { sessionId: id.sessionId });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 1);
      await c.waitFor('session_expired', 15_000);
      assert.equal(await c.waitFor('disconnect', 10_000), 'io server disconnect');
      const live = answers.filter((a) => a.deliveredTo === 1).length;
      const got = c.all('critical_notification').length;
      assert.ok(got >= live, `arrived ${got} < deliveredTo:1 count ${live}`);
      await eventually(async () => (await srv.api('GET', `/api/v1/users/${id.userId}`)).body.connections === 0, 3000);
    } finally {
      c.close();
    }
  });

  it('DELETE connections right after a burst disconnects every socket (websocket + polling)', async () => {
    const id = srv.identity();
    const a = await srv.connect({ token: id.token, transports: ['polling'] });
    const b = await srv.connect({ token: id.token, transports: ['websocket'] });
    try {
      await burst(srv, id.userId, 200, 32);
      const r = await srv.api('DELETE', `/api/v1/users/${id.userId}/connections`);
      assert.equal(r.status, 200);
      assert.equal(r.body.disconnected, 2);
      assert.equal(await a.waitFor('disconnect', 15_000), 'io server disconnect');
      assert.equal(await b.waitFor('disconnect', 15_000), 'io server disconnect');
    } finally {
      a.close();
      b.close();
    }
  });

  it('notifications created during a catch-up: each arrives exactly once, stored ones oldest first', async () => {
    const id = srv.identity();
    const stored = (await burst(srv, id.userId, 150, 1)).map((a) => a.notification.id);
    const c = srv.open({ token: id.token, transports: ['websocket'] });
    try {
      await c.ready();
      const extra = [];
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = 0; i < 10; i++) {
            const r = await srv.notify(id.userId, { id: `during-${id.userId}-${w}-${i}` });
            extra.push(r.body.notification.id);
          }
        }),
      );
      const got = await c.waitForN('critical_notification', 150 + 80, 20_000);
      const ids = got.map((n) => n.id);
      assert.equal(new Set(ids).size, ids.length, 'no duplicates');
      assert.deepEqual(ids.filter((x) => stored.includes(x)), stored, 'stored ones oldest first');
      for (const x of extra) assert.ok(ids.includes(x), `missing ${x}`);
      assert.deepEqual(await c.none('critical_notification', 500), []);
    } finally {
      c.close();
    }
  });

  for (const transports of [['polling'], ['websocket']]) {
    it(`notifications near the 1 MB limit arrive live and in catch-up (${transports})`, async () => {
      const id = srv.identity();
      const big = (i) => ({ id: `big-${id.userId}-${i}`, blob: String(i).repeat(900_000) });
      for (let i = 0; i < 3; i++) assert.equal((await srv.notify(id.userId, big(i))).status, 202);
      const c = await srv.connect({ token: id.token, transports });
      try {
        const got = await c.waitForN('critical_notification', 3, 20_000);
        assert.deepEqual(got.map((n) => n.id), [0, 1, 2].map((i) => big(i).id));
        for (const [i, n] of got.entries()) assert.equal(n.blob.length, 900_000, `catch-up ${i}`);
        const r = await srv.notify(id.userId, big(3));
        assert.equal(r.body.deliveredTo, 1);
        const live = await c.waitFor('critical_notification', 10_000);
        assert.equal(live.blob, big(3).blob);
        assert.equal(c.connected, true);
      } finally {
        c.close();
      }
    });
  }
});

