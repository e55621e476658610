// Failover as users live it (docs/cluster.md, Failover), at CI size: three nodes on Redis and PostgreSQL behind
// nginx with the docs' configuration, a few hundred socket.io-client sockets with the client's own reconnection.
// A node killed with SIGKILL: its sockets come back on the survivors, each unacknowledged notification is
// caught up once and no acknowledged one again, and the other sockets never notice. Every node restarted in
// turn under a steady notification load: nothing accepted is lost, nothing is delivered again to a socket
// after its acknowledgement was answered. The benchmark of the same at ten thousand sockets is
// bench/failover.mjs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rid, sleep } from '../helpers.mjs';
import { startCluster } from '../cluster.mjs';
import { NO_NGINX, startNginx } from '../nginx.mjs';
import { ackOnReceipt, connects, count, openFleet, redeliveredAfterAck, steadyLoad, until } from '../failover.mjs';

// Short reconnection delays keep the test quick; the benchmark uses the client's defaults.
const RECONNECT = { reconnectionDelay: 100, reconnectionDelayMax: 500 };

/** POST one notification to each member, `parallel` calls at a time; their ids by member index. */
async function notifyEach(edge, members, title, parallel = 16) {
  const ids = new Map();
  for (let k = 0; k < members.length; k += parallel) {
    await Promise.all(
      members.slice(k, k + parallel).map(async (m) => {
        const id = rid(`n${m.i}`);
        const r = await edge.notify(m.userId, { id, title, severity: 'critical' });
        assert.equal(r.status, 202, r.text);
        ids.set(m.i, id);
      }),
    );
  }
  return ids;
}

