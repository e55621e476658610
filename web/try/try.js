// Herald's try-it page: mints a development token for the chosen user and
// role, connects the official socket.io-client with it, shows every event
// the server sends, and answers with the client events a PACS page uses.
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
byId('clear').addEventListener('click', () => {
  for (const e of [...byId('events').querySelectorAll('.event')]) e.remove();
  byId('events-empty').hidden = false;
});
byId('user').addEventListener('input', () => showCurl(byId('user').value.trim() || 'u1'));
showCurl(byId('user').value.trim());
