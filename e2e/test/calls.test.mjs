// Calls (contract section 14, WebRTC signalling), with the real socket.io-client: call_invite to a user and to a
// study room, call_incoming with ICE servers and TURN REST credentials, call_answer, webrtc_signal only between
// the call's joined sockets (a stranger and a ringing socket get `forbidden`), the 64 KiB limit, call_end and a
// participant's disconnect (call_ended), a call nobody answers ending at `webrtc.ring_timeout`, hostile input
// with the connection kept; on one node and across two nodes of a cluster. The real browser call is in
// calls_browser.test.mjs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startServer, rid, recordSecret, nowSec } from '../helpers.mjs';
import { startCluster, waitRecorded } from '../cluster.mjs';

const TURN_SECRET = `turn-${rid('s')}-secret`;
const ICE = [{ urls: 'stun:stun.example.org:3478' }, { urls: ['turn:turn.example.org:3478'] }];
const sid = (c) => c.connectedPayload.socketId;

/** Checks the ICE servers handed to `userId`: the TURN server's credentials follow the TURN REST convention. */
function checkIce(ice, userId) {
  assert.deepEqual(ice[0], { urls: ['stun:stun.example.org:3478'] });
  const turn = ice[1];
  assert.deepEqual(turn.urls, ['turn:turn.example.org:3478']);
  const [expiry, user] = turn.username.split(':');
  assert.equal(user, userId);
  const ttl = Number(expiry) - nowSec();
  assert.ok(ttl > 590 && ttl <= 601, `expires in about 10 minutes, not ${ttl} s`);
  assert.equal(turn.credential, createHmac('sha1', TURN_SECRET).update(turn.username).digest('base64'));
}

async function ok(client, event, data) {
  const r = await client.emitAck(event, data);
  assert.equal(r?.ok, true, `${event}: ${JSON.stringify(r)}`);
  return r;
}

async function refused(client, event, data, code) {
  const r = await client.emitAck(event, data);
  assert.equal(r?.ok, false, `${event} should be refused: ${JSON.stringify(r)}`);
  assert.equal(r.error.code, code, JSON.stringify(r));
  return r;
}

/** A whole call between `caller` and `callee` (any nodes): invite, ring, accept, offer/answer/candidate both ways. */
async function placeCall(caller, callerId, callee, calleeId) {
  const inv = await ok(caller, 'call_invite', { to: { userId: calleeId }, media: ['audio', 'video'] });
  assert.deepEqual(Object.keys(inv).sort(), ['callId', 'iceServers', 'ok']);
  checkIce(inv.iceServers, callerId);
  const ring = await callee.waitFor('call_incoming');
  assert.deepEqual(Object.keys(ring).sort(), ['callId', 'from', 'iceServers', 'media']);
  assert.equal(ring.callId, inv.callId);
  assert.deepEqual(ring.from, { userId: callerId, socketId: sid(caller) });
  assert.deepEqual(ring.media, ['audio', 'video']);
  checkIce(ring.iceServers, calleeId);

  assert.deepEqual(await ok(callee, 'call_answer', { callId: inv.callId, accept: true }), {
    ok: true, callId: inv.callId, accept: true,
  });
  const answered = await caller.waitFor('call_answer');
  assert.deepEqual(answered, { callId: inv.callId, from: { userId: calleeId, socketId: sid(callee) }, accept: true });

  const offer = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' };
  await ok(caller, 'webrtc_signal', { callId: inv.callId, to: sid(callee), type: 'offer', payload: offer });
  assert.deepEqual(await callee.waitFor('webrtc_signal'), {
    callId: inv.callId, from: { userId: callerId, socketId: sid(caller) }, type: 'offer', payload: offer,
  });
  const cand = { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 };
  await ok(callee, 'webrtc_signal', { callId: inv.callId, to: sid(caller), type: 'candidate', payload: cand });
  const back = await caller.waitFor('webrtc_signal');
  assert.deepEqual([back.type, back.payload, back.from.socketId], ['candidate', cand, sid(callee)]);

  // A burst of candidates arrives in the order it was sent (a browser cannot add a candidate before the
  // description it belongs to).
  const burst = Array.from({ length: 20 }, (_, i) => ({ ...cand, sdpMLineIndex: i }));
  const acks = burst.map((payload) => caller.emitAck('webrtc_signal', { callId: inv.callId, to: sid(callee), type: 'candidate', payload }));
  assert.ok((await Promise.all(acks)).every((r) => r.ok));
  const heard = await callee.waitForN('webrtc_signal', burst.length);
  assert.deepEqual(heard.map((m) => m.payload.sdpMLineIndex), burst.map((c) => c.sdpMLineIndex));
  return inv.callId;
}

