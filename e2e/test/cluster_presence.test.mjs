// Cluster mode, presence: GET /api/v1/presence, subscriptions (`presence` to subscribers, the default
// audience) and the batched wide audiences (`presence_batch`) across nodes, with HERALD_PRESENCE_GRACE=1s and
// each HERALD_PRESENCE_AUDIENCE (subscribers, role, all, none).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rid, sleep, TS_RE, eventually } from '../helpers.mjs';
import { startCluster, waitRecorded } from '../cluster.mjs';

const GRACE_MS = 1000;
const SLACK_MS = 3000;

const of = (userId) => (p) => p?.userId === userId;
/** The `presence` payloads a client recorded for one user, in arrival order. */
const presenceOf = (client, userId) => client.all('presence').filter(of(userId));
/** The changes of one user in the `presence_batch` frames a client recorded, in arrival order. */
const batchedOf = (client, userId) => client.all('presence_batch').flatMap((b) => b.changes).filter(of(userId));

async function subscribe(client, userIds) {
  const r = await client.emitAck('presence_subscribe', { userIds });
  assert.equal(r?.ok, true, JSON.stringify(r));
  return r.presence;
}

/**
 * A positive signal for "nothing (more) came": the backend sends a role event after the fact; once the
 * client has it, anything sent before it on the same path has had its chance.
 */
async function marker(node, client, role) {
  const tag = rid('marker');
  const r = await node.api('POST', `/api/v1/roles/${encodeURIComponent(role)}/events`, { event: 'e2e_marker', data: tag });
  assert.equal(r.status, 202, r.text);
  await waitRecorded(client, 'e2e_marker', (d) => d === tag, 5000);
  await sleep(200);
}

