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
    const said = body && body.error && body.error.message;
    super(present(said) ? displayText(said) : `HTTP ${status}`);
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

// Longest text one value shows: a title is a line, not a page. The server already cuts a body's type,
// severity and title at 500 with its own note (src/web/shown.rs): this leaves those whole, and bounds
// anything else.
const TEXT_MAX = 600;

// Any JSON value a backend may send, as text to show. A notification is the backend's object kept whole,
// so a title, severity or kind may be any JSON: an object whose `toString` is not a function makes
// String(v) and `${v}` throw, and one throw would stop the whole picture. Strings show as they are,
// everything else as its JSON; longer than `max` is cut, and says so. Callers put the text in text nodes
// and attribute values only (see `el`), so it is never HTML.
function displayText(value, max = TEXT_MAX) {
  let text;
  if (typeof value === 'string') text = value;
  else if (value === undefined) text = '';
  else {
    try { text = JSON.stringify(value); } catch { text = undefined; }
    if (typeof text !== 'string') text = '(a value that cannot be shown)';
  }
  if (text.length <= max) return text;
  return `${firstChars(text, max)}… (cut: ${text.length} characters in all)`;
}

// The first `n` UTF-16 units of `text`, less one if that would end in half a character.
const firstChars = (text, n) => text.slice(0, /[\ud800-\udbff]/.test(text[n - 1]) ? n - 1 : n);

// A field the backend may leave out: absent, null and '' let the next field speak.
const present = (v) => v !== undefined && v !== null && v !== '';

// What a notification is called: its title, else its kind; null when it has neither.
const notificationName = (n) => (present(n.title) ? n.title : present(n.type) ? n.type : null);

// The severity badge's class: a known colour for a plain severity word, `other` for anything else.
function severityClass(severity) {
  if (!present(severity)) return 'sev none';
  const word = typeof severity === 'string' ? severity.toLowerCase() : '';
  return 'sev ' + (/^[a-z][a-z0-9_-]{0,31}$/.test(word) ? word : 'other');
}

// The badge is narrow: a long severity ends in an ellipsis, in full (up to the cut) as its tooltip.
function severityBadge(severity) {
  const text = present(severity) ? displayText(severity) : '—';
  return el('span', { class: severityClass(severity), title: text.length > 12 ? text : undefined }, text);
}

// Every child and attribute value becomes text (never markup, whatever the JSON), not cut: the caller
// passes a backend's value through `displayText` first, which cuts it, and keeps an array from the
// backend from reading as the page's own list of children.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = displayText(v, Infinity);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') for (const [d, dv] of Object.entries(v)) node.dataset[d] = displayText(dv, Infinity);
    else node.setAttribute(k, v === true ? '' : displayText(v, Infinity));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(displayText(c, Infinity)));
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
  const d = iso instanceof Date ? iso : new Date(typeof iso === 'string' ? iso : NaN);
  if (Number.isNaN(d.getTime())) return '';
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
    ? 'nodes with sockets: ' + Object.entries(s.byNode).map(([n, c]) => `${displayText(n)} (${displayText(c)})`).join(', ')
    : 'nodes with sockets';
  renderUnacked(next.unacknowledged);
  refreshReport(next.unacknowledged);
  renderUsers(next.users);
  renderNodes(s.byNode);
  renderRooms(next.rooms);
  $('user-ids').replaceChildren(...next.users.map((u) => el('option', { value: u.userId })));
  if (selected) loadTimeline(selected, false);
  tick();
}