describe('calls on one node', () => {
  let srv;
  before(async () => {
    recordSecret('jwt_secret', TURN_SECRET);
    srv = await startServer({
      HERALD_WEBRTC_ICE_SERVERS: JSON.stringify(ICE),
      HERALD_WEBRTC_TURN_SECRET: TURN_SECRET,
      HERALD_WEBRTC_TURN_TTL: '10m',
    });
  });
  after(async () => {
    await srv?.stop();
  });

  it('invite, ring, accept, signals both ways, and call_end reaches both sides', async () => {
    const ann = srv.identity();
    const ben = srv.identity();
    const a = await srv.connect({ token: ann.token });
    const b = await srv.connect({ token: ben.token, transports: ['polling'] });
    const callId = await placeCall(a, ann.userId, b, ben.userId);
    assert.deepEqual(await ok(b, 'call_end', { callId }), { ok: true, callId });
    for (const c of [a, b]) {
      assert.deepEqual(await c.waitFor('call_ended'), { callId, by: ben.userId, reason: 'ended' });
    }
    // Over: no more signals, no second end.
    await refused(a, 'webrtc_signal', { callId, to: sid(b), type: 'offer', payload: {} }, 'forbidden');
    await refused(a, 'call_end', { callId }, 'not_found');
  });

  it('only the call\'s joined sockets exchange signals; a stranger and a ringing tab get forbidden', async () => {
    const ann = srv.identity();
    const ben = srv.identity();
    const eve = srv.identity();
    const a = await srv.connect({ token: ann.token });
    const b1 = await srv.connect({ token: ben.token });
    const b2 = await srv.connect({ token: ben.token });
    const e = await srv.connect({ token: eve.token });
    const inv = await ok(a, 'call_invite', { to: { userId: ben.userId }, media: ['audio'] });
    // Both of ben's tabs ring; one accepts.
    assert.equal((await b1.waitFor('call_incoming')).callId, inv.callId);
    assert.equal((await b2.waitFor('call_incoming')).callId, inv.callId);
    await ok(b1, 'call_answer', { callId: inv.callId, accept: true });
    await a.waitFor('call_answer');

    // A stranger who learnt the call id and the sockets: forbidden, and nothing reaches them.
    await refused(e, 'webrtc_signal', { callId: inv.callId, to: sid(a), type: 'offer', payload: { sdp: 'x' } }, 'forbidden');
    await refused(e, 'call_answer', { callId: inv.callId, accept: true }, 'not_found');
    await refused(e, 'call_end', { callId: inv.callId }, 'not_found');
    // The tab still ringing is not a participant either, and a participant cannot signal a stranger.
    await refused(b2, 'webrtc_signal', { callId: inv.callId, to: sid(a), type: 'offer', payload: {} }, 'forbidden');
    await refused(a, 'webrtc_signal', { callId: inv.callId, to: sid(e), type: 'offer', payload: {} }, 'forbidden');
    await refused(a, 'webrtc_signal', { callId: inv.callId, to: sid(b2), type: 'offer', payload: {} }, 'forbidden');
    assert.equal((await a.none('webrtc_signal')).length, 0);
    assert.equal((await e.none('webrtc_signal', 50)).length, 0);
    assert.equal((await b2.none('webrtc_signal', 50)).length, 0);

    // 64 KiB of payload passes, one byte more does not; the connection stays up.
    const room = 64 * 1024 - JSON.stringify({ sdp: '' }).length;
    await ok(a, 'webrtc_signal', { callId: inv.callId, to: sid(b1), type: 'offer', payload: { sdp: 'x'.repeat(room) } });
    assert.equal((await b1.waitFor('webrtc_signal')).payload.sdp.length, room);
    const big = await refused(a, 'webrtc_signal', {
      callId: inv.callId, to: sid(b1), type: 'offer', payload: { sdp: 'x'.repeat(room + 1) },
    }, 'invalid_payload');
    assert.match(big.error.message, /65536/);
    assert.ok(a.connected);

    // The caller's disconnect ends the call for everyone in it, the ringing tab included.
    a.close();
    for (const c of [b1, b2]) {
      assert.deepEqual(await c.waitFor('call_ended'), { callId: inv.callId, by: ann.userId, reason: 'disconnected' });
    }
    assert.equal((await e.none('call_ended', 50)).length, 0);
  });

  it('a decline is heard by the caller; a room call rings the room but not the caller\'s user', async () => {
    const room = `study:${rid('call')}`.replace(/[^A-Za-z0-9._:-]/g, '.');
    const ann = srv.identity({ rooms: ['study:*'] });
    const ben = srv.identity({ rooms: ['study:*'] });
    const cat = srv.identity({ rooms: ['study:*'] });
    const out = srv.identity({ rooms: ['study:*'] });
    const a1 = await srv.connect({ token: ann.token });
    const a2 = await srv.connect({ token: ann.token });
    const b = await srv.connect({ token: ben.token });
    const c = await srv.connect({ token: cat.token });
    const o = await srv.connect({ token: out.token });
    for (const s of [a1, a2, b, c]) await ok(s, 'join_room', { room });

    await refused(o, 'call_invite', { to: { room }, media: ['audio'] }, 'forbidden');
    const inv = await ok(a1, 'call_invite', { to: { room }, media: ['audio'] });
    for (const s of [b, c]) assert.equal((await s.waitFor('call_incoming')).callId, inv.callId);
    assert.equal((await a2.none('call_incoming')).length, 0, 'not the caller\'s own other tab');
    assert.equal((await o.none('call_incoming', 50)).length, 0, 'not outside the room');

    await ok(c, 'call_answer', { callId: inv.callId, accept: false });
    assert.deepEqual(await a1.waitFor('call_answer'), {
      callId: inv.callId, from: { userId: cat.userId, socketId: sid(c) }, accept: false,
    });
    await refused(c, 'webrtc_signal', { callId: inv.callId, to: sid(a1), type: 'offer', payload: {} }, 'forbidden');
    await ok(b, 'call_answer', { callId: inv.callId, accept: true });
    await refused(b, 'call_answer', { callId: inv.callId, accept: true }, 'invalid_payload');
    assert.equal((await a1.waitFor('call_answer')).accept, true);
    await ok(a1, 'call_end', { callId: inv.callId });
    assert.equal((await b.waitFor('call_ended')).reason, 'ended');
    assert.equal((await c.none('call_ended', 100)).length, 0, 'who declined is out of the call');
  });

  it('refuses bad input with clear codes and keeps the connection', async () => {
    const ann = srv.identity();
    const a = await srv.connect({ token: ann.token });
    const bad = [
      ['call_invite', { to: { userId: ann.userId }, media: ['audio'] }, 'invalid_payload'],
      ['call_invite', { to: { userId: 'nobody-here' }, media: ['audio'] }, 'not_found'],
      ['call_invite', { to: { userId: 'x' }, media: ['screen'] }, 'invalid_payload'],
      ['call_invite', { to: { userId: 'x', room: 'y' }, media: ['audio'] }, 'invalid_payload'],
      ['call_invite', 'x', 'invalid_payload'],
      ['call_answer', { callId: 'no-such-call', accept: true }, 'not_found'],
      ['call_answer', { callId: 'c', accept: 1 }, 'invalid_payload'],
      ['webrtc_signal', { callId: 'c', to: 's', type: 'bye', payload: {} }, 'invalid_payload'],
      ['webrtc_signal', { callId: 'c', to: 's', type: 'offer', payload: {} }, 'forbidden'],
      ['webrtc_signal', { callId: 'c/../d', to: 's', type: 'offer', payload: {} }, 'invalid_payload'],
      ['call_end', {}, 'invalid_payload'],
    ];
    for (const [event, data, code] of bad) await refused(a, event, data, code);
    // Without a callback, the refusal is an `error` event naming the call event.
    a.emit('webrtc_signal', { callId: 'c', to: 's', type: 'offer', payload: {} });
    assert.deepEqual(await a.waitFor('error'), {
      event: 'webrtc_signal', code: 'forbidden', message: 'this socket is not a participant of this call',
    });
    assert.ok(a.connected);
  });
});