describe('failover through nginx', { skip: NO_NGINX }, () => {
  let cl;
  let nginx;
  before(async () => {
    cl = await startCluster({ nodes: 3, env: { HERALD_CLUSTER_NODE_TIMEOUT: '3s' } });
    nginx = await startNginx(cl, { workerConnections: 2048 });
  });
  after(async () => {
    await nginx?.stop();
    await cl?.stop();
  });

  it('a killed node: its sockets reconnect on the survivors and are caught up once; the others never notice', async () => {
    const edge = nginx.edge;
    const fleet = await openFleet(edge, cl, { count: 240, ioOpts: RECONNECT });
    try {
      // where each socket is, as the cluster answers it
      const nodeOf = new Map();
      for (const m of fleet) {
        const r = await edge.api('GET', `/api/v1/users/${m.userId}/sessions`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.sessions.length, 1, r.text);
        nodeOf.set(m.i, r.body.sessions[0].node);
      }
      const perNode = {};
      for (const n of nodeOf.values()) perNode[n] = (perNode[n] ?? 0) + 1;
      const victimId = Object.entries(perNode).sort((a, b) => b[1] - a[1])[0][0];
      const victim = cl.nodes.find((n) => n.nodeId === victimId);
      assert.ok(victim, `a node holds sockets: ${JSON.stringify(perNode)}`);
      const victims = fleet.filter((m) => nodeOf.get(m.i) === victimId);
      const bystanders = fleet.filter((m) => nodeOf.get(m.i) !== victimId);
      assert.ok(bystanders.length > 0, `nginx spread the sockets: ${JSON.stringify(perNode)}`);

      // one notification each; every other member acknowledges it
      const first = await notifyEach(edge, fleet, 'before the failover');
      assert.ok(await until(() => fleet.every((m) => count(m, 'critical_notification', first.get(m.i)) === 1), 10_000));
      const acked = new Set();
      await Promise.all(
        fleet
          .filter((m) => m.i % 2 === 0)
          .map(async (m) => {
            const a = await m.c.emitAck('acknowledge_notification', { notificationId: first.get(m.i) }, 10_000);
            assert.equal(a.ok, true, JSON.stringify(a));
            acked.add(m.i);
          }),
      );

      const killedAt = Date.now();
      await cl.kill9(victim);
      const back = await until(
        () =>
          victims.every(
            (m) => connects(m) >= 2 && (acked.has(m.i) || count(m, 'critical_notification', first.get(m.i)) >= 2),
          ),
        30_000,
      );
      const late = victims.filter((m) => connects(m) < 2).map((m) => m.c.summary().slice(-4));
      assert.ok(back, `every socket of the killed node reconnected and was caught up; not yet: ${JSON.stringify(late.slice(0, 3))}`);
      console.log(`failover: ${victims.length} sockets of ${victimId} back and caught up in ${Date.now() - killedAt} ms`);

      // a fresh notification to everyone arrives exactly once: the positive signal that anything due has come
      const second = await notifyEach(edge, fleet, 'after the failover');
      assert.ok(await until(() => fleet.every((m) => count(m, 'critical_notification', second.get(m.i)) >= 1), 10_000));
      await sleep(300);
      for (const m of fleet) {
        const label = `${victims.includes(m) ? 'moved' : 'bystander'} socket ${m.i}`;
        assert.equal(count(m, 'critical_notification', second.get(m.i)), 1, `${label}: the fresh notification once`);
        const expected = victims.includes(m) && !acked.has(m.i) ? 2 : 1;
        assert.equal(
          count(m, 'critical_notification', first.get(m.i)),
          expected,
          `${label} (${acked.has(m.i) ? 'acknowledged' : 'unacknowledged'}): the first notification ${expected} time(s)`,
        );
        assert.equal(connects(m), victims.includes(m) ? 2 : 1, `${label}: connects`);
      }
      // the survivors no longer count the dead node's sockets twice: one connection per moved user
      for (const m of victims.slice(0, 5)) await cl.waitCount(m.userId, 1, 10_000, cl.live());
    } finally {
      fleet.forEach((m) => m.c.close());
    }
  });

  it('every node restarted in turn under load: nothing accepted is lost, nothing is delivered again after its acknowledgement', async () => {
    for (const n of cl.nodes) if (!n.running) await cl.restart(n);
    await cl.converged();
    const edge = nginx.edge;
    const fleet = await openFleet(edge, cl, { count: 120, ioOpts: RECONNECT });
    ackOnReceipt(fleet);
    const load = steadyLoad(edge, fleet, 40, { title: 'during a rolling restart' });
    try {
      await sleep(1000);
      for (const node of cl.nodes) {
        load.phase = `restart ${node.nodeId}`;
        await cl.restart(node);
        await sleep(1000);
      }
      load.phase = 'after';
      await sleep(1000);
    } finally {
      await load.stop();
    }
    try {
      assert.ok(load.sent.length > 100, `the load ran: ${load.sent.length} accepted, ${load.failed} refused`);
      const arrived = (s) => s.m.c.events.some((e) => e.event === 'critical_notification' && e.args[0]?.id === s.id);
      const all = await until(() => load.sent.every(arrived), 30_000);
      const lost = load.sent.filter((s) => !arrived(s));
      const story = (s) => ({ user: s.m.userId, id: s.id, phase: s.phase, sentAt: s.at, connected: s.m.c.connected, events: s.m.c.events.map((e) => [e.event, e.at - s.at, e.args[0]?.id ?? e.args[0]?.message ?? (typeof e.args[0] === 'string' ? e.args[0] : undefined)]).filter((e) => e[0] !== 'presence').slice(-12) });
      assert.ok(all, `${lost.length} of ${load.sent.length} accepted notifications never arrived: ${JSON.stringify(lost.slice(0, 1).map(story))}${nginx.errorLog()}`);
      // A few acknowledgements lose their answer to a closing socket (the acknowledgement may still have
      // been stored); every one that was answered holds: its notification never comes to that socket again.
      const answered = load.sent.filter((s) => s.m.acked.has(s.id)).length;
      assert.ok(answered > load.sent.length / 2, `${answered} of ${load.sent.length} acknowledgements answered`);
      assert.deepEqual(redeliveredAfterAck(fleet), []);
      const moved = fleet.filter((m) => connects(m) > 1).length;
      assert.ok(moved > 0, 'the restarts moved sockets');
      console.log(`rolling restart: ${load.sent.length} accepted (${load.failed} refused while a node stopped: ${JSON.stringify(load.refused)}), ${moved} of ${fleet.length} sockets reconnected at least once`);
    } finally {
      fleet.forEach((m) => m.c.close());
    }
  });
});