describe('presence, audience "subscribers" (the default), grace 1s', () => {
  let cl;
  before(async () => {
    cl = await startCluster({ nodes: 3, env: { HERALD_PRESENCE_GRACE: '1s' } });
  });
  after(async () => {
    await cl?.stop();
  });

  it('GET /presence: 1 to 1000 ids; never-seen users are offline with since null; empty or over 1000 -> 400', async () => {
    const p = rid('p');
    const ids = Array.from({ length: 1000 }, (_, i) => `${p}.${i}`);
    const r = await cl.b.api('GET', `/api/v1/presence?userIds=${ids.join(',')}`);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.body.presence.length, 1000);
    assert.deepEqual(new Set(r.body.presence.map((x) => x.userId)), new Set(ids));
    for (const x of r.body.presence) {
      assert.deepEqual([x.status, x.since, x.connections], ['offline', null, 0], JSON.stringify(x));
    }

    const one = await cl.a.api('GET', `/api/v1/presence?userIds=${encodeURIComponent(rid('nobody'))}`);
    assert.equal(one.status, 200, one.text);
    assert.equal(one.body.presence.length, 1);

    for (const q of ['', '?userIds=', `?userIds=${[...ids, `${p}.x`].join(',')}`]) {
      const bad = await cl.c.api('GET', `/api/v1/presence${q}`);
      assert.equal(bad.status, 400, `${q.slice(0, 40)} -> ${bad.status} ${bad.text.slice(0, 200)}`);
      assert.equal(typeof bad.body?.error?.code, 'string', bad.text.slice(0, 200));
    }
    assert.equal((await cl.a.api('GET', '/api/v1/presence?userIds=x', undefined, { key: null })).status, 401);
  });

  it('online when the first socket connects anywhere, offline after the last one left and the grace passed; only subscribers hear it, on any node', async () => {
    const role = rid('role');
    const watcher = await cl.a.connect({ token: cl.token({ userId: rid('w'), sessionId: rid('s'), role }) });
    // same role, not subscribed: hears nothing (the old role audience is no longer the default)
    const stranger = await cl.c.connect({ token: cl.token({ userId: rid('x'), sessionId: rid('s'), role }) });
    const subject = rid('subject');
    assert.deepEqual(await subscribe(watcher, [subject]), [{ userId: subject, status: 'offline', since: null, connections: 0 }]);
    const token = cl.token({ userId: subject, sessionId: rid('s'), role });
    const onB = await cl.b.connect({ token });
    const on = await waitRecorded(watcher, 'presence', of(subject), 5000);
    assert.deepEqual(Object.keys(on).sort(), ['at', 'status', 'userId']);
    assert.equal(on.status, 'online');
    assert.match(on.at, TS_RE);

    for (const node of cl.nodes) {
      const p = await node.api('GET', `/api/v1/presence?userIds=${subject}`);
      assert.equal(p.status, 200, p.text);
      assert.equal(p.body.presence[0].status, 'online', `${node.nodeId}: ${p.text}`);
      assert.equal(p.body.presence[0].connections, 1, `${node.nodeId}: ${p.text}`);
      assert.match(p.body.presence[0].since, TS_RE);
      assert.ok(Math.abs(Date.parse(p.body.presence[0].since) - Date.parse(on.at)) < 1000, `since ${p.body.presence[0].since} vs at ${on.at}`);
    }

    // a second socket on c, then the first one leaves: still online, nothing sent
    const onC = await cl.c.connect({ token, transports: ['websocket'] });
    await cl.waitCount(subject, 2);
    onB.close();
    await cl.waitCount(subject, 1);
    await sleep(GRACE_MS + 1500); // past the grace, and past a periodic sweep that would send a wrong offline
    await marker(cl.b, watcher, role);
    assert.deepEqual(presenceOf(watcher, subject).map((p) => p.status), ['online'], 'no second online, no offline while a socket remains');

    // the last one leaves: offline once the grace has passed
    const leftAt = Date.now();
    onC.close();
    const off = await waitRecorded(watcher, 'presence', (p) => of(subject)(p) && p.status === 'offline', GRACE_MS + SLACK_MS);
    const took = Date.now() - leftAt;
    assert.ok(took >= GRACE_MS - 150, `offline after ${took}ms, before the ${GRACE_MS}ms grace`);
    assert.match(off.at, TS_RE);
    const p = await cl.b.api('GET', `/api/v1/presence?userIds=${subject}`);
    assert.equal(p.body.presence[0].status, 'offline', p.text);
    assert.equal(p.body.presence[0].connections, 0, p.text);
    assert.ok(Math.abs(Date.parse(p.body.presence[0].since) - Date.parse(off.at)) < 1000, p.text);
    assert.ok(Date.parse(p.body.presence[0].since) >= Date.parse(on.at), p.text);

    // the socket that did not subscribe heard none of it
    await marker(cl.a, stranger, role);
    assert.deepEqual(presenceOf(stranger, subject), [], 'a socket that did not subscribe gets no presence of this user');
    assert.deepEqual(stranger.all('presence_batch'), []);
    await sleep(300);
    assert.deepEqual(presenceOf(watcher, subject).map((p) => p.status), ['online', 'offline'], 'each once');
    watcher.close();
    stranger.close();
  });

  it('a subscription on one node answers the presence counted on every node; unsubscribing there stops the events', async () => {
    const subject = rid('subject');
    const token = cl.token({ userId: subject, sessionId: rid('s'), role: rid('role') });
    const onA = await cl.a.connect({ token });
    const onC = await cl.c.connect({ token, transports: ['polling'] });
    await cl.waitCount(subject, 2);
    const watcher = await cl.b.connect({ token: cl.token({ userId: rid('w'), sessionId: rid('s'), role: rid('role') }) });
    const witness = await cl.c.connect({ token: cl.token({ userId: rid('w'), sessionId: rid('s'), role: rid('role') }) });
    const [p] = await subscribe(watcher, [subject]);
    assert.deepEqual([p.userId, p.status, p.connections], [subject, 'online', 2]);
    assert.match(p.since, TS_RE);
    await subscribe(witness, [subject]);
    assert.deepEqual(await watcher.emitAck('presence_unsubscribe', { userIds: [subject] }), { ok: true });
    onA.close();
    onC.close();
    await waitRecorded(witness, 'presence', (x) => of(subject)(x) && x.status === 'offline', GRACE_MS + SLACK_MS);
    await sleep(200);
    assert.deepEqual(presenceOf(watcher, subject), [], 'unsubscribed on node b: nothing');
    watcher.close();
    witness.close();
  });

  it('a page reload (reconnect within the grace, on another node) sends nothing', async () => {
    const role = rid('role');
    const watcher = await cl.c.connect({ token: cl.token({ userId: rid('w'), sessionId: rid('s'), role }) });
    const subject = rid('subject');
    await subscribe(watcher, [subject]);
    const token = cl.token({ userId: subject, sessionId: rid('s'), role });
    const first = await cl.a.connect({ token });
    await waitRecorded(watcher, 'presence', of(subject), 5000);
    first.close();
    const second = await cl.b.connect({ token, transports: ['websocket'] });
    await sleep(GRACE_MS + 1500);
    await marker(cl.a, watcher, role);
    assert.deepEqual(presenceOf(watcher, subject).map((p) => p.status), ['online'], 'the reload was not seen');
    const p = await cl.a.api('GET', `/api/v1/presence?userIds=${subject}`);
    assert.equal(p.body.presence[0].status, 'online', p.text);
    second.close();
    await waitRecorded(watcher, 'presence', (x) => of(subject)(x) && x.status === 'offline', GRACE_MS + SLACK_MS);
    assert.deepEqual(presenceOf(watcher, subject).map((x) => x.status), ['online', 'offline']);
    watcher.close();
  });

  it('`presence`, `presence_batch`, `presence_subscribe`, `presence_unsubscribe` are reserved event names for the event API', async () => {
    for (const event of ['presence', 'presence_batch', 'presence_subscribe', 'presence_unsubscribe']) {
      for (const path of ['/api/v1/events', `/api/v1/roles/${rid('r')}/events`, `/api/v1/users/${rid('u')}/events`]) {
        const r = await cl.a.api('POST', path, { event, data: { userId: 'x', status: 'online' } });
        assert.equal(r.status, 400, `${event} ${path}: ${r.status} ${r.text}`);
        assert.equal(r.body.error.code, 'invalid_request', r.text);
      }
    }
  });
});

