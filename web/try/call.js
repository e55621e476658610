// The try-it page's call panel: calls another user (a second tab connected
// as them), rings, answers, and sets up a WebRTC call whose offer, answer
// and ICE candidates go through Herald (webrtc_signal); the audio and the
// text messages go from tab to tab, never through Herald.
'use strict';

const TryCall = (() => {
  const el = (id) => document.getElementById(id);
  let socket = null;
  let call = null; // { id, ice, peer (the other socket), pc, channel, local, queue }
  let ringing = null; // the call_incoming waiting for Accept or Decline

  function state(kind, text) {
    const s = el('call-state');
    s.className = 'pill ' + kind;
    s.textContent = text;
  }

  function say(text) {
    const line = document.createElement('div');
    line.textContent = text;
    el('call-log').prepend(line);
  }

  function buttons() {
    el('call-start').disabled = !socket || !!call;
    el('call-end').disabled = !call;
    el('call-send').disabled = !(call && call.channel && call.channel.readyState === 'open');
    el('call-incoming').hidden = !ringing;
  }

  function signal(type, payload) {
    socket.emit('webrtc_signal', { callId: call.id, to: call.peer, type, payload }, (answer) => {
      if (answer && !answer.ok) say(`Signal refused: ${answer.error.code}`);
    });
  }

  function chat(channel) {
    call.channel = channel;
    channel.onopen = buttons;
    channel.onclose = buttons;
    channel.onmessage = (e) => say('They: ' + e.data);
  }

  // The peer connection with Herald's ICE servers and this tab's microphone
  // (a tab without one still carries the text messages).
  async function peerConnection() {
    const pc = new RTCPeerConnection({ iceServers: call.ice });
    call.pc = pc;
    pc.onicecandidate = (e) => { if (e.candidate && call) signal('candidate', e.candidate.toJSON()); };
    pc.onconnectionstatechange = () => {
      if (!call || call.pc !== pc) return;
      state(pc.connectionState === 'connected' ? 'ok' : 'warn', 'Call ' + pc.connectionState);
    };
    pc.ontrack = (e) => { el('call-audio').srcObject = e.streams[0]; };
    pc.ondatachannel = (e) => chat(e.channel);
    try {
      call.local = await navigator.mediaDevices.getUserMedia({ audio: true });
      for (const t of call.local.getTracks()) pc.addTrack(t, call.local);
    } catch (e) {
      say(`No microphone (${e.name}): text only.`);
    }
    return pc;
  }

  // Signals are applied one after the other, in the order Herald relays them.
  async function apply(m) {
    if (!call || m.callId !== call.id || !call.pc) return;
    const pc = call.pc;
    if (m.type === 'offer') {
      await pc.setRemoteDescription(m.payload);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      signal('answer', { type: answer.type, sdp: answer.sdp });
    } else if (m.type === 'answer') {
      await pc.setRemoteDescription(m.payload);
    } else if (m.type === 'candidate') {
      await pc.addIceCandidate(m.payload);
    }
  }

  function over(text) {
    if (call) {
      if (call.pc) call.pc.close();
      if (call.local) for (const t of call.local.getTracks()) t.stop();
    }
    call = null;
    el('call-audio').srcObject = null;
    state('idle', text);
    buttons();
  }

  function start() {
    const to = el('call-to').value.trim();
    if (!to) return;
    socket.emit('call_invite', { to: { userId: to }, media: ['audio'] }, (answer) => {
      if (!answer || !answer.ok) {
        say(`Call refused: ${answer ? answer.error.code + ' (' + answer.error.message + ')' : 'no answer'}`);
        return;
      }
      call = { id: answer.callId, ice: answer.iceServers, queue: Promise.resolve() };
      state('warn', 'Ringing ' + to);
      buttons();
    });
  }

  async function accept(yes) {
    const ring = ringing;
    ringing = null;
    buttons();
    if (!ring) return;
    if (yes && !call) {
      call = { id: ring.callId, ice: ring.iceServers, peer: ring.from.socketId, queue: Promise.resolve() };
      state('warn', 'Connecting to ' + ring.from.userId);
      await peerConnection();
    }
    socket.emit('call_answer', { callId: ring.callId, accept: yes && call && call.id === ring.callId });
    buttons();
  }

  function attach(s) {
    socket = s;
    s.on('call_incoming', (m) => {
      ringing = m;
      el('call-from').textContent = `${m.from.userId} is calling (${m.media.join(', ')})`;
      buttons();
    });
    s.on('call_answer', async (m) => {
      if (!call || m.callId !== call.id || call.peer) return;
      if (!m.accept) { say(`${m.from.userId} declined`); return; }
      call.peer = m.from.socketId;
      const pc = await peerConnection();
      chat(pc.createDataChannel('chat'));
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      signal('offer', { type: offer.type, sdp: offer.sdp });
    });
    s.on('webrtc_signal', (m) => {
      if (!call) return;
      call.queue = call.queue.then(() => apply(m)).catch((e) => say('Signal failed: ' + e.message));
    });
    s.on('call_ended', (m) => {
      if (ringing && ringing.callId === m.callId) ringing = null;
      if (call && call.id === m.callId) over(`Call ended (${m.reason} by ${m.by})`);
      buttons();
    });
    s.on('disconnect', () => { socket = null; ringing = null; over('No call'); });
    buttons();
  }

  el('call-start').addEventListener('click', start);
  el('call-end').addEventListener('click', () => {
    if (call) socket.emit('call_end', { callId: call.id });
    over('No call');
  });
  el('call-accept').addEventListener('click', () => accept(true));
  el('call-decline').addEventListener('click', () => accept(false));
  el('call-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = el('call-text').value;
    if (!text || !call || !call.channel) return;
    call.channel.send(text);
    say('You: ' + text);
    el('call-text').value = '';
  });
  buttons();
  return { attach };
})();