function renderUnacked(open) {
  const body = $('unacked');
  $('unacked-unknown').hidden = !!open;
  if (!open) {
    // `null` is unknown, not empty: say so rather than "0" or "nothing waiting".
    body.replaceChildren();
    $('t-unacked').textContent = '?';
    $('t-oldest').textContent = 'unacknowledged: unknown, the store is not answering';
    $('tile-unacked').classList.remove('alert');
    $('unacked-count').textContent = 'unknown';
    $('unacked-empty').hidden = true;
    return;
  }
  const list = open.notifications;
  $('t-unacked').textContent = open.total;
  $('tile-unacked').classList.toggle('alert', open.total > 0);
  $('unacked-count').textContent = open.total > list.length ? `oldest ${list.length} of ${open.total}` : `${open.total}`;
  $('unacked-empty').hidden = list.length > 0;
  body.replaceChildren(...list.map((n) => {
    const open = () => selectNotification(n.id);
    const row = el('tr', {
      class: 'pick' + (n.id === selected ? ' selected' : ''), tabindex: 0,
      'aria-label': `Show the timeline of ${displayText(n.id)}`,
      onclick: open,
      onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); } },
      dataset: { id: n.id },
    },
      el('td', { class: 'num age', dataset: { since: n.createdAt } }, ''),
      el('td', {}, severityBadge(n.severity)),
      el('td', { class: 'mono' }, n.userId),
      el('td', { class: 'truncate', title: displayText(notificationName(n) ?? n.id) }, displayText(notificationName(n) ?? n.id)),
      el('td', {}, el('span', { class: 'state ' + displayText(n.state) }, n.state)),
      el('td', { class: 'esc' }, escalationCell(n.escalation)));
    return row;
  }));
  const oldest = list[0];
  $('t-oldest').textContent = oldest ? 'unacknowledged, oldest ' : 'unacknowledged';
  if (oldest) $('t-oldest').append(el('span', { class: 'age', dataset: { since: oldest.createdAt } }, ''));
}

// A list of ids as `a, b, c`; anything but a list as its JSON.
const listText = (ids) => (Array.isArray(ids) ? ids.map((i) => displayText(i)).join(', ') : displayText(ids));

// What a step does, in a few words; never a webhook's address (the server does not send it).
function stepText(step) {
  switch (step.action) {
    case 'renotify': return 'reminder';
    case 'to_role': return 'to role ' + displayText(step.to.role);
    case 'to_users': return 'to ' + listText(step.to.users);
    case 'webhook': return 'pager webhook';
    default: return 'step ' + displayText(step.level);
  }
}

// The escalation cell: level fired of the policy's steps, the next step counting down, and an
// overdue badge once the policy's first step is past (the page judges it, as it counts ages).
function escalationCell(e) {
  if (!e) return el('span', { class: 'muted', title: 'No escalation policy for this severity' }, '—');
  if (e.closedAt) return el('span', { class: 'tag', title: `Closed ${when(e.closedAt)} by another recipient's acknowledgement` }, 'closed');
  const fired = displayText(e.level);
  const level = el('span', { class: 'level', title: `${fired} step${e.level === 1 ? '' : 's'} of the policy fired` },
    present(e.levels) ? `level ${fired}/${displayText(e.levels)}` : `level ${fired}`);
  const badge = e.overdueAt ? el('span', { class: 'overdue', dataset: { overdue: e.overdueAt }, hidden: true, title: `Past the policy's first step (${when(e.overdueAt)})` }, 'overdue') : null;
  const next = e.next
    ? el('div', { class: 'next', dataset: { due: e.next.dueAt, step: stepText(e.next) } }, '')
    : el('div', { class: 'next' }, 'no step left');
  return [el('div', {}, level, ' ', badge), next];
}
function renderUsers(users) {
  $('users-count').textContent = users.length ? `${users.length}` : '';
  $('users-empty').hidden = users.length > 0;
  $('users').hidden = users.length === 0;
  $('users').replaceChildren(...users.map((u) => el('div', { class: 'user', dataset: { user: u.userId } },
    el('div', { class: 'user-head' },
      el('span', { class: 'name mono' }, u.userId),
      el('span', { class: 'meta' }, `${displayText(u.sockets)} socket${u.sockets === 1 ? '' : 's'}, ${u.sessions.length} session${u.sessions.length === 1 ? '' : 's'}`),
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
      el('span', { class: 'socks' }, s.sockets.map((k) => el('span', { class: 'tag', title: `${displayText(k.socketId)}, connected ${when(k.connectedAt)}` }, `${displayText(k.transport)} @ ${displayText(k.node)}`))))))));
}

function renderNodes(byNode) {
  const rows = Object.entries(byNode);
  $('nodes').replaceChildren(...(rows.length
    ? rows.map(([node, n]) => el('tr', {}, el('td', { class: 'mono' }, node), el('td', { class: 'num' }, n)))
    : [el('tr', {}, el('td', { colspan: 2, class: 'empty' }, 'No sockets on any node.'))]));
}

