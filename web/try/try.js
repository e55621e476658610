// Herald's try-it page: mints a development token for the chosen user and
// role, connects the official socket.io-client with it, shows every event
// the server sends, and answers with the client events a PACS page uses; joins a study room and shows
// who is in it (room_presence) and who is typing there.
'use strict';

const byId = (id) => document.getElementById(id);
let socket = null;
let me = null; // the minted token's user, role and session

function fail(text) {
  const e = byId('error');
  e.textContent = text || '';
  e.hidden = !text;
}

function status(kind, text) {
  const s = byId('status');
  s.className = 'pill ' + kind;
  s.textContent = text;
}

function node(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  return n;
}

function logEvent(name, args, extra) {
  byId('events-empty').hidden = true;
  const item = node('div', 'event' + (name === 'critical_notification' ? ' notification' : ''));
  const head = node('div', 'head');
  head.append(node('span', 'name mono', name), node('span', 'at', new Date().toLocaleTimeString(undefined, { hour12: false })));
  item.append(head);
  if (args.length) item.append(node('pre', 'mono', args.map((a) => JSON.stringify(a, null, 2)).join('\n')));
  if (extra) item.append(extra);
  byId('events').prepend(item);
  return item;
}

function ackButton(n) {
  const b = node('button', 'small primary', 'Acknowledge');
  b.type = 'button';
  b.addEventListener('click', () => {
    b.disabled = true;
    socket.emit('acknowledge_notification', { notificationId: n.id, userId: me.userId }, (answer) => {
      if (answer && answer.ok) b.replaceWith(node('span', 'tag ok', 'Acknowledged ' + new Date(answer.acknowledgedAt).toLocaleTimeString(undefined, { hour12: false })));
      else { b.disabled = false; b.textContent = 'Refused: ' + ((answer && answer.error && answer.error.code) || 'no answer'); }
    });
  });
  return b;
}

function connected(yes) {
  byId('connect').disabled = yes;
  byId('disconnect').disabled = !yes;
  byId('extend').disabled = !yes;
  byId('activity').disabled = !yes;
  byId('join').disabled = !yes;
  if (!yes) inRoom(null);
}

// The study room this page sits in (one at a time here; a socket may sit in several), and who types
// there: user id -> the time the server said so.
let room = null;
const typists = new Map();

function inRoom(name) {
  room = name;
  typists.clear();
  byId('leave').disabled = !name;
  byId('draft').disabled = !name;
  byId('room-members').replaceChildren();
  showTyping();
}

function showMembers(members) {
  byId('room-members').replaceChildren(node('div', 'members', undefined));
  const list = byId('room-members').firstChild;
  for (const m of members) {
    const item = node('span', 'member');
    item.dataset.member = m.userId;
    item.append(node('span', 'mono', m.userId + (m.userId === me.userId ? ' (you)' : '')), node('span', 'n', `${m.connections} tab${m.connections === 1 ? '' : 's'}`));
    list.append(item);
  }
}

function showTyping() {
  const who = [...typists.keys()];
  byId('typing').textContent = who.length ? `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…` : '';
}

function joinRoom() {
  const name = byId('room').value.trim();
  if (!name) return;
  const leaving = room && room !== name ? room : null;
  if (leaving) socket.emit('leave_room', { room: leaving });
  socket.emit('join_room', { room: name }, (answer) => {
    logEvent('join_room answer', [answer]);
    if (answer && answer.ok) { inRoom(answer.room); showMembers(answer.members); }
  });
}

function leaveRoom() {
  if (!room) return;
  socket.emit('leave_room', { room }, (answer) => logEvent('leave_room answer', [answer]));
  inRoom(null);
}

// Typing: `true` on the first key and again every few seconds while keys come (Herald clears a
// `true` not refreshed for 5 s), `false` once the keys stop for 2 s or the field loses focus.
let typingSince = 0;
let typingStop = null;
function typed() {
  if (!room) return;
  const now = Date.now();
  if (now - typingSince > 3000) { socket.emit('typing', { room, isTyping: true }); typingSince = now; }
  clearTimeout(typingStop);
  typingStop = setTimeout(stoppedTyping, 2000);
}
function stoppedTyping() {
  clearTimeout(typingStop);
  if (room && typingSince) socket.emit('typing', { room, isTyping: false });
  typingSince = 0;
}

