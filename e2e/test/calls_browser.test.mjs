// A real call in a real browser (issue 23): two Chromium pages of Herald's try-it page (which serves
// socket.io-client) with fake camera and microphone place a call through Herald's signalling: call_invite,
// call_incoming, call_answer, then the offer, the answer and the ICE candidates as webrtc_signal. Both
// RTCPeerConnections reach "connected", a message crosses the data channel both ways, and the callee receives
// the caller's fake audio track with packets flowing. A third page, not in the call, cannot inject a signal.
// Media never passes through Herald: the pages reach each other on the loopback interface.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid } from '../helpers.mjs';
import { Browser } from '../browser.mjs';

const MEDIA_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

/** Installs the page's side of a call on `window.herald` and connects it as the holder of `token`. */
async function connectPage(page, url, token) {
  await page.goto(`${url}/try`);
  await page.waitForFunction(() => typeof window.io === 'function');
  return page.evaluate(async (token) => {
    const h = {
      signals: [], errors: [], incoming: [], answers: [], ended: [], dataMessages: [], tracks: [], pc: null, callId: null,
    };
    window.herald = h;
    const socket = window.io({ auth: { token }, transports: ['websocket'], reconnection: false });
    h.socket = socket;
    const ack = (event, data) => socket.timeout(5000).emitWithAck(event, data);
    h.ack = ack;
    h.sent = [];
    h.signal = (to, type, payload) => (h.sent.push(type),
      ack('webrtc_signal', { callId: h.callId, to, type, payload }).then((r) => {
        if (!r.ok) h.signalErrors = [...(h.signalErrors ?? []), r.error.code];
        return r;
      }));

    /** A peer connection with the ICE servers Herald handed, the fake microphone, and the data channel. */
    h.peer = async (iceServers, peerSocket) => {
      const pc = new RTCPeerConnection({ iceServers });
      h.pc = pc;
      pc.onicecandidate = (e) => {
        if (e.candidate) h.signal(peerSocket, 'candidate', e.candidate.toJSON());
      };
      pc.ontrack = (e) => h.tracks.push({ kind: e.track.kind, state: e.track.readyState });
      const wire = (ch) => {
        h.channel = ch;
        ch.onmessage = (e) => h.dataMessages.push(e.data);
      };
      pc.ondatachannel = (e) => wire(e.channel);
      const media = await navigator.mediaDevices.getUserMedia({ audio: true });
      for (const t of media.getTracks()) pc.addTrack(t, media);
      return { pc, wire };
    };

    socket.on('call_incoming', (m) => h.incoming.push(m));
    socket.on('call_answer', (m) => h.answers.push(m));
    socket.on('call_ended', (m) => h.ended.push(m));
    // Signals are handled one after the other, as they arrived: a candidate that comes while the offer is
    // still being applied must wait for it.
    let queue = Promise.resolve();
    socket.on('webrtc_signal', (m) => {
      h.signals.push({ from: m.from, type: m.type });
      queue = queue.then(() => h.apply(m)).catch((e) => h.errors.push(`${m.type}: ${e.message}`));
    });
    h.apply = async (m) => {
      const pc = h.pc;
      if (m.type === 'offer') {
        await pc.setRemoteDescription(m.payload);
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        await h.signal(m.from.socketId, 'answer', { type: answer.type, sdp: answer.sdp });
      } else if (m.type === 'answer') {
        await pc.setRemoteDescription(m.payload);
      } else if (m.type === 'candidate') {
        await pc.addIceCandidate(m.payload);
      }
    };
    const connected = await new Promise((resolve, reject) => {
      socket.once('connected', resolve);
      socket.once('connect_error', (e) => reject(new Error(e.message)));
    });
    return connected;
  }, token);
}

async function mint(server, userId) {
  const r = await server.api('POST', '/try/token', { userId, role: 'radiologist' });
  assert.equal(r.status, 200, r.text);
  return r.body.token;
}