// Study rooms, busiest first, each member with their sockets in the room and how long they have
// been there (counted on by `tick`). Read-only: rooms are the backend's and the users' business.
function renderRooms(rooms) {
  const list = (rooms && rooms.rooms) || [];
  const total = (rooms && rooms.total) || 0;
  $('rooms-count').textContent = total > list.length ? `${list.length} of ${total}` : (total ? `${total}` : '');
  $('rooms-empty').hidden = list.length > 0;
  $('rooms').replaceChildren(...list.map((r) => el('tr', { dataset: { room: r.room } },
    el('td', { class: 'mono' }, displayText(r.room)),
    el('td', { class: 'num' }, r.members.length),
    el('td', {}, el('div', { class: 'members' }, r.members.map((m) => el('span', { class: 'member', dataset: { member: m.userId }, title: `in the room since ${when(m.since)}` },
      el('span', { class: 'mono' }, displayText(m.userId)),
      el('span', { class: 'n' }, `${displayText(m.connections)} socket${m.connections === 1 ? '' : 's'}`),
      el('span', { class: 'n', dataset: { since: m.since } }, ''))))))));
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
  for (const c of document.querySelectorAll('[data-due]')) {
    const left = new Date(c.dataset.due).getTime() - now;
    c.textContent = left > 999 ? `next: ${c.dataset.step} in ${span(left)}` : `next: ${c.dataset.step}, due now`;
  }
  for (const c of document.querySelectorAll('[data-overdue]')) c.hidden = now < new Date(c.dataset.overdue).getTime();
}
setInterval(tick, 1000);

// ---- timeline ----------------------------------------------------------

function selectNotification(id) {
  selected = id;
  for (const r of document.querySelectorAll('#unacked tr')) r.classList.toggle('selected', r.dataset.id === id);
  loadTimeline(id, true);
}

// What each audit record type reads as in the timeline.
const RECORD = {
  created: 'Created', delivered: 'Delivered', redelivered: 'Redelivered (caught up)',
  reminded: 'Reminded', escalated: 'Escalated', webhook_sent: 'Webhook sent',
  webhook_failed: 'Webhook failed', acknowledged: 'Acknowledged', closed: 'Closed',
};

function recordNote(r) {
  const d = r.detail || {};
  if (r.type === 'escalated' && d.to) return d.to.role ? 'to role ' + displayText(d.to.role) : 'to ' + listText(d.to.users || []);
  if (r.type === 'reminded' && d.reminder) return 'reminder ' + displayText(d.reminder);
  if (r.type === 'created' && d.recipients !== undefined) return `${displayText(d.recipients)} recipient${d.recipients === 1 ? '' : 's'}`;
  if ((r.type === 'webhook_sent' || r.type === 'webhook_failed') && d.attempt) return `attempt ${displayText(d.attempt)}` + (d.status ? `, HTTP ${displayText(d.status)}` : '');
  return '';
}

// The notification (its title and who still has to acknowledge) and its audit records, oldest first.
async function loadTimeline(id, announce) {
  const box = $('timeline');
  $('timeline-id').textContent = displayText(id);
  try {
    const path = '/notifications/' + encodeURIComponent(id);
    const [n, t] = await Promise.all([call('GET', path), call('GET', path + '/timeline')]);
    if (selected !== id) return;
    const who = n.recipients.map((r) => el('span', { class: 'tag ' + (r.acknowledgedAt ? 'acked' : 'waiting'), title: r.acknowledgedAt ? `acknowledged ${when(r.acknowledgedAt)}` : r.state },
      r.userId, ': ', r.acknowledgedAt ? 'acknowledged' : r.state));
    const rows = t.events.map((r) => el('tr', { class: 'rec ' + displayText(r.type), dataset: { type: r.type } },
      el('td', { class: 'num', title: when(r.at) }, when(r.at).slice(11)),
      el('td', {}, el('span', { class: 'kind' }, (typeof r.type === 'string' && Object.hasOwn(RECORD, r.type)) ? RECORD[r.type] : r.type), ' ', el('span', { class: 'muted' }, recordNote(r))),
      el('td', { class: 'mono' }, r.userId || ''),
      el('td', { class: 'mono truncate', title: r.socketId || '' }, r.socketId || ''),
      el('td', { class: 'num' }, r.level === undefined ? '' : r.level)));
    box.dataset.id = id; // which notification the box shows (its id above changes first)
    box.replaceChildren(
      el('p', { class: 'headline' }, severityBadge(n.severity), ' ', displayText(notificationName(n) ?? '')),
      el('p', { class: 'who' }, who),
      el('div', { class: 'scroll records' },
        el('table', { 'aria-label': 'Audit records, oldest first' },
          el('thead', {}, el('tr', {}, el('th', { class: 'num' }, 'Time'), el('th', {}, 'Record'), el('th', {}, 'User'), el('th', {}, 'Socket'), el('th', { class: 'num' }, 'Level'))),
          el('tbody', {}, rows))));
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

// ---- the acknowledgement report -----------------------------------------

const SEVERITY_ORDER = ['critical', 'high', 'medium', 'low', 'info'];
const SVG = 'http://www.w3.org/2000/svg';
let reportKey = null;    // what the last report was read for: refreshed when the list changes
let reportAt = 0;        // when (browser time) it was read

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, displayText(v, Infinity));
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(displayText(c, Infinity)));
  return node;
}

