// Herald's operators' dashboard: signs in with an admin key kept in this
// tab (sessionStorage), reads the live picture of the service from the
// server-sent event stream, and acts through the dashboard's API, each
// action after a confirmation.
'use strict';

const KEY_SLOT = 'herald.adminKey';
const $ = (id) => document.getElementById(id);

let key = sessionStorage.getItem(KEY_SLOT);
let picture = null;      // the last overview
let clockOffset = 0;     // server time minus this browser's time, in ms
let lastSeen = null;     // when the last picture arrived (browser time)
let stream = null;       // the AbortController of the open stream
let selected = null;     // the notification whose timeline is shown

// ---- calls -------------------------------------------------------------

class Refused extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
  }
}

async function call(method, path, body) {
  const res = await fetch('/admin/api' + path, {
    method,
    headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  if (!res.ok) throw new Refused(res.status, parsed);
  return parsed;
}

// ---- sign-in -----------------------------------------------------------

function showSignIn(message) {
  stopStream();
  key = null;
  sessionStorage.removeItem(KEY_SLOT);
  $('dashboard').hidden = true;
  $('pills').hidden = true;
  $('sign-in').hidden = false;
  const err = $('sign-in-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('key').value = '';
  $('key').focus();
}

async function signIn(candidate) {
  key = candidate;
  try {
    const first = await call('GET', '/overview');
    sessionStorage.setItem(KEY_SLOT, key);
    $('sign-in').hidden = true;
    $('dashboard').hidden = false;
    $('pills').hidden = false;
    show(first);
    startStream();
  } catch (e) {
    if (e instanceof Refused && e.status === 401) {
      showSignIn('That key was refused: it is not one of this server\'s admin keys.');
    } else {
      showSignIn('Herald did not answer (' + e.message + '). Is the server running?');
    }
  }
}

$('sign-in-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const candidate = $('key').value.trim();
  if (!candidate) {
    showSignIn('Enter an admin key.');
    return;
  }
  $('sign-in-button').disabled = true;
  signIn(candidate).finally(() => { $('sign-in-button').disabled = false; });
});

$('sign-out').addEventListener('click', () => showSignIn(''));

// ---- the live stream ---------------------------------------------------

function stopStream() {
  if (stream) stream.abort();
  stream = null;
}

function setLive(kind, text) {
  const pill = $('pill-live');
  pill.className = 'pill ' + kind;
  pill.textContent = text;
}

function unreachable(yes) {
  $('banner-unreachable').hidden = !yes;
  if (yes) {
    $('stale-since').textContent = lastSeen ? when(lastSeen) : 'before';
    setLive('bad', 'Unreachable');
  }
}

// Reads `text/event-stream` with fetch, so the key goes in the header.
async function readStream(controller) {
  const res = await fetch('/admin/api/stream', {
    headers: { Authorization: 'Bearer ' + key, Accept: 'text/event-stream' },
    signal: controller.signal,
    cache: 'no-store',
  });
  if (res.status === 401) throw new Refused(401, null);
  if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
  unreachable(false);
  setLive('ok', 'Live');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (block.includes('event: overview') && data) show(JSON.parse(data));
    }
  }
}