test('calls: two Chromium pages connect a WebRTC call through Herald; a third cannot inject a signal', async () => {
  const server = await startServer({ JWT_SECRET: null });
  const b = await Browser.open('call', { args: MEDIA_ARGS });
  try {
    const [ann, ben, eve] = [rid('ann'), rid('ben'), rid('eve')];
    const caller = b.page;
    const callee = await b.context.newPage();
    const stranger = await b.context.newPage();
    const a = await connectPage(caller, server.url, await mint(server, ann));
    const c = await connectPage(callee, server.url, await mint(server, ben));
    const e = await connectPage(stranger, server.url, await mint(server, eve));

    // The caller places the call; the callee's page rings, accepts and prepares its side.
    const inv = await caller.evaluate(async (ben) => {
      const h = window.herald;
      const r = await h.ack('call_invite', { to: { userId: ben }, media: ['audio'] });
      h.callId = r.callId;
      return r;
    }, ben);
    assert.equal(inv.ok, true, JSON.stringify(inv));
    await callee.waitForFunction(() => window.herald.incoming.length === 1);
    const answered = await callee.evaluate(async () => {
      const h = window.herald;
      const ring = h.incoming[0];
      h.callId = ring.callId;
      await h.peer(ring.iceServers, ring.from.socketId);
      return h.ack('call_answer', { callId: ring.callId, accept: true });
    });
    assert.equal(answered.ok, true, JSON.stringify(answered));

    // On the answer, the caller makes the offer (with a data channel and its fake microphone).
    await caller.waitForFunction(() => window.herald.answers.length === 1);
    await caller.evaluate(async (iceServers) => {
      const h = window.herald;
      const peerSocket = h.answers[0].from.socketId;
      const { pc, wire } = await h.peer(iceServers, peerSocket);
      wire(pc.createDataChannel('consult'));
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      await h.signal(peerSocket, 'offer', { type: offer.type, sdp: offer.sdp });
    }, inv.iceServers);

    const state = (page) => page.evaluate(() => {
      const h = window.herald;
      return { pc: h.pc?.connectionState, ice: h.pc?.iceConnectionState, sig: h.pc?.signalingState, heard: h.signals.map((s) => s.type), errors: h.errors, signalErrors: h.signalErrors };
    });
    for (const page of [caller, callee]) {
      await page.waitForFunction(() => window.herald.pc?.connectionState === 'connected', null, { timeout: 20_000 })
        .catch(async (err) => {
          throw new Error(`${err.message}: caller ${JSON.stringify(await state(caller))}, callee ${JSON.stringify(await state(callee))}`);
        });
      await page.waitForFunction(() => window.herald.channel?.readyState === 'open');
    }
    await caller.evaluate(() => window.herald.channel.send('key image 12 of series 3'));
    await callee.evaluate(() => window.herald.channel.send('seen, thanks'));
    await callee.waitForFunction(() => window.herald.dataMessages.includes('key image 12 of series 3'));
    await caller.waitForFunction(() => window.herald.dataMessages.includes('seen, thanks'));

    // The callee hears the caller's fake microphone: an audio track, and packets arriving on it.
    await callee.waitForFunction(async () => {
      const h = window.herald;
      if (!h.tracks.some((t) => t.kind === 'audio' && t.state === 'live')) return false;
      const stats = await h.pc.getStats();
      return [...stats.values()].some((s) => s.type === 'inbound-rtp' && s.kind === 'audio' && s.packetsReceived > 0);
    }, null, { timeout: 10_000, polling: 200 });

    // Every signal each side heard came from the other, through Herald.
    const heardByCaller = await caller.evaluate(() => window.herald.signals);
    const heardByCallee = await callee.evaluate(() => window.herald.signals);
    assert.ok(heardByCaller.some((s) => s.type === 'answer'));
    assert.ok(heardByCallee.some((s) => s.type === 'offer'));
    assert.ok([...heardByCaller, ...heardByCallee].some((s) => s.type === 'candidate'));
    assert.ok(heardByCaller.every((s) => s.from.socketId === c.socketId && s.from.userId === ben));
    assert.ok(heardByCallee.every((s) => s.from.socketId === a.socketId && s.from.userId === ann));
    // Herald relays a socket's signals in the order it sent them: the callee hears exactly what the caller
    // sent, the offer first, and no candidate came before its description (the page would have failed to add it).
    assert.deepEqual(heardByCallee.map((s) => s.type), await caller.evaluate(() => window.herald.sent));
    assert.deepEqual(heardByCaller.map((s) => s.type), await callee.evaluate(() => window.herald.sent));
    for (const page of [caller, callee]) {
      assert.deepEqual(await page.evaluate(() => [window.herald.signalErrors, window.herald.errors]), [undefined, []]);
    }

    // A third page that learnt the call id and both sockets cannot inject a signal into the call.
    const before = heardByCaller.length;
    const injected = await stranger.evaluate(async ({ callId, to }) => {
      const h = window.herald;
      return h.ack('webrtc_signal', { callId, to, type: 'offer', payload: { type: 'offer', sdp: 'v=0' } });
    }, { callId: inv.callId, to: a.socketId });
    assert.deepEqual([injected.ok, injected.error.code], [false, 'forbidden']);
    const ended = await stranger.evaluate(async (callId) => window.herald.ack('call_end', { callId }), inv.callId);
    assert.deepEqual([ended.ok, ended.error.code], [false, 'not_found']);
    await caller.waitForTimeout(300);
    assert.equal((await caller.evaluate(() => window.herald.signals)).length, before);
    assert.equal(await caller.evaluate(() => window.herald.pc.connectionState), 'connected');
    assert.equal(e.userId, eve);

    // The caller hangs up: both pages hear call_ended.
    await caller.evaluate(async () => window.herald.ack('call_end', { callId: window.herald.callId }));
    for (const page of [caller, callee]) {
      await page.waitForFunction(() => window.herald.ended.length === 1 && window.herald.ended[0].reason === 'ended');
    }
    assert.deepEqual(b.unexpectedErrors(), []);
  } finally {
    await b.close();
    await server.stop();
  }
});