function showCurl(user) {
  byId('curl').textContent =
    'KEY=$(cat data/dev-api-key)\n' +
    `curl -s -X POST ${location.origin}/api/v1/users/${encodeURIComponent(user)}/notifications \\\n` +
    '  -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \\\n' +
    '  -d \'{"type":"critical_finding","severity":"critical","title":"Critical Finding Detected"}\'';
}

async function mint(userId, role, sessionId) {
  const res = await fetch('/try/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ userId, role, sessionId: sessionId || undefined }),
  });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error((body && body.error && body.error.message) || `HTTP ${res.status}`);
  return body;
}

async function connect() {
  fail('');
  const user = byId('user').value.trim();
  const role = byId('role').value.trim();
  if (!user || !role) { fail('Enter a user id and a role.'); return; }
  let minted;
  try {
    minted = await mint(user, role, byId('session').value.trim());
  } catch (e) {
    fail('No token: ' + e.message);
    return;
  }
  if (minted.origin && !minted.origin.allowed) {
    fail(`This page's origin ${minted.origin.origin} is not an allowed browser origin, so Herald would refuse the socket. ` +
      'Open the page at http://127.0.0.1:' + (location.port || '80') + '/try, or add the origin to HERALD_CORS_ORIGINS.');
    return;
  }
  me = minted;
  byId('session').value = minted.sessionId;
  status('warn', 'Connecting');
  connected(true);
  socket = io({ auth: { token: minted.token }, reconnection: false });
  TryCall.attach(socket);
  socket.onAny((name, ...args) => {
    const extra = name === 'critical_notification' && args[0] && args[0].id ? ackButton(args[0]) : null;
    logEvent(name, args, extra);
  });
  socket.on('room_presence', (p) => { if (p && p.room === room) showMembers(p.members); });
  socket.on('typing', (t) => {
    if (!t || t.room !== room) return;
    if (t.isTyping) typists.set(t.userId, t.at); else typists.delete(t.userId);
    showTyping();
  });
  socket.on('connect', () => {
    const t = socket.io.engine.transport.name;
    status('ok', 'Connected (' + t + ')');
    byId('socket-info').textContent = `Socket ${socket.id} as ${me.userId} (${me.role}), session ${me.sessionId}. Token valid until ${new Date(me.expiresAt).toLocaleTimeString(undefined, { hour12: false })}.`;
    socket.io.engine.once('upgrade', () => status('ok', 'Connected (' + socket.io.engine.transport.name + ')'));
  });
  socket.on('connect_error', (err) => {
    logEvent('connect_error', [{ message: err.message }]);
    status('bad', 'Refused');
    fail('Herald refused the connection: ' + err.message);
    connected(false);
  });
  socket.on('disconnect', (reason) => {
    logEvent('disconnect', [reason]);
    status('idle', 'Disconnected');
    connected(false);
  });
}

byId('connect-form').addEventListener('submit', (ev) => { ev.preventDefault(); connect(); });
byId('disconnect').addEventListener('click', () => { if (socket) socket.disconnect(); });
byId('extend').addEventListener('click', () => {
  socket.emit('extend_session', { sessionId: me.sessionId }, (answer) => logEvent('extend_session answer', [answer]));
});
byId('activity').addEventListener('click', () => {
  socket.emit('activity', (answer) => logEvent('activity answer', [answer]));
});
byId('room-form').addEventListener('submit', (ev) => { ev.preventDefault(); joinRoom(); });
byId('leave').addEventListener('click', leaveRoom);
byId('draft').addEventListener('input', typed);
byId('draft').addEventListener('blur', stoppedTyping);
byId('clear').addEventListener('click', () => {
  for (const e of [...byId('events').querySelectorAll('.event')]) e.remove();
  byId('events-empty').hidden = false;
});
byId('user').addEventListener('input', () => showCurl(byId('user').value.trim() || 'u1'));
showCurl(byId('user').value.trim());