async function startStream() {
  stopStream();
  const controller = new AbortController();
  stream = controller;
  while (stream === controller) {
    try {
      await readStream(controller);
    } catch (e) {
      if (stream !== controller) return;
      if (e instanceof Refused && e.status === 401) {
        showSignIn('The server no longer accepts this key. Sign in again.');
        return;
      }
    }
    if (stream !== controller) return;
    unreachable(true);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// ---- rendering ---------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function serverNow() { return Date.now() + clockOffset; }

function span(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min ' + String(s % 60).padStart(2, '0') + ' s';
  const h = Math.floor(m / 60);
  if (h < 48) return h + ' h ' + String(m % 60).padStart(2, '0') + ' min';
  return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
}

function clockText(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
}

const two = (n) => String(n).padStart(2, '0');

// Local time as 2026-11-25 10:00:05: unambiguous in every locale.
function when(iso) {
  if (!iso) return '';
  const d = iso instanceof Date ? iso : new Date(iso);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function pill(id, kind, text, title) {
  const p = $(id);
  p.className = 'pill ' + kind;
  p.textContent = text;
  p.title = title || '';
}

function show(next) {
  picture = next;
  lastSeen = new Date();
  clockOffset = new Date(next.now).getTime() - Date.now();
  const h = next.health;
  pill('pill-node', 'idle', 'Node ' + next.node, 'The node this page talks to');
  pill('pill-store', h.store === 'ok' ? 'ok' : 'bad', h.store === 'ok' ? 'Store OK' : 'Store down');
  if (h.redis === null || h.redis === undefined) pill('pill-redis', 'idle', 'Single node', 'No Redis: Herald runs as one node');
  else pill('pill-redis', h.redis === 'ok' ? 'ok' : 'warn', h.redis === 'ok' ? 'Redis OK' : 'Redis degraded');
  $('banner-store').hidden = h.store === 'ok';
  $('banner-redis').hidden = h.redis !== 'degraded';
  $('banner-partial').hidden = !next.partial || h.redis === 'degraded';

  const s = next.sockets;
  $('t-users').textContent = next.users.length;
  $('t-sockets').textContent = s.total;
  $('t-transports').textContent = `sockets: ${s.byTransport.websocket || 0} websocket, ${s.byTransport.polling || 0} polling`;
  $('t-nodes').textContent = Object.keys(s.byNode).length;
  $('t-nodes-list').textContent = Object.keys(s.byNode).length
    ? 'nodes with sockets: ' + Object.entries(s.byNode).map(([n, c]) => `${n} (${c})`).join(', ')
    : 'nodes with sockets';
  renderUnacked(next.unacknowledged);
  renderUsers(next.users);
  renderNodes(s.byNode);
  $('user-ids').replaceChildren(...next.users.map((u) => el('option', { value: u.userId })));
  if (selected) loadTimeline(selected, false);
  tick();
}

function renderUnacked(open) {
  const body = $('unacked');
  if (!open) {
    body.replaceChildren();
    $('t-unacked').textContent = '?';
    $('unacked-count').textContent = 'unknown: the store does not answer';
    $('unacked-empty').hidden = true;
    return;
  }
  const list = open.notifications;
  $('t-unacked').textContent = open.total;
  $('tile-unacked').classList.toggle('alert', open.total > 0);
  $('unacked-count').textContent = open.total > list.length ? `oldest ${list.length} of ${open.total}` : `${open.total}`;
  $('unacked-empty').hidden = list.length > 0;
  body.replaceChildren(...list.map((n) => {
    const sev = String(n.severity || 'none').toLowerCase();
    const open = () => selectNotification(n.id);
    const row = el('tr', {
      class: 'pick' + (n.id === selected ? ' selected' : ''), tabindex: 0,
      'aria-label': `Show the timeline of ${n.id}`,
      onclick: open,
      onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); } },
      dataset: { id: n.id },
    },
      el('td', { class: 'num age', dataset: { since: n.createdAt } }, ''),
      el('td', {}, el('span', { class: 'sev ' + sev }, n.severity || '—')),
      el('td', { class: 'mono' }, n.userId),
      el('td', { class: 'truncate', title: n.title || n.id }, n.title || n.type || n.id),
      el('td', {}, el('span', { class: 'state ' + n.state }, n.state)),
      el('td', { class: 'num' }, n.escalationLevel === null || n.escalationLevel === undefined ? '—' : n.escalationLevel));
    return row;
  }));
  const oldest = list[0];
  $('t-oldest').textContent = oldest ? 'unacknowledged, oldest ' : 'unacknowledged';
  if (oldest) $('t-oldest').append(el('span', { class: 'age', dataset: { since: oldest.createdAt } }, ''));
}