test('calls: the try-it page places a call between two tabs, with sound and text', async () => {
  const server = await startServer({ JWT_SECRET: null });
  const b = await Browser.open('try-call', { args: MEDIA_ARGS });
  try {
    const [ann, ben] = [rid('ann'), rid('ben')];
    const tabA = b.page;
    const tabB = await b.context.newPage();
    for (const [tab, user] of [[tabA, ann], [tabB, ben]]) {
      await tab.goto(`${server.url}/try`);
      await tab.fill('#user', user);
      await tab.click('#connect');
      await tab.locator('#status', { hasText: 'Connected' }).waitFor();
    }
    await tabA.fill('#call-to', ben);
    await tabA.click('#call-start');
    await tabA.locator('#call-state', { hasText: 'Ringing' }).waitFor();
    await tabB.locator('#call-from', { hasText: `${ann} is calling (audio)` }).waitFor();
    await b.shot('ringing');
    await tabB.click('#call-accept');
    for (const tab of [tabA, tabB]) {
      await tab.locator('#call-state', { hasText: 'Call connected' }).waitFor({ timeout: 20_000 });
    }
    await tabA.locator('#call-send:enabled').waitFor();
    await tabA.fill('#call-text', 'series 3, image 12');
    await tabA.click('#call-send');
    await tabB.locator('#call-log', { hasText: 'They: series 3, image 12' }).waitFor();
    // The other tab's sound plays in this one.
    await tabB.waitForFunction(() => {
      const a = document.getElementById('call-audio');
      return a.srcObject && a.srcObject.getAudioTracks().some((t) => t.readyState === 'live');
    });
    await b.shot('connected');
    await tabB.click('#call-end');
    await tabA.locator('#call-state', { hasText: `Call ended (ended by ${ben})` }).waitFor();
    await tabB.locator('#call-state', { hasText: 'No call' }).waitFor();
    assert.deepEqual(b.unexpectedErrors(), []);
  } finally {
    await b.close();
    await server.stop();
  }
});