describe('a call nobody answers ends at webrtc.ring_timeout', () => {
  let srv;
  before(async () => {
    srv = await startServer({ HERALD_WEBRTC_RING_TIMEOUT: '1s' });
  });
  after(async () => {
    await srv?.stop();
  });

  it('rings out for the caller and every ringing tab with reason timeout; an accepted call goes on', async () => {
    const ann = srv.identity();
    const ben = srv.identity();
    const cat = srv.identity();
    const a = await srv.connect({ token: ann.token });
    const b1 = await srv.connect({ token: ben.token });
    const b2 = await srv.connect({ token: ben.token, transports: ['polling'] });
    const c = await srv.connect({ token: cat.token });
    const started = Date.now();
    const inv = await ok(a, 'call_invite', { to: { userId: ben.userId }, media: ['audio'] });
    for (const b of [b1, b2]) assert.equal((await b.waitFor('call_incoming')).callId, inv.callId);
    const ended = { callId: inv.callId, by: ann.userId, reason: 'timeout' };
    for (const s of [a, b1, b2]) assert.deepEqual(await s.waitFor('call_ended', 5000), ended);
    const rang = Date.now() - started;
    assert.ok(rang >= 900, `rang ${rang} ms, not the configured second`);
    await refused(b1, 'call_answer', { callId: inv.callId, accept: true }, 'not_found');

    // Accepted in time: the call outlives the timeout. A second call, placed after and never answered, rings
    // out later: once its call_ended arrives, the first call's deadline has long passed.
    const kept = await ok(a, 'call_invite', { to: { userId: ben.userId }, media: ['audio'] });
    await b1.waitFor('call_incoming');
    await ok(b1, 'call_answer', { callId: kept.callId, accept: true });
    await a.waitFor('call_answer');
    const unanswered = await ok(a, 'call_invite', { to: { userId: cat.userId }, media: ['audio'] });
    await c.waitFor('call_incoming');
    assert.equal((await a.waitFor('call_ended', 5000)).callId, unanswered.callId, 'the accepted call did not end');
    assert.equal((await c.waitFor('call_ended')).reason, 'timeout');
    await ok(a, 'webrtc_signal', { callId: kept.callId, to: sid(b1), type: 'offer', payload: { sdp: 'v=0' } });
    assert.equal((await b1.waitFor('webrtc_signal')).payload.sdp, 'v=0');
    await ok(b1, 'call_end', { callId: kept.callId });
    assert.deepEqual(await a.waitFor('call_ended'), { callId: kept.callId, by: ben.userId, reason: 'ended' });
  });
});

