// Covers durability (notifications and acks survive SIGKILL + restart on the same data dir) and a graceful SIGTERM shutdown.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid } from '../helpers.mjs';

describe('restart after SIGKILL', () => {
  let srv;
  after(async () => {
    await srv?.stop();
  });

  it('unacked notifications to an offline user are all redelivered after restart; acked ones are not', async () => {
    srv = await startServer();
    const a = srv.identity();
    const b = srv.identity();

    // b acknowledges one notification before the crash
    const cb = await srv.connect({ token: b.token });
    const bAcked = (await srv.notify(b.userId, { id: rid('backed'), t: 'b1' })).body.notification.id;
    const bKept = (await srv.notify(b.userId, { id: rid('bkept'), t: 'b2' })).body.notification.id;
    await cb.waitForN('critical_notification', 2);
    const ack = await cb.emitAck('acknowledge_notification', { notificationId: bAcked, userId: b.userId });
    assert.equal(ack.ok, true);
    cb.close();

    const ids = [];
    for (let i = 0; i < 3; i++) {
      const r = await srv.notify(a.userId, { id: rid(`crash${i}`), seq: i, title: `before crash ${i}` });
      assert.equal(r.status, 202);
      assert.equal(r.body.deliveredTo, 0);
      ids.push(r.body.notification.id);
    }
    // SIGKILL right after the last 202: nothing may depend on a graceful shutdown
    await srv.kill();
    await srv.start();

    const ca = await srv.connect({ token: a.token });
    try {
      const got = await ca.waitForN('critical_notification', 3, 5000);
      assert.deepEqual(got.map((n) => n.id), ids);
      assert.deepEqual(got.map((n) => n.title), ['before crash 0', 'before crash 1', 'before crash 2']);
      for (const n of got) assert.strictEqual(n.redelivered, true);
      assert.deepEqual(await ca.none('critical_notification', 300), []);
    } finally {
      ca.close();
    }

    const cb2 = await srv.connect({ token: b.token });
    try {
      const n = await cb2.waitFor('critical_notification');
      assert.equal(n.id, bKept);
      assert.deepEqual(await cb2.none('critical_notification', 300), [], 'acked one not redelivered');
      const g = await srv.api('GET', `/api/v1/users/${b.userId}/notifications/${bAcked}`);
      assert.equal(g.body.state, 'acknowledged');
      assert.equal(g.body.acknowledgedAt, ack.acknowledgedAt);
    } finally {
      cb2.close();
    }
  });

  it('SIGTERM: connected clients are disconnected and the process exits 0 promptly', async () => {
    const t = await startServer();
    try {
      const id = t.identity();
      const a = await t.connect({ token: id.token, transports: ['websocket'] });
      const b = await t.connect({ token: id.token, transports: ['polling'] });
      const exited = new Promise((res) => t.proc.once('exit', (code, sig) => res({ code, sig })));
      const started = Date.now();
      t.proc.kill('SIGTERM');
      const ex = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
      assert.notEqual(ex, 'timeout', 'still running 10 s after SIGTERM');
      assert.deepEqual(ex, { code: 0, sig: null });
      assert.ok(Date.now() - started < 10_000);
      await a.waitFor('disconnect', 3000);
      await b.waitFor('disconnect', 5000);
      a.close();
      b.close();
    } finally {
      await t.stop();
    }
  });
});