function renderUsers(users) {
  $('users-count').textContent = users.length ? `${users.length}` : '';
  $('users-empty').hidden = users.length > 0;
  $('users').hidden = users.length === 0;
  $('users').replaceChildren(...users.map((u) => el('div', { class: 'user', dataset: { user: u.userId } },
    el('div', { class: 'user-head' },
      el('span', { class: 'name mono' }, u.userId),
      el('span', { class: 'meta' }, `${u.sockets} socket${u.sockets === 1 ? '' : 's'}, ${u.sessions.length} session${u.sessions.length === 1 ? '' : 's'}`),
      el('span', { class: 'actions' },
        el('button', { class: 'small', type: 'button', onclick: () => prefillSend(u.userId) }, 'Send test'),
        el('button', { class: 'small danger', type: 'button', onclick: () => disconnectUser(u.userId) }, 'Disconnect'))),
    u.sessions.map((s) => el('div', { class: 'session', dataset: { session: s.sessionId } },
      el('span', { class: 'sid' }, el('span', { class: 'tag' }, s.role), el('span', { class: 'mono' }, s.sessionId)),
      el('span', {
        class: 'idle', dataset: { until: s.expiresAt || '' },
        title: s.expiresAt ? 'Idle time left before the session expires' : 'The session clocks do not answer (Redis unreachable?)',
      }, ''),
      el('button', { class: 'small danger', type: 'button', onclick: () => expireSession(u.userId, s.sessionId) }, 'Expire'),
      el('span', { class: 'socks' }, s.sockets.map((k) => el('span', { class: 'tag', title: `${k.socketId}, connected ${when(k.connectedAt)}` }, `${k.transport} @ ${k.node}`))))))));
}

function renderNodes(byNode) {
  const rows = Object.entries(byNode);
  $('nodes').replaceChildren(...(rows.length
    ? rows.map(([node, n]) => el('tr', {}, el('td', { class: 'mono' }, node), el('td', { class: 'num' }, n)))
    : [el('tr', {}, el('td', { colspan: 2, class: 'empty' }, 'No sockets on any node.'))]));
}

// Ages and idle clocks count on between two pictures.
function tick() {
  const now = serverNow();
  for (const c of document.querySelectorAll('[data-since]')) c.textContent = span(now - new Date(c.dataset.since).getTime());
  for (const c of document.querySelectorAll('[data-until]')) {
    c.classList.toggle('unknown', !c.dataset.until);
    if (!c.dataset.until) { c.textContent = 'clock unknown'; c.classList.remove('soon'); continue; }
    const left = new Date(c.dataset.until).getTime() - now;
    c.textContent = left > 0 ? clockText(left) + ' left' : 'expiring';
    c.classList.toggle('soon', left < 60000);
  }
}
setInterval(tick, 1000);

// ---- timeline ----------------------------------------------------------

function selectNotification(id) {
  selected = id;
  for (const r of document.querySelectorAll('#unacked tr')) r.classList.toggle('selected', r.dataset.id === id);
  loadTimeline(id, true);
}

async function loadTimeline(id, announce) {
  const box = $('timeline');
  $('timeline-id').textContent = id;
  try {
    const t = await call('GET', '/notifications/' + encodeURIComponent(id));
    if (selected !== id) return;
    const steps = [el('li', { class: 'done' }, el('div', {}, 'Created'), el('div', { class: 'when' }, when(t.createdAt)))];
    for (const r of t.recipients) {
      steps.push(el('li', { class: r.deliveredAt ? 'done' : 'wait' },
        el('div', {}, 'Delivered to ', el('span', { class: 'mono' }, r.userId)),
        el('div', { class: 'when' }, r.deliveredAt ? when(r.deliveredAt) : 'not yet: no socket of this user took it')));
      steps.push(el('li', { class: r.acknowledgedAt ? 'done' : 'wait' },
        el('div', {}, 'Acknowledged by ', el('span', { class: 'mono' }, r.userId)),
        el('div', { class: 'when' }, r.acknowledgedAt ? when(r.acknowledgedAt) : 'waiting')));
    }
    box.replaceChildren(
      el('p', {}, el('span', { class: 'sev ' + String(t.severity || 'none').toLowerCase() }, t.severity || '—'), ' ', t.title || t.type || ''),
      el('ol', { class: 'steps' }, steps));
  } catch (e) {
    if (selected !== id) return;
    if (e instanceof Refused && e.status === 404) box.replaceChildren(el('div', { class: 'empty' }, 'No notification with this id is stored (never sent, or past retention).'));
    else if (e instanceof Refused && e.status === 400) box.replaceChildren(el('div', { class: 'error' }, e.message));
    else if (announce) box.replaceChildren(el('div', { class: 'error' }, 'Could not read the timeline: ' + e.message));
  }
}