describe('presence, HERALD_PRESENCE_AUDIENCE=role: presence_batch per window, across nodes', () => {
  const WINDOW_MS = 500;
  let cl;
  before(async () => {
    cl = await startCluster({
      nodes: 2,
      env: { HERALD_PRESENCE_GRACE: '1s', HERALD_PRESENCE_AUDIENCE: 'role', HERALD_PRESENCE_BATCH_WINDOW: `${WINDOW_MS}ms` },
    });
  });
  after(async () => {
    await cl?.stop();
  });

  it('the sockets of the role, on every node, get the change of a user on another node in a batch; another role does not', async () => {
    const role = rid('role');
    const otherRole = rid('other');
    const onA = await cl.a.connect({ token: cl.token({ userId: rid('w1'), sessionId: rid('s'), role }) });
    const onB = await cl.b.connect({ token: cl.token({ userId: rid('w2'), sessionId: rid('s'), role }), transports: ['polling'] });
    const stranger = await cl.a.connect({ token: cl.token({ userId: rid('x'), sessionId: rid('s'), role: otherRole }) });
    const subject = rid('subject');
    const s = await cl.b.connect({ token: cl.token({ userId: subject, sessionId: rid('s'), role }) });
    for (const w of [onA, onB]) {
      const b = await waitRecorded(w, 'presence_batch', (x) => x.changes.some(of(subject)), WINDOW_MS + SLACK_MS);
      const c = b.changes.find(of(subject));
      assert.equal(c.status, 'online');
      assert.match(c.at, TS_RE);
      assert.equal(b.changes.filter(of(subject)).length, 1, 'each user once in a batch');
    }
    s.close();
    for (const w of [onA, onB]) {
      await waitRecorded(w, 'presence_batch', (x) => x.changes.some((c) => of(subject)(c) && c.status === 'offline'), GRACE_MS + WINDOW_MS + SLACK_MS);
    }
    await marker(cl.b, stranger, otherRole);
    assert.deepEqual(batchedOf(stranger, subject), [], 'another role hears nothing of this user');
    for (const w of [onA, onB]) {
      assert.deepEqual(batchedOf(w, subject).map((c) => c.status), ['online', 'offline']);
      assert.deepEqual(presenceOf(w, subject), [], 'the role audience gets batches, not per-change events');
    }
    onA.close();
    onB.close();
    stranger.close();
  });
});

