// Faults that count: kill -9 under load (three times), a full disk, a PostgreSQL crash under cluster load. Every
// notification that got a 202 must be stored and reach its user; the counts go to the log for the CI record.
// (A Redis stop with local delivery going on is cluster_redis.test.mjs.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { keepLog, startServer, rid, sleep, eventually } from '../helpers.mjs';
import { smallDisk } from '../disk.mjs';
import { startCluster, startPrivatePostgres, waitReady } from '../cluster.mjs';

/**
 * Notifications from `workers` concurrent loops, round robin over `users` and `nodes`, until stop(). Every 202
 * is recorded per user; a request cut by the fault (no answer) or answered 503 is only counted.
 */
function load(nodes, users, prefix, { workers = 4, text = '' } = {}) {
  const accepted = new Map(users.map((u) => [u.userId, []]));
  const counts = { accepted: 0, unavailable: 0, cut: 0, other: [] };
  const refused = [];
  let stopped = false;
  let seq = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (!stopped) {
      const n = seq++;
      const u = users[n % users.length];
      // each user's notifications go through every node in turn
      const node = nodes[(n + Math.floor(n / users.length)) % nodes.length];
      const id = `${prefix}-${n}`;
      try {
        const r = await node.notify(u.userId, { id, seq: n, title: `fault load ${prefix} ${n}`, text });
        if (r.status === 202) {
          accepted.get(u.userId).push(id);
          counts.accepted++;
        } else if (r.status === 503) {
          counts.unavailable++;
          refused.push(id);
        } else counts.other.push(`${r.status} ${r.text.slice(0, 200)}`);
      } catch {
        counts.cut++;
        await sleep(20);
      }
    }
  });
  return {
    accepted,
    counts,
    refused,
    /** Resolves once `n` more notifications were accepted than when called. */
    async acceptedMore(n, ms = 30_000) {
      const target = counts.accepted + n;
      await eventually(() => counts.accepted >= target, ms, 20);
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/**
 * For each user: every accepted id is in the store (GET list), and a new connection's catch-up delivers every
 * stored one. Returns { accepted, stored, delivered, lost } summed over users.
 */
async function verifyDelivered(node, users, accepted) {
  const sum = { accepted: 0, stored: 0, delivered: 0, lost: [] };
  for (const u of users) {
    const want = accepted.get(u.userId);
    const r = await node.api('GET', `/api/v1/users/${encodeURIComponent(u.userId)}/notifications?state=unacknowledged`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.nextAfter, null, 'one page holds them all');
    const stored = new Set(r.body.notifications.map((n) => n.notification.id));
    const c = await node.connect({ token: u.token, transports: ['websocket'] });
    // a request cut by the fault may have been stored without its 202 reaching us: catch-up brings all stored
    const got = await c.waitForN('critical_notification', stored.size, 20_000);
    c.close();
    const delivered = new Set(got.map((n) => n.id));
    sum.accepted += want.length;
    sum.stored += want.filter((id) => stored.has(id)).length;
    sum.delivered += want.filter((id) => delivered.has(id)).length;
    sum.lost.push(...want.filter((id) => !stored.has(id) || !delivered.has(id)));
  }
  return sum;
}

describe('kill -9 in the middle of a notification load, three times', () => {
  let srv;
  after(async () => {
    await srv?.stop();
  });

  it('every notification that got a 202 is stored and reaches its user after each restart', async () => {
    srv = await startServer();
    const users = Array.from({ length: 10 }, () => srv.identity());
    const accepted = new Map(users.map((u) => [u.userId, []]));
    for (let round = 1; round <= 3; round++) {
      const l = load([srv], users, rid(`kill${round}`));
      // kill at a different depth each round, with the workers' requests in flight
      await l.acceptedMore(40 + 30 * round);
      await srv.kill();
      await l.stop();
      await srv.start();
      for (const [u, ids] of l.accepted) accepted.get(u).push(...ids);
      assert.deepEqual(l.counts.other, []);
      console.log(`faults: kill -9 round ${round}: ${l.counts.accepted} accepted (202), ${l.counts.cut} requests cut by the kill`);
    }
    const sum = await verifyDelivered(srv, users, accepted);
    console.log(
      `faults: kill -9 x3: ${sum.accepted} notifications got a 202, ${sum.stored} stored after restart, ` +
        `${sum.delivered} delivered to their users, lost ${sum.lost.length}`,
    );
    assert.ok(sum.accepted >= 40 + 70 + 100, `the load ran (${sum.accepted} accepted)`);
    assert.deepEqual(sum.lost, []);
  });
});

describe('a full disk under the data directory', () => {
  let srv;
  let disk;
  before(() => {
    disk = smallDisk('2m');
    if (disk.skip) console.log(`faults: full-disk test skipped: ${disk.skip}`);
  });
  after(async () => {
    await srv?.stop({ keepData: true });
    disk.remove();
  });

  it('503s and never a 202 for something not stored; it recovers without a restart once space is freed', async (t) => {
    if (disk.skip) return t.skip(disk.skip);
    srv = await startServer({}, { dataDir: disk.dir });
    const user = srv.identity();
    const c = await srv.connect({ token: user.token, transports: ['websocket'] });
    // 4 KiB of text a notification, so that the database's free pages run out within a few dozen; the disk
    // fills while the load runs, so some requests meet the moment it runs out
    const l = load([srv], [user], rid('full'), { workers: 2, text: 'x'.repeat(4096) });
    await l.acceptedMore(10);
    const filler = disk.fill();
    await eventually(() => l.counts.unavailable >= 20, 30_000, 20);
    await l.stop();
    // /readyz probes a write: 503 while none commits (a probe answers for a moment, so wait for a fresh one)
    const readyz = () => fetch(`${srv.url}/readyz`).then(async (r) => ({ status: r.status, body: await r.json() }));
    let full;
    await eventually(async () => (full = await readyz()).status === 503, 10_000, 100);
    assert.deepEqual(full.body, { status: 'unavailable', store: 'unavailable' });
    console.log(`faults: full disk: ${l.counts.accepted} accepted while space lasted, ${l.counts.unavailable} answered 503, /readyz ${full.status}`);
    assert.deepEqual(l.counts.other, [], 'only 202 or 503');
    assert.equal(l.counts.cut, 0, 'every request was answered');
    const accepted = [...l.accepted.get(user.userId)];
    for (const id of accepted) {
      const r = await srv.api('GET', `/api/v1/users/${user.userId}/notifications/${id}`);
      assert.equal(r.status, 200, `${id} got a 202 but is not stored: ${r.text}`);
    }
    // a notification refused with 503 was not handed to the user's socket either
    const live = new Set(c.all('critical_notification').map((n) => n.id));
    assert.deepEqual(l.refused.filter((id) => live.has(id)), []);

    // free the space: the same process is ready again and takes notifications
    unlinkSync(filler);
    let ready;
    await eventually(async () => (ready = await readyz()).status === 200, 20_000, 100);
    assert.equal(ready.body.store, 'ok');
    console.log('faults: full disk: /readyz 200 again after the filler was removed, no restart');
    let recovered;
    await eventually(async () => {
      const r = await srv.notify(user.userId, { id: rid('after-full'), title: 'after the disk was freed' });
      if (r.status === 202) recovered = r.body.notification.id;
      return r.status === 202;
    }, 20_000, 200);
    await eventually(() => c.all('critical_notification').some((n) => n.id === recovered), 5000);
    accepted.push(recovered);
    c.close();

    // and everything that got a 202 survives a kill -9 on that disk
    await srv.kill();
    await srv.start();
    const sum = await verifyDelivered(srv, [user], new Map([[user.userId, accepted]]));
    console.log(`faults: full disk: ${sum.accepted} accepted, ${sum.stored} stored after kill -9, ${sum.delivered} delivered, lost ${sum.lost.length}`);
    assert.deepEqual(sum.lost, []);
  });
});

describe('a full disk where the logs go', () => {
  let srv;
  let disk;
  before(() => {
    disk = smallDisk('1m');
    if (disk.skip) console.log(`faults: full-log-disk test skipped: ${disk.skip}`);
  });
  after(async () => {
    await srv?.stop();
    keepLog('herald', join(disk.dir, 'herald.log'));
    disk.remove();
  });

  it('answers every request as it would have, and counts the log lines it could not write', async (t) => {
    if (disk.skip) return t.skip(disk.skip);
    // `herald serve >herald.log 2>&1` with the log on its own full disk; at debug every request writes a line
    // (the probes and /metrics too), and a refused connection writes a warning
    const log = join(disk.dir, 'herald.log');
    srv = await startServer({ HERALD_LOG: 'info,herald=debug' }, { logTo: log });
    const user = srv.identity();
    const c = await srv.connect({ token: user.token, transports: ['websocket'] });
    assert.ok(statSync(log).size > 0, 'the server logs to the file');
    const filler = disk.fill();
    // the log file's last page still has room: fill it with lines, until ten more requests add nothing
    let full;
    do {
      full = statSync(log).size;
      for (let i = 0; i < 10; i++) assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
    } while (statSync(log).size !== full);

    // every kind of request, each answered as on an empty disk
    const healthz = await fetch(`${srv.url}/healthz`);
    assert.equal(healthz.status, 200);
    const readyz = await fetch(`${srv.url}/readyz`);
    assert.deepEqual([readyz.status, await readyz.json()], [200, { status: 'ready', store: 'ok' }]);
    const id = rid('logfull');
    const sent = await srv.notify(user.userId, { id, title: 'sent while the log disk is full' });
    assert.equal(sent.status, 202, sent.text);
    const got = await c.waitFor('critical_notification', 5000);
    assert.equal(got.id, id);
    const ack = await c.emitAck('acknowledge_notification', { notificationId: id, userId: user.userId });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    const wrongKey = await srv.api('GET', `/api/v1/users/${user.userId}/notifications`, undefined, { key: 'not-a-key-0123456789' });
    assert.equal(wrongKey.status, 401);
    const forged = srv.token({ userId: user.userId, sessionId: rid('s'), role: 'radiologist' }, { secret: 'not-the-secret' });
    assert.equal(await srv.connectError({ token: forged }), 'Invalid authentication token');
    const listed = await srv.api('GET', `/api/v1/users/${user.userId}/notifications/${id}`);
    assert.equal(listed.status, 200, listed.text);
    assert.ok(listed.body.acknowledgedAt, listed.text);

    // the lines were dropped, not half-written, and counted
    assert.equal(statSync(log).size, full, 'nothing reached the full disk');
    const metrics = await srv.api('GET', '/metrics', undefined, { key: null });
    assert.equal(metrics.status, 200);
    const dropped = Number(/^herald_log_lines_dropped_total (\d+)$/m.exec(metrics.text)?.[1]);
    assert.ok(dropped >= 5, `dropped lines counted: ${dropped}`);
    console.log(`faults: full log disk: every request answered, ${dropped} log lines dropped and counted`);

    // space back: the next lines are written again, no restart
    unlinkSync(filler);
    await fetch(`${srv.url}/readyz`);
    await eventually(() => statSync(log).size > full, 5000, 50);
    c.close();
  });
});

describe('PostgreSQL crash and restart under cluster load', () => {
  let pg;
  let cluster;
  before(async () => {
    pg = await startPrivatePostgres();
    if (pg.skip) console.log(`faults: PostgreSQL restart test skipped: ${pg.skip}`);
  });
  after(async () => {
    await cluster?.stop();
    if (!pg?.skip) await pg?.remove();
  });

  it('no notification that got a 202 is lost, and writes resume without restarting a node', async (t) => {
    if (pg.skip) return t.skip(pg.skip);
    cluster = await startCluster({ nodes: 2, db: { url: pg.url, drop() {} } });
    const users = Array.from({ length: 8 }, () => cluster.identity());
    const l = load(cluster.nodes, users, rid('pg'));
    await l.acceptedMore(60);
    await pg.stop('immediate');
    // positive signal that the outage was seen: writes are refused (or cut) while the database is down
    await eventually(() => l.counts.unavailable + l.counts.cut > 0, 30_000, 20);
    const during = l.counts.accepted;
    await pg.start();
    await l.acceptedMore(60, 60_000);
    await l.stop();
    console.log(
      `faults: PostgreSQL crash: ${l.counts.accepted} accepted (${during} before the database came back), ` +
        `${l.counts.unavailable} answered 503, ${l.counts.cut} unanswered`,
    );
    assert.deepEqual(l.counts.other, []);
    for (const n of cluster.nodes) await waitReady(n);
    const sum = await verifyDelivered(cluster.b, users, l.accepted);
    console.log(`faults: PostgreSQL crash: ${sum.accepted} got a 202, ${sum.stored} stored, ${sum.delivered} delivered, lost ${sum.lost.length}`);
    assert.deepEqual(sum.lost, []);
  });
});