describe('calls across two nodes of a cluster', () => {
  let cl;
  before(async () => {
    recordSecret('jwt_secret', TURN_SECRET);
    cl = await startCluster({
      nodes: 2,
      env: {
        HERALD_WEBRTC_ICE_SERVERS: JSON.stringify(ICE),
        HERALD_WEBRTC_TURN_SECRET: TURN_SECRET,
        HERALD_WEBRTC_TURN_TTL: '10m',
      },
    });
  });
  after(async () => {
    await cl?.stop();
  });

  it('a call between sockets on two nodes: ring, answer, signals, a stranger refused, disconnect ends it', async () => {
    const ann = cl.identity();
    const ben = cl.identity();
    const eve = cl.identity();
    const a = await cl.a.connect({ token: ann.token });
    const b = await cl.b.connect({ token: ben.token });
    const e = await cl.b.connect({ token: eve.token });
    const callId = await placeCall(a, ann.userId, b, ben.userId);

    await refused(e, 'webrtc_signal', { callId, to: sid(a), type: 'offer', payload: {} }, 'forbidden');
    await refused(a, 'webrtc_signal', { callId, to: sid(e), type: 'offer', payload: {} }, 'forbidden');
    assert.equal((await e.none('webrtc_signal')).length, 0);

    b.close();
    assert.deepEqual(await waitRecorded(a, 'call_ended', () => true, 5000), { callId, by: ben.userId, reason: 'disconnected' });
    await refused(a, 'webrtc_signal', { callId, to: sid(b), type: 'offer', payload: {} }, 'forbidden');
  });

  it('call_end on one node reaches the other', async () => {
    const ann = cl.identity();
    const ben = cl.identity();
    const a = await cl.b.connect({ token: ann.token });
    const b = await cl.a.connect({ token: ben.token });
    const callId = await placeCall(a, ann.userId, b, ben.userId);
    await ok(a, 'call_end', { callId });
    assert.deepEqual(await b.waitFor('call_ended'), { callId, by: ann.userId, reason: 'ended' });
  });

  it('a node killed mid-call: its sockets\' part is gone, the survivor\'s signals are refused and it ends the call', async () => {
    const ann = cl.identity();
    const ben = cl.identity();
    const a = await cl.a.connect({ token: ann.token });
    const b = await cl.b.connect({ token: ben.token });
    const callId = await placeCall(a, ann.userId, b, ben.userId);
    await cl.kill9(cl.b);
    // No call_ended comes from a dead node; the caller's signals to its socket find no joined socket.
    await refused(a, 'webrtc_signal', { callId, to: sid(b), type: 'candidate', payload: {} }, 'forbidden');
    assert.deepEqual(await ok(a, 'call_end', { callId }), { ok: true, callId });
    assert.deepEqual(await a.waitFor('call_ended'), { callId, by: ann.userId, reason: 'ended' });
  });
});
