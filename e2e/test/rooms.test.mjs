// Study rooms (contract section 14), with the real socket.io-client: join_room / leave_room by the token's
// `rooms` patterns or a backend grant (and its revocation), room_presence once per window (tab-aware, and
// O(members) frames for a burst of joins), typing (relayed, throttled, cleared after 5 s, on leave and on
// disconnect), GET /rooms/{room}, POST /rooms/{room}/events, hostile input; on one node and across two
// nodes of a cluster.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid, sleep, TS_RE, eventually } from '../helpers.mjs';
import { startCluster, waitRecorded } from '../cluster.mjs';

const WINDOW_MS = 100;

const enc = encodeURIComponent;
const ids = (members) => members.map((m) => m.userId);
const inRoom = (room) => (p) => p?.room === room;

async function join(client, room) {
  const r = await client.emitAck('join_room', { room });
  assert.equal(r?.ok, true, JSON.stringify(r));
  return r;
}

/** The latest room_presence `client` heard for `room` whose members satisfy `pred`. */
async function presenceWhere(client, room, pred, ms = 5000) {
  return eventually(() => {
    const frames = client.all('room_presence').filter(inRoom(room));
    const last = frames.at(-1);
    return last && pred(last.members) ? last : false;
  }, ms, 20);
}

describe('study rooms on one node', () => {
  let srv;
  before(async () => {
    srv = await startServer({ HERALD_ROOMS_PRESENCE_WINDOW: `${WINDOW_MS}ms` });
  });
  after(async () => {
    await srv?.stop();
  });

  it('joins by the token\'s patterns or a grant; two tabs are one member; leaving one tab keeps the user in', async () => {
    const room = `study:${rid('1.2.840')}`.replace(/[^A-Za-z0-9._:-]/g, '.');
    const ann = srv.identity({ rooms: ['study:*'] });
    const bob = srv.identity({ rooms: ['*'] });
    const cat = srv.identity();
    const a1 = await srv.connect({ token: ann.token });
    const a2 = await srv.connect({ token: ann.token, transports: ['polling'] });
    const b = await srv.connect({ token: bob.token });
    const c = await srv.connect({ token: cat.token });

    const first = await join(a1, room);
    assert.deepEqual(Object.keys(first).sort(), ['members', 'ok', 'room']);
    assert.equal(first.room, room);
    assert.deepEqual(ids(first.members), [ann.userId]);
    assert.deepEqual(Object.keys(first.members[0]).sort(), ['connections', 'since', 'userId']);
    assert.match(first.members[0].since, TS_RE);
    assert.equal(first.members[0].connections, 1);

    // No pattern, no grant: forbidden, and nothing changed.
    const refused = await c.emitAck('join_room', { room });
    assert.equal(refused.ok, false);
    assert.equal(refused.error.code, 'forbidden');

    // A grant (durable) opens it; granting again is not new.
    const put = await srv.api('PUT', `/api/v1/rooms/${enc(room)}/members/${enc(cat.userId)}`);
    assert.equal(put.status, 201, put.text);
    assert.deepEqual(put.body, { room, userId: cat.userId, granted: true });
    assert.equal((await srv.api('PUT', `/api/v1/rooms/${enc(room)}/members/${enc(cat.userId)}`)).status, 200);
    await join(c, room);
    await join(b, room);
    const second = await join(a2, room);
    const ann2 = second.members.find((m) => m.userId === ann.userId);
    assert.equal(ann2.connections, 2, JSON.stringify(second));
    assert.equal(ann2.since, first.members[0].since, 'since the first tab');
    assert.equal(second.members.length, 3);

    // Everyone in the room hears the members once the window closes.
    const seen = await presenceWhere(b, room, (m) => m.length === 3 && m.some((x) => x.connections === 2));
    assert.deepEqual(Object.keys(seen).sort(), ['members', 'room']);
    const get = await srv.api('GET', `/api/v1/rooms/${enc(room)}`);
    assert.equal(get.status, 200, get.text);
    assert.deepEqual(get.body, { room, members: second.members });

    // One tab leaves: still a member, with one connection.
    assert.deepEqual(await a2.emitAck('leave_room', { room }), { ok: true, room });
    await presenceWhere(c, room, (m) => m.find((x) => x.userId === ann.userId)?.connections === 1);
    assert.deepEqual(ids((await srv.api('GET', `/api/v1/rooms/${enc(room)}`)).body.members).sort(), [ann.userId, bob.userId, cat.userId].sort());

    // The revocation takes the user's sockets out of the room; the token has no pattern, so no way back.
    const del = await srv.api('DELETE', `/api/v1/rooms/${enc(room)}/members/${enc(cat.userId)}`);
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(del.body, { room, userId: cat.userId, revoked: true, removedSockets: 1 });
    await presenceWhere(a1, room, (m) => !ids(m).includes(cat.userId));
    assert.equal((await c.emitAck('join_room', { room })).error.code, 'forbidden');
    assert.equal((await c.emitAck('typing', { room, isTyping: true })).error.code, 'forbidden');
    const again = await srv.api('DELETE', `/api/v1/rooms/${enc(room)}/members/${enc(cat.userId)}`);
    assert.deepEqual([again.status, again.body.revoked, again.body.removedSockets], [200, false, 0]);
  });

  it('POST /rooms/{room}/events reaches the room\'s sockets only; reserved names and bad rooms are refused', async () => {
    const room = `board:${rid('b')}`;
    const inside = await srv.connect({ token: srv.identity({ rooms: ['board:*'] }).token });
    const outside = await srv.connect({ token: srv.identity({ rooms: ['board:*'] }).token });
    await join(inside, room);
    const r = await srv.api('POST', `/api/v1/rooms/${enc(room)}/events`, { event: 'case_updated', data: { step: 2 } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(r.body, { deliveredTo: 1 });
    assert.deepEqual(await inside.waitFor('case_updated'), { step: 2 });
    assert.equal((await outside.none('case_updated', 200)).length, 0);
    for (const event of ['typing', 'room_presence', 'join_room', 'critical_notification']) {
      const bad = await srv.api('POST', `/api/v1/rooms/${enc(room)}/events`, { event, data: {} });
      assert.equal(bad.status, 400, `${event}: ${bad.text}`);
    }
    for (const path of ['/api/v1/rooms/a%20b', `/api/v1/rooms/${'x'.repeat(129)}`, '/api/v1/rooms/a%2Fb']) {
      const bad = await srv.api('GET', path);
      assert.equal(bad.status, 400, `${path}: ${bad.text}`);
      assert.equal(bad.body.error.code, 'invalid_room');
    }
    assert.deepEqual((await srv.api('GET', '/api/v1/rooms/study:nobody-here')).body, { room: 'study:nobody-here', members: [] });
    assert.equal((await srv.api('GET', `/api/v1/rooms/${enc(room)}`, undefined, { key: null })).status, 401);
  });

  it('typing reaches the room\'s other users, at most once a second, and stops on its own after 5 s', async () => {
    const room = `study:${rid('t')}`;
    const writer = srv.identity({ rooms: ['study:*'] });
    const w1 = await srv.connect({ token: writer.token });
    const w2 = await srv.connect({ token: writer.token });
    const reader = await srv.connect({ token: srv.identity({ rooms: ['study:*'] }).token });
    const outsider = await srv.connect({ token: srv.identity({ rooms: ['study:*'] }).token });
    await join(w1, room);
    await join(w2, room);
    await join(reader, room);

    for (let i = 0; i < 5; i++) assert.deepEqual(await w1.emitAck('typing', { room, isTyping: true }), { ok: true });
    const t = await reader.waitFor('typing');
    assert.deepEqual(Object.keys(t).sort(), ['at', 'isTyping', 'room', 'userId']);
    assert.deepEqual([t.room, t.userId, t.isTyping], [room, writer.userId, true]);
    assert.match(t.at, TS_RE);
    assert.equal((await reader.none('typing', 300)).length, 0, 'throttled: one a second');
    assert.equal(w2.all('typing').length, 0, 'not to the user\'s own tabs');
    assert.equal(outsider.all('typing').length, 0, 'not outside the room');

    // A stop inside the second is told when the second ends, not lost.
    await w1.emitAck('typing', { room, isTyping: false });
    const stop = await reader.waitFor('typing', 2000);
    assert.equal(stop.isTyping, false);
    assert.ok(Date.parse(stop.at) - Date.parse(t.at) >= 1000, `${t.at} -> ${stop.at}`);

    // A true never refreshed is cleared on the user's behalf after 5 s.
    await sleep(1000);
    await w1.emitAck('typing', { room, isTyping: true });
    const on = await reader.waitFor('typing', 2000);
    assert.equal(on.isTyping, true);
    const off = await reader.waitFor('typing', 7000);
    assert.equal(off.isTyping, false);
    const waited = Date.parse(off.at) - Date.parse(on.at);
    assert.ok(waited >= 5000 && waited < 6000, `cleared after ${waited} ms`);
  });

  it('a leave and a disconnect clear typing on the user\'s behalf', async () => {
    const room = `study:${rid('d')}`;
    const leaver = await srv.connect({ token: srv.identity({ rooms: ['study:*'] }).token });
    const quitter = srv.identity({ rooms: ['study:*'] });
    const q = await srv.connect({ token: quitter.token });
    const reader = await srv.connect({ token: srv.identity({ rooms: ['study:*'] }).token });
    for (const c of [leaver, q, reader]) await join(c, room);
    await leaver.emitAck('typing', { room, isTyping: true });
    assert.equal((await reader.waitFor('typing')).isTyping, true);
    await leaver.emitAck('leave_room', { room });
    assert.equal((await reader.waitFor('typing')).isTyping, false);

    await q.emitAck('typing', { room, isTyping: true });
    assert.equal((await reader.waitFor('typing')).isTyping, true);
    q.close();
    const gone = await reader.waitFor('typing');
    assert.deepEqual([gone.userId, gone.isTyping], [quitter.userId, false]);
    await presenceWhere(reader, room, (m) => !ids(m).includes(quitter.userId));
  });

  it('hostile input: bad names, wrong types, oversized, foreign rooms; a clear error and the connection stays up', async () => {
    const c = await srv.connect({ token: srv.identity({ rooms: ['study:*'] }).token });
    const cases = [
      ['join_room', undefined],
      ['join_room', 'study:1'],
      ['join_room', {}],
      ['join_room', { room: 42 }],
      ['join_room', { room: '' }],
      ['join_room', { room: 'study 1' }],
      ['join_room', { room: 'study/1' }],
      ['join_room', { room: 'x'.repeat(129) }],
      ['join_room', { room: 'y'.repeat(200_000) }],
      ['leave_room', { room: ['study:1'] }],
      ['typing', { room: 'study:1' }],
      ['typing', { room: 'study:1', isTyping: 'yes' }],
      ['typing', { isTyping: true }],
    ];
    for (const [event, data] of cases) {
      const r = await c.emitAck(event, data);
      assert.equal(r.ok, false, `${event} ${JSON.stringify(data)?.slice(0, 80)}`);
      assert.equal(r.error.code, 'invalid_payload', JSON.stringify(r).slice(0, 200));
      assert.equal(typeof r.error.message, 'string');
    }
    // A room the token does not open, and typing in a room not joined: forbidden.
    assert.equal((await c.emitAck('join_room', { room: 'board:1' })).error.code, 'forbidden');
    assert.equal((await c.emitAck('typing', { room: 'study:not-joined', isTyping: true })).error.code, 'forbidden');
    // Without a callback, the refusal is an `error` event naming the event.
    c.emit('join_room', { room: 'board:1' });
    const err = await c.waitFor('error');
    assert.deepEqual([err.event, err.code], ['join_room', 'forbidden']);
    assert.ok(c.connected);
    assert.deepEqual(await c.emitAck('activity'), { ok: true });
  });

  it('a burst of joins costs O(members) room_presence frames, not one per socket per join', async () => {
    const room = `study:${rid('burst')}`;
    const n = 40;
    const clients = await Promise.all(
      Array.from({ length: n }, () => srv.connect({ token: srv.identity({ rooms: ['study:*'] }).token })),
    );
    const started = Date.now();
    await Promise.all(clients.map((c) => join(c, room)));
    const joinedIn = Date.now() - started;
    await Promise.all(clients.map((c) => presenceWhere(c, room, (m) => m.length === n)));
    await sleep(3 * WINDOW_MS);
    const elapsed = Date.now() - started;
    const frames = clients.reduce((sum, c) => sum + c.all('room_presence').filter(inRoom(room)).length, 0);
    // One frame per socket per window at most: n * (windows + 1); a frame per join would be about n * n / 2.
    const bound = n * (Math.ceil(elapsed / WINDOW_MS) + 1);
    console.log(`# ${n} joins in ${joinedIn} ms: ${frames} room_presence frames in ${elapsed} ms (${(frames / n).toFixed(1)} per socket; per-join fan-out would be ${(n * (n + 1)) / 2})`);
    assert.ok(frames <= bound, `${frames} frames > ${bound}`);
    assert.ok(frames < (n * (n + 1)) / 4, `${frames} frames is not O(members)`);
  });
});

describe('study rooms across two nodes of a cluster', () => {
  let cl;
  before(async () => {
    cl = await startCluster({ nodes: 2, env: { HERALD_ROOMS_PRESENCE_WINDOW: `${WINDOW_MS}ms` } });
  });
  after(async () => {
    await cl?.stop();
  });

  it('members, room_presence, typing, room events and revocation span the nodes', async () => {
    const room = `study:${rid('c')}`;
    const ann = cl.identity({ rooms: ['study:*'] });
    const bob = cl.identity();
    const a1 = await cl.a.connect({ token: ann.token });
    const a2 = await cl.b.connect({ token: ann.token });
    const b = await cl.b.connect({ token: bob.token });

    await join(a1, room);
    // A grant made through one node opens the room on the other (the store is shared).
    assert.equal((await cl.a.api('PUT', `/api/v1/rooms/${enc(room)}/members/${enc(bob.userId)}`)).status, 201);
    await join(b, room);
    const last = await join(a2, room);
    assert.deepEqual(
      last.members.map((m) => [m.userId, m.connections]).sort(),
      [[ann.userId, 2], [bob.userId, 1]].sort(),
      'one member with a tab on each node',
    );
    await presenceWhere(a1, room, (m) => m.length === 2 && m.some((x) => x.connections === 2));
    const get = await cl.a.api('GET', `/api/v1/rooms/${enc(room)}`);
    assert.deepEqual(get.body, { room, members: last.members });

    // Typing on node b reaches node a, not the user's own tab on either node.
    await b.emitAck('typing', { room, isTyping: true });
    const t = await a1.waitFor('typing');
    assert.deepEqual([t.userId, t.isTyping], [bob.userId, true]);
    await a1.emitAck('typing', { room, isTyping: true });
    assert.equal((await b.waitFor('typing')).userId, ann.userId);
    await sleep(300);
    assert.deepEqual(a2.all('typing').map((x) => x.userId), [bob.userId], 'not to the user\'s own tab on the other node');

    // A room event through node a reaches the sockets on both nodes.
    const ev = await cl.a.api('POST', `/api/v1/rooms/${enc(room)}/events`, { event: 'study_saved', data: 1 });
    assert.deepEqual([ev.status, ev.body.deliveredTo], [202, 3]);
    for (const c of [a1, a2, b]) assert.equal(await c.waitFor('study_saved'), 1);

    // A disconnect on node b clears bob's typing on node a; a revocation through node a takes bob's socket
    // on node b out of the room.
    const bobAgain = await cl.b.connect({ token: bob.token });
    await join(bobAgain, room);
    b.close();
    const off = await waitRecorded(a1, 'typing', (x) => x.userId === bob.userId && x.isTyping === false, 5000);
    assert.equal(off.room, room);
    const del = await cl.a.api('DELETE', `/api/v1/rooms/${enc(room)}/members/${enc(bob.userId)}`);
    assert.deepEqual([del.status, del.body.revoked, del.body.removedSockets], [200, true, 1]);
    await presenceWhere(a1, room, (m) => !ids(m).includes(bob.userId));
    assert.deepEqual(ids((await cl.b.api('GET', `/api/v1/rooms/${enc(room)}`)).body.members), [ann.userId]);
  });

  it('a burst of joins on both nodes: each socket hears at most one room_presence per window', async () => {
    const room = `study:${rid('cb')}`;
    const n = 20;
    const clients = await Promise.all(
      Array.from({ length: n }, (_, i) => (i % 2 ? cl.a : cl.b).connect({ token: cl.identity({ rooms: ['study:*'] }).token })),
    );
    const started = Date.now();
    await Promise.all(clients.map((c) => join(c, room)));
    await Promise.all(clients.map((c) => presenceWhere(c, room, (m) => m.length === n)));
    await sleep(3 * WINDOW_MS);
    const elapsed = Date.now() - started;
    const per = clients.map((c) => c.all('room_presence').filter(inRoom(room)).length);
    const frames = per.reduce((a, b) => a + b, 0);
    console.log(`# cluster: ${n} joins over 2 nodes: ${frames} room_presence frames in ${elapsed} ms (at most ${Math.max(...per)} per socket)`);
    for (const k of per) assert.ok(k <= Math.ceil(elapsed / WINDOW_MS) + 1, `${k} frames to one socket in ${elapsed} ms`);
    assert.ok(frames < (n * (n + 1)) / 4, `${frames} frames is not O(members)`);
  });

  it('a node that dies takes its sockets out of the room\'s members', async () => {
    const room = `study:${rid('k')}`;
    const here = cl.identity({ rooms: ['study:*'] });
    const there = cl.identity({ rooms: ['study:*'] });
    const h = await cl.a.connect({ token: here.token });
    const t = await cl.b.connect({ token: there.token });
    await join(h, room);
    await join(t, room);
    await presenceWhere(h, room, (m) => m.length === 2);
    await cl.kill9(cl.b);
    const get = await eventually(async () => {
      const r = await cl.a.api('GET', `/api/v1/rooms/${enc(room)}`);
      return r.status === 200 && r.body.members.length === 1 ? r : false;
    }, 20_000, 200);
    assert.deepEqual(ids(get.body.members), [here.userId]);
  });
});