describe('presence, HERALD_PRESENCE_AUDIENCE=all', () => {
  let cl;
  before(async () => {
    cl = await startCluster({ nodes: 2, env: { HERALD_PRESENCE_GRACE: '1s', HERALD_PRESENCE_AUDIENCE: 'all' } });
  });
  after(async () => {
    await cl?.stop();
  });

  it('every socket hears it in a presence_batch, whatever its role and node', async () => {
    const a = await cl.a.connect({ token: cl.token({ userId: rid('w1'), sessionId: rid('s'), role: rid('role-1') }) });
    const b = await cl.b.connect({ token: cl.token({ userId: rid('w2'), sessionId: rid('s'), role: rid('role-2') }), transports: ['polling'] });
    const subject = rid('subject');
    const s = await cl.b.connect({ token: cl.token({ userId: subject, sessionId: rid('s'), role: rid('role-3') }) });
    for (const w of [a, b]) await waitRecorded(w, 'presence_batch', (x) => x.changes.some(of(subject)), 1000 + SLACK_MS);
    s.close();
    for (const w of [a, b]) {
      await waitRecorded(w, 'presence_batch', (x) => x.changes.some((c) => of(subject)(c) && c.status === 'offline'), GRACE_MS + 1000 + SLACK_MS);
    }
    for (const w of [a, b]) assert.deepEqual(batchedOf(w, subject).map((p) => p.status), ['online', 'offline']);
    a.close();
    b.close();
  });
});

describe('presence, HERALD_PRESENCE_AUDIENCE=none', () => {
  let cl;
  before(async () => {
    cl = await startCluster({ nodes: 2, env: { HERALD_PRESENCE_GRACE: '1s', HERALD_PRESENCE_AUDIENCE: 'none' } });
  });
  after(async () => {
    await cl?.stop();
  });

  it('nobody hears it; GET /presence still answers', async () => {
    const role = rid('role');
    const w = await cl.a.connect({ token: cl.token({ userId: rid('w'), sessionId: rid('s'), role }) });
    const subject = rid('subject');
    const s = await cl.b.connect({ token: cl.token({ userId: subject, sessionId: rid('s'), role }) });
    await cl.waitCount(subject, 1);
    const p = await cl.a.api('GET', `/api/v1/presence?userIds=${subject}`);
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.presence[0].status, 'online', p.text);
    await marker(cl.b, w, role);
    s.close();
    // the positive signal that the offline change happened: GET /presence says so
    await eventually(async () => {
      const q = await cl.b.api('GET', `/api/v1/presence?userIds=${subject}`);
      assert.equal(q.body.presence[0].status, 'offline', q.text);
      return true;
    }, GRACE_MS + SLACK_MS);
    await marker(cl.b, w, role);
    assert.deepEqual(w.all('presence'), [], 'audience none: no presence event at all');
    assert.deepEqual(w.all('presence_batch'), []);
    const r = await w.emitAck('presence_subscribe', { userIds: [subject] });
    assert.equal(r?.error?.code, 'forbidden', JSON.stringify(r));
    assert.equal(w.connected, true);
    w.close();
  });
});