function severities(bySeverity) {
  const rank = (k) => { const i = SEVERITY_ORDER.indexOf(k); return i < 0 ? (k === 'none' ? 99 : 50) : i; };
  return Object.keys(bySeverity).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const dur = (ms) => (ms === null || ms === undefined ? '—' : ms < 1000 ? ms + ' ms' : span(ms));

// The share acknowledged within policy, rounded down to 0.1%: 99.96% is not shown as 100%.
const share = (v) => (v === null || v === undefined ? '—' : v === 1 ? '100%' : (Math.floor(v * 1000) / 10).toFixed(1) + '%');

// One row per severity: to the left the counts as one stacked bar (acknowledged, open, of which
// overdue) over the share acknowledged within policy, to the right time to acknowledge as three bars
// (p50, p90, p99) on a common scale.
function reportChart(r, keys) {
  const rowH = 46, top = 22, labelW = 78, gap = 24, width = 720;
  const half = (width - labelW - gap) / 2;
  const countMax = Math.max(1, ...keys.map((k) => r.bySeverity[k].count));
  const timeMax = Math.max(1, ...keys.map((k) => r.bySeverity[k].timeToAcknowledge.p99 || 0));
  const x2 = labelW + half + gap;
  const parts = [
    svg('text', { x: labelW, y: 13, class: 'axis' }, 'Notifications: acknowledged, open, overdue'),
    svg('text', { x: x2, y: 13, class: 'axis' }, 'Time to acknowledge: p50, p90, p99'),
  ];
  keys.forEach((k, i) => {
    const f = r.bySeverity[k];
    const y = top + i * rowH;
    const name = displayText(k);
    // The label has 78 px: a longer severity is cut to fit, whole in the table below.
    parts.push(svg('text', { x: 0, y: y + 20, class: 'sevlabel' }, k.length > 9 ? firstChars(k, 8) + '…' : k, svg('title', {}, name)));
    const scale = (n) => (n / countMax) * (half - 175);
    const overdue = f.overdue, waiting = f.open - f.overdue;
    let x = labelW;
    for (const [n, cls, what] of [[f.acknowledged, 'ack', 'acknowledged'], [waiting, 'open', 'open'], [overdue, 'overdue', 'overdue']]) {
      if (!n) continue;
      const w = Math.max(2, scale(n));
      parts.push(svg('rect', { x, y: y + 6, width: w, height: 20, class: 'bar ' + cls }, svg('title', {}, `${name}: ${n} ${what}`)));
      x += w;
    }
    parts.push(svg('text', { x: x + 6, y: y + 21, class: 'val' }, `${f.acknowledged} ack · ${f.open} open` + (overdue ? ` · ${overdue} overdue` : '')));
    if (f.withinPolicy !== null) {
      parts.push(svg('text', { x: labelW, y: y + 39, class: 'val within' + (f.withinPolicy < 1 ? ' bad' : '') }, `${share(f.withinPolicy)} within policy`));
    }
    const t = f.timeToAcknowledge;
    if (t.p50 === null) {
      parts.push(svg('text', { x: x2, y: y + 21, class: 'val muted' }, 'none acknowledged yet'));
      return;
    }
    [['p50', t.p50], ['p90', t.p90], ['p99', t.p99]].forEach(([name, v], j) => {
      const w = Math.max(2, (v / timeMax) * (half - 110));
      const yy = y + 2 + j * 13;
      parts.push(svg('rect', { x: x2 + 30, y: yy, width: w, height: 10, class: 'bar ' + name }, svg('title', {}, `${displayText(k)} ${name}: ${dur(v)}`)));
      parts.push(svg('text', { x: x2, y: yy + 9, class: 'pname' }, name));
      parts.push(svg('text', { x: x2 + 36 + w, y: yy + 9, class: 'pval' }, dur(v)));
    });
  });
  const height = top + keys.length * rowH;
  const summary = keys.map((k) => {
    const f = r.bySeverity[k];
    return `${displayText(k)}: ${f.acknowledged} acknowledged, ${f.open} open, ${f.overdue} overdue, ${share(f.withinPolicy)} within policy, p50 ${dur(f.timeToAcknowledge.p50)}`;
  }).join('; ');
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': 'Acknowledgement by severity, last 24 hours. ' + summary }, parts);
}

function reportTable(r, keys) {
  const row = (name, f, cls) => el('tr', { class: cls, dataset: { severity: name } },
    el('th', { scope: 'row' }, name), el('td', { class: 'num' }, f.count), el('td', { class: 'num' }, f.acknowledged),
    el('td', { class: 'num' }, f.open), el('td', { class: 'num' + (f.overdue ? ' bad' : '') }, f.overdue),
    el('td', { class: 'num' + (f.withinPolicy !== null && f.withinPolicy < 1 ? ' bad' : '') }, share(f.withinPolicy)),
    el('td', { class: 'num' }, dur(f.timeToAcknowledge.p50)), el('td', { class: 'num' }, dur(f.timeToAcknowledge.p90)),
    el('td', { class: 'num' }, dur(f.timeToAcknowledge.p99)));
  return el('table', { class: 'report-table' },
    el('caption', { class: 'visually-hidden' }, 'Acknowledgement by severity, last 24 hours'),
    el('thead', {}, el('tr', {}, el('th', {}, 'Severity'), el('th', { class: 'num' }, 'Sent'), el('th', { class: 'num' }, 'Acknowledged'),
      el('th', { class: 'num' }, 'Open'), el('th', { class: 'num' }, 'Overdue'),
      el('th', { class: 'num', title: "Acknowledged before the policy's first step came due" }, 'Within policy'), el('th', { class: 'num' }, 'p50'),
      el('th', { class: 'num' }, 'p90'), el('th', { class: 'num' }, 'p99'))),
    el('tbody', {}, keys.map((k) => row(displayText(k), r.bySeverity[k])), keys.length > 1 ? row('all', r, 'total') : null));
}

async function loadReport() {
  reportAt = Date.now();
  const box = $('report');
  try {
    const r = await call('GET', '/reports/acknowledgement');
    const keys = severities(r.bySeverity);
    $('report-when').textContent = 'as of ' + when(new Date(serverNow())).slice(11);
    if (!keys.length) {
      box.replaceChildren(el('div', { class: 'empty' }, 'No notification was sent in the last 24 hours.'));
      return;
    }
    box.replaceChildren(reportChart(r, keys), reportTable(r, keys));
  } catch (e) {
    if (e instanceof Refused && e.status === 401) return;
    $('report-when').textContent = 'not updated';
    if (!box.querySelector('svg')) box.replaceChildren(el('div', { class: 'empty' }, 'The report is not available: ' + e.message));
  }
}

// With the live picture: read again when the unacknowledged list changed (something was sent,
// escalated or acknowledged), and at least every 30 s.
function refreshReport(open) {
  // A step firing is also when a notification turns overdue: the levels are part of the key.
  const now = open ? `${open.total}:${open.notifications.map((n) => `${n.id}@${n.escalationLevel}`).join(',')}` : 'unknown';
  if (now !== reportKey || Date.now() - reportAt >= 30000) {
    reportKey = now;
    loadReport();
  }
}
setInterval(() => { if (picture && !$('dashboard').hidden && Date.now() - reportAt >= 30000) loadReport(); }, 5000);

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