$('lookup-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const id = $('lookup-id').value.trim();
  if (id) selectNotification(id);
});

// ---- actions -----------------------------------------------------------

function confirmAction(title, text, action, destructive) {
  const d = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = action;
  $('confirm-ok').className = destructive ? 'destructive' : 'primary';
  const back = document.activeElement;
  return new Promise((resolve) => {
    d.addEventListener('close', () => {
      resolve(d.returnValue === 'ok');
      if (back && back.isConnected) back.focus();
    }, { once: true });
    d.returnValue = '';
    d.showModal();
    $('confirm-cancel').focus();
  });
}

let noticeTimer = null;
function notice(text, bad) {
  const n = $('notice');
  n.textContent = text;
  n.className = 'notice' + (bad ? ' bad' : '');
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 6000);
}

async function act(what, method, path, body, done) {
  try {
    const answer = await call(method, path, body);
    notice(done(answer));
  } catch (e) {
    if (e instanceof Refused && e.status === 401) { showSignIn('The server no longer accepts this key. Sign in again.'); return; }
    notice(`Could not ${what}: ${e.message}`, true);
  }
}

function prefillSend(user) {
  $('send-user').value = user;
  $('send-title').focus();
}

$('send-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const user = $('send-user').value.trim();
  if (!user) { notice('Enter the user id to send to.', true); $('send-user').focus(); return; }
  const severity = $('send-severity').value;
  const ok = await confirmAction('Send a test notification?',
    `A ${severity} test notification goes to every connected tab of ${user}, and stays in their list until they acknowledge it.`, 'Send');
  if (!ok) return;
  const body = { type: 'test', severity, title: $('send-title').value.trim() || 'Test notification', message: $('send-message').value.trim() };
  await act('send the notification', 'POST', `/users/${encodeURIComponent(user)}/notifications`, body,
    (a) => `Sent ${a.notification.id} to ${user}: handed to ${a.deliveredTo} socket${a.deliveredTo === 1 ? '' : 's'}.`);
});

async function disconnectUser(user) {
  const ok = await confirmAction('Disconnect this user?', `Every socket of ${user} is closed now. Their pages reconnect by themselves if their session is still valid.`, 'Disconnect', true);
  if (!ok) return;
  await act('disconnect the user', 'DELETE', `/users/${encodeURIComponent(user)}/connections?reason=admin`, undefined,
    (a) => `Disconnected ${a.disconnected} socket${a.disconnected === 1 ? '' : 's'} of ${user}.`);
}

async function expireSession(user, session) {
  const ok = await confirmAction('Expire this session?', `Session ${session} of ${user} ends now on every tab, and its token is refused from now on: the user has to sign in again.`, 'Expire session', true);
  if (!ok) return;
  await act('expire the session', 'DELETE', `/sessions/${encodeURIComponent(session)}`, undefined,
    (a) => `Expired session ${session}: ${a.disconnected} socket${a.disconnected === 1 ? '' : 's'} told and disconnected.`);
}

// ---- start -------------------------------------------------------------

if (key) signIn(key); else showSignIn('');
