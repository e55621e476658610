// The operators' dashboard at /admin in a real Chromium, against a real server and real socket.io-client
// sockets: sign-in (wrong key, then the right one), connected users, a test notification sent from the
// page and received by the client, the unacknowledged list and the timeline, acknowledgement from the
// client, the study rooms and their members, expiring a session and disconnecting a user from the page,
// the closed loop (a policy of seconds: the escalation level in the list, the timeline's audit records,
// the acknowledgement report's chart), and the error states (server unreachable; the store unavailable
// on a full disk, the list then unknown; Redis degraded in a cluster, where a study room with a member on
// each node is listed whole). Screenshots of every state: e2e/output/admin-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, rid, eventually } from '../helpers.mjs';
import { smallDisk } from '../disk.mjs';
import { startCluster } from '../cluster.mjs';
import { Browser } from '../browser.mjs';

const ADMIN_KEY = `admin-${randomBytes(16).toString('hex')}`;

// The console errors the page cannot avoid: Chromium logs every 4xx answer, here the 401 of the
// deliberately wrong key and the 404 of the deliberately unknown notification id.
const ASKED_FOR = [/status of 401/, /status of 404/];

async function signIn(page, key) {
  await page.fill('#key', key);
  await page.press('#key', 'Enter');
}

/** The dialog's confirm button, once the dialog is open. */
async function confirm(page, b, state) {
  await page.locator('#confirm[open]').waitFor();
  if (state) await b.shot(state);
  await page.click('#confirm-ok');
  await page.locator('#confirm[open]').waitFor({ state: 'detached' }).catch(() => {});
}

test('dashboard: sign-in, live users, send, acknowledge, expire, disconnect, unreachable', async () => {
  const server = await startServer({ HERALD_ADMIN_KEYS: ADMIN_KEY, HERALD_SESSION_IDLE_TIMEOUT: '10m' });
  const b = await Browser.open('admin');
  const { page } = b;
  try {
    await page.goto(`${server.url}/admin`);
    await page.locator('#sign-in-form').waitFor();
    await b.shot('sign-in');

    // A wrong key (an API key is not an admin key here): refused, and the dashboard stays hidden.
    await signIn(page, server.apiKey);
    await page.locator('#sign-in-error').waitFor();
    assert.match(await page.textContent('#sign-in-error'), /refused/);
    assert.equal(await page.isVisible('#dashboard'), false);
    await b.shot('wrong-key');

    await signIn(page, ADMIN_KEY);
    await page.locator('#dashboard').waitFor();
    await page.locator('#pill-live', { hasText: 'Live' }).waitFor();
    await page.locator('#users-empty').waitFor();
    assert.equal(await page.textContent('#pill-store'), 'Store OK');
    await b.shot('signed-in-empty');

    // Two users connect with the real client: one on websocket, one staying on polling.
    const alice = server.identity({ userId: rid('alice'), role: 'radiologist' });
    const bob = server.identity({ userId: rid('bob'), role: 'technologist' });
    const a = await server.connect({ token: alice.token, transports: ['websocket'] });
    const bo = await server.connect({ token: bob.token, transports: ['polling'] });
    await page.locator(`[data-user="${alice.userId}"]`).waitFor();
    await page.locator(`[data-user="${bob.userId}"]`).waitFor();
    await page.locator('#t-sockets', { hasText: '2' }).waitFor();
    assert.match(await page.textContent('#t-transports'), /1 websocket, 1 polling/);
    const idle = page.locator(`[data-session="${alice.sessionId}"] .idle`);
    assert.match(await idle.textContent(), /^(10:00|9:[0-5]\d) left$/, 'the idle clock of a 10 min timeout');
    await b.shot('users-connected');

    // Study rooms, read-only: the room both joined is listed with its members; alice's second tab
    // counts as one member with two sockets; a leave takes bob out; an emptied room goes.
    const room = `study:${rid('1.2.840')}`;
    for (const u of [alice, bob]) {
      assert.equal((await server.api('PUT', `/api/v1/rooms/${encodeURIComponent(room)}/members/${u.userId}`)).status, 201);
    }
    const a2 = await server.connect({ token: alice.token, transports: ['websocket'] });
    for (const c of [a, a2, bo]) assert.equal((await c.emitAck('join_room', { room })).ok, true);
    const roomRow = page.locator(`#rooms tr[data-room="${room}"]`);
    await roomRow.locator(`[data-member="${bob.userId}"]`).waitFor();
    await roomRow.locator(`[data-member="${alice.userId}"]`, { hasText: '2 sockets' }).waitFor();
    assert.equal((await roomRow.locator('td.num').textContent()).trim(), '2');
    assert.equal(await page.textContent('#rooms-count'), '1');
    await b.shot('rooms');
    assert.equal((await bo.emitAck('leave_room', { room })).ok, true);
    await roomRow.locator(`[data-member="${bob.userId}"]`).waitFor({ state: 'detached' });
    a2.close();
    await roomRow.locator(`[data-member="${alice.userId}"]`, { hasText: '1 socket' }).waitFor();
    assert.equal((await a.emitAck('leave_room', { room })).ok, true);
    await roomRow.waitFor({ state: 'detached' });
    await page.locator('#rooms-empty').waitFor();

    // Send a test notification from the form, with the keyboard: the client receives it.
    await page.click(`[data-user="${alice.userId}"] button:has-text("Send test")`);
    assert.equal(await page.inputValue('#send-user'), alice.userId);
    await page.selectOption('#send-severity', 'critical');
    await page.fill('#send-title', 'Dashboard check');
    await page.press('#send-title', 'Enter');
    await confirm(page, b, 'confirm-send');
    const n = await a.waitFor('critical_notification', 5000);
    assert.equal(n.title, 'Dashboard check');
    assert.equal(n.severity, 'critical');
    assert.equal(n.type, 'test');

    // It is in the unacknowledged list, and its timeline says delivered, not yet acknowledged.
    const row = page.locator(`#unacked tr[data-id="${n.id}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /critical/i);
    await page.locator('#t-unacked', { hasText: '1' }).waitFor();
    await row.focus();
    await page.keyboard.press('Enter');
    await page.locator('#timeline tr.rec.delivered', { hasText: alice.userId }).waitFor();
    await page.locator('#timeline .tag.waiting', { hasText: alice.userId }).waitFor();
    await b.shot('unacknowledged-with-timeline');

    // The client acknowledges: the row leaves the list, the timeline shows the acknowledgement.
    const ack = await a.emitAck('acknowledge_notification', { notificationId: n.id, userId: alice.userId });
    assert.equal(ack.ok, true);
    await row.waitFor({ state: 'detached' });
    await page.locator('#unacked-empty').waitFor();
    await page.locator('#timeline .tag.acked', { hasText: alice.userId }).waitFor();
    await page.locator('#timeline tr.rec.acknowledged', { hasText: alice.userId }).waitFor();
    await b.shot('acknowledged');

    // Out of the list, a notification is found by its id; an unknown id is said to be unknown.
    await page.fill('#lookup-id', 'no-such-notification');
    await page.press('#lookup-id', 'Enter');
    await page.locator('#timeline', { hasText: 'No notification with this id' }).waitFor();
    await page.fill('#lookup-id', n.id);
    await page.press('#lookup-id', 'Enter');
    await page.locator('#timeline tr.rec.acknowledged', { hasText: alice.userId }).waitFor();

    // Expire alice's session from the page: her socket is told, then disconnected.
    await page.click(`[data-session="${alice.sessionId}"] button:has-text("Expire")`);
    await confirm(page, b, 'confirm-expire');
    const expired = await a.waitFor('session_expired', 5000);
    assert.equal(expired.sessionId, alice.sessionId);
    await a.waitFor('disconnect', 5000);
    await page.locator(`[data-user="${alice.userId}"]`).waitFor({ state: 'detached' });
    await page.locator('#notice', { hasText: 'Expired session' }).waitFor();
    await b.shot('session-expired');

    // Cancelling a confirmation does nothing; confirming disconnects bob.
    await page.click(`[data-user="${bob.userId}"] button:has-text("Disconnect")`);
    await page.locator('#confirm[open]').waitFor();
    await page.keyboard.press('Escape');
    await page.locator(`[data-user="${bob.userId}"]`).waitFor();
    const still = await bo.emitAck('activity');
    assert.equal(still.ok, true, 'a cancelled disconnect left the socket up');
    await page.click(`[data-user="${bob.userId}"] button:has-text("Disconnect")`);
    await confirm(page, b, 'confirm-disconnect');
    await bo.waitFor('disconnect', 5000);
    await page.locator('#users-empty').waitFor();
    await b.shot('user-disconnected');

    // The server goes away: the page says so and keeps the last figures.
    await server.stop();
    await page.locator('#banner-unreachable').waitFor();
    await page.locator('#pill-live', { hasText: 'Unreachable' }).waitFor();
    await b.shot('server-unreachable');

    assert.deepEqual(b.unexpectedErrors(ASKED_FOR), []);
  } finally {
    await b.close();
    await server.stop();
  }
});

test('dashboard: escalation in the list, the timeline of audit records, the acknowledgement report', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-admin-loop-'));
  const config = join(dir, 'herald.toml');
  // Seconds, so the test sees the steps fire; the last step is far, so the list shows it as next.
  writeFileSync(
    config,
    `[escalation.policies.critical]
steps = [
  { after = "3s", renotify = true },
  { after = "6s", to_role = "attending" },
  { after = "1h", renotify = true },
]
`,
  );
  const server = await startServer({ HERALD_CONFIG: config, HERALD_ADMIN_KEYS: ADMIN_KEY });
  const b = await Browser.open('admin-loop');
  const { page } = b;
  try {
    const doctor = server.identity({ userId: rid('okafor'), role: 'radiologist' });
    const tab = await server.connect({ token: doctor.token });
    await page.goto(`${server.url}/admin`);
    await signIn(page, ADMIN_KEY);
    await page.locator('#pill-live', { hasText: 'Live' }).waitFor();
    await page.locator('#report', { hasText: 'No notification was sent' }).waitFor();

    const sent = await server.notify(doctor.userId, { id: rid('ct'), severity: 'critical', title: 'Pulmonary embolism' });
    assert.equal(sent.status, 202, sent.text);
    const id = sent.body.notification.id;
    const routine = await server.notify(doctor.userId, { id: rid('mr'), severity: 'low', title: 'Follow-up advised' });
    assert.equal(routine.status, 202, routine.text);
    const row = page.locator(`#unacked tr[data-id="${id}"]`);
    await row.locator('.esc', { hasText: 'level 0/3' }).waitFor();
    assert.match(await row.locator('.esc .next').textContent(), /next: reminder( in \d+ s|, due now)/);
    assert.equal(await row.locator('.overdue').isVisible(), false, 'not overdue before its first step');
    assert.equal((await page.textContent(`#unacked tr[data-id="${routine.body.notification.id}"] .esc`)).trim(), '—', 'no policy for low');
    await b.shot('escalation-waiting');

    // 3 s: reminded (level 1) and overdue; 6 s: escalated to the role (level 2), the 1 h reminder next.
    await tab.waitFor('critical_notification', 5000);
    await row.locator('.esc', { hasText: 'level 1/3' }).waitFor({ timeout: 5000 });
    await row.locator('.overdue').waitFor();
    await row.locator('.esc', { hasText: 'level 2/3' }).waitFor({ timeout: 6000 });
    assert.match(await row.locator('.esc .next').textContent(), /next: reminder in 59 min/);
    await b.shot('escalated-overdue');

    // The timeline from the list, by keyboard: the audit records oldest first.
    await row.focus();
    await page.keyboard.press('Enter');
    const records = page.locator('#timeline tr.rec');
    await page.locator('#timeline tr.rec.escalated').waitFor();
    const types = await records.evaluateAll((rs) => rs.map((r) => r.dataset.type));
    assert.deepEqual(types.slice(0, 1), ['created']);
    for (const t of ['delivered', 'reminded', 'escalated']) assert.ok(types.includes(t), `${t} in ${types}`);
    assert.ok(types.indexOf('reminded') < types.indexOf('escalated'), 'oldest first');
    assert.match(await page.textContent('#timeline tr.rec.escalated'), /to role attending/);
    assert.match(await page.textContent('#timeline tr.rec.delivered'), new RegExp(doctor.userId));
    await b.shot('timeline');

    // The doctor acknowledges: the row goes, the timeline says acknowledged and closed, the chart counts it.
    const ack = await tab.emitAck('acknowledge_notification', { notificationId: id, userId: doctor.userId });
    assert.equal(ack.ok, true);
    await row.waitFor({ state: 'detached' });
    await page.locator('#timeline tr.rec.closed').waitFor();
    const critical = page.locator('#report tr[data-severity="critical"]');
    await critical.waitFor();
    const cells = await critical.locator('td').allTextContents();
    // Acknowledged after its first step (3 s) came due: not within policy.
    assert.deepEqual(cells.slice(0, 5), ['1', '1', '0', '0', '0.0%'], 'sent, acknowledged, open, overdue, within policy');
    assert.match(cells[5], /^\d+ s$/, 'p50 time to acknowledge');
    const low = await page.locator('#report tr[data-severity="low"] td').allTextContents();
    assert.deepEqual(low.slice(0, 5), ['1', '0', '1', '0', '—'], 'no policy: nothing to be within');
    assert.match(await page.getAttribute('#report svg', 'aria-label'), /critical: 1 acknowledged, 0 open, 0 overdue, 0\.0% within policy/);
    assert.equal(await page.locator('#report svg text.within').count(), 1, 'the share under the critical bar only');
    assert.equal(await page.textContent('#report svg text.within'), '0.0% within policy');
    assert.ok((await page.locator('#report svg rect.bar.ack').count()) >= 1);
    await page.locator('.area-report').scrollIntoViewIfNeeded();
    await b.shot('report');
    assert.deepEqual(b.unexpectedErrors(), []);
  } finally {
    await b.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// Any JSON a backend may send in a field the dashboard shows, as raw JSON text (so that `__proto__` stays a key):
// values whose string conversion throws (an object whose `toString` is not a function), every other JSON
// kind, markup (each element marked `data-injected`, so one that became HTML is found), names of
// Object.prototype's members, and 10 KB of text.
const LONG = 'W'.repeat(10 * 1024);
const HOSTILE = [
  '{"toString":0}',
  '{"toString":0,"valueOf":0}',
  '{"__proto__":{"polluted":"yes"},"toString":0}',
  '{"constructor":{"prototype":{"polluted":"yes"}}}',
  '{"a":{"b":{"c":[{"d":"<script data-injected>alert(3)</script>"}]}}}',
  '[1,"two",{"three":3}]',
  '[]',
  '{}',
  '42',
  '0',
  '-1.5e300',
  'true',
  'false',
  'null',
  JSON.stringify('<img src=x data-injected onerror=alert(1)>'),
  JSON.stringify('<script data-injected>alert(2)</script>'),
  JSON.stringify('<b data-injected>bold</b> &amp; &lt;i&gt;'),
  JSON.stringify('<svg data-injected onload=alert(4)></svg>'),
  '"__proto__"',
  '"toString"',
  JSON.stringify(LONG),
];

// What the page shows for a value: strings as they are, anything else as its JSON; absent, null and ''
// leave the place to the next field (a title to the kind, the kind to the id).
const present = (v) => v !== undefined && v !== null && v !== '';
const asText = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

/** Asserts the text `got` shows `value`: exactly, or for a long value its start and a note that it was cut. */
function assertShows(got, value, what) {
  const want = asText(value);
  if (want.length <= 200) return assert.equal(got, want, what);
  assert.ok(got.startsWith(want.slice(0, 200)), `${what}: starts with the value`);
  assert.match(got, new RegExp(`cut.*${want.length}`), `${what}: says it was cut`);
  assert.ok(got.length < 1000, `${what}: ${got.length} characters shown`);
}

test('dashboard: hostile JSON in every field it shows is inert text, and the page stays live', async () => {
  const server = await startServer({ HERALD_ADMIN_KEYS: ADMIN_KEY });
  const b = await Browser.open('admin-hostile');
  const { page } = b;
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  try {
    // The ids, session and role a token may carry are strings of up to 256 characters: markup too.
    const who = server.identity({
      userId: '<img src=x data-injected onerror=alert(5)>',
      sessionId: '<b data-injected>session</b>',
      role: '<svg data-injected onload=alert(6)></svg>',
    });
    const tab = await server.connect({ token: who.token });
    const sent = [];
    const send = async (field, json) => {
      const id = rid(field);
      const others = { title: '"type":"hostile-title","severity":"low"', severity: '"type":"hostile-severity","title":"Severity test"', type: '"severity":"low"' }[field];
      const text = `{"id":"${id}",${others},"${field}":${json}}`;
      const r = await server.api('POST', `/api/v1/users/${encodeURIComponent(who.userId)}/notifications`, text, { raw: true });
      assert.equal(r.status, 202, `${field} ${json.slice(0, 80)}: ${r.text}`);
      sent.push({ id, body: JSON.parse(text) });
    };
    // Titles and severities wait before the page is opened (signing in reads them), kinds arrive while it is open.
    for (const json of HOSTILE) await send('title', json);
    for (const json of HOSTILE) await send('severity', json);

    await page.goto(`${server.url}/admin`);
    await signIn(page, ADMIN_KEY);
    await page.locator('#dashboard:visible, #sign-in-error:visible').first().waitFor();
    assert.equal(await page.isVisible('#sign-in-error'), false, `sign-in: ${await page.textContent('#sign-in-error')}`);
    await page.locator('#pill-live', { hasText: 'Live' }).waitFor();
    for (const json of HOSTILE) await send('type', json);

    // A critical notification after all of them shows, and the page is still live.
    const later = await server.notify(who.userId, { id: rid('later'), type: 'critical_finding', severity: 'critical', title: 'Later: critical finding' });
    assert.equal(later.status, 202, later.text);
    const laterRow = page.locator(`#unacked tr[data-id="${later.body.notification.id}"]`);
    await laterRow.waitFor();
    assert.equal(await laterRow.locator('.sev').textContent(), 'critical');
    assert.equal(await laterRow.locator('.sev').getAttribute('class'), 'sev critical');
    await page.locator('#t-unacked', { hasText: String(sent.length + 1) }).waitFor();
    assert.equal(await page.textContent('#pill-live'), 'Live');
    assert.equal(await page.isVisible('#banner-unreachable'), false);
    await b.shot('hostile-list');

    // Each value, in the list and in its timeline.
    let checked = 0;
    for (const { id, body } of sent) {
      const row = page.locator(`#unacked tr[data-id="${id}"]`);
      const sev = present(body.severity) ? body.severity : null;
      const name = present(body.title) ? body.title : present(body.type) ? body.type : null;
      const cells = row.locator('td');
      if (sev === null) assert.equal(await row.locator('.sev').textContent(), '—', `${id} severity`);
      else assertShows(await row.locator('.sev').textContent(), sev, `${id} severity`);
      assertShows(await cells.nth(3).textContent(), name ?? id, `${id} in the list`);
      assertShows(await cells.nth(3).getAttribute('title'), name ?? id, `${id} tooltip`);
      assert.equal(await cells.nth(2).textContent(), who.userId, `${id} recipient`);
      await row.click();
      const headline = page.locator(`#timeline[data-id="${id}"] .headline`);
      await headline.waitFor();
      await page.locator('#timeline .who', { hasText: who.userId }).waitFor();
      if (sev === null) assert.equal(await headline.locator('.sev').textContent(), '—');
      else assertShows(await headline.locator('.sev').textContent(), sev, `${id} timeline severity`);
      const shown = (await headline.textContent()).slice((await headline.locator('.sev').textContent()).length + 1);
      assertShows(shown, name ?? '', `${id} timeline headline`);
      checked += 1;
    }
    await b.shot('hostile-timeline');

    // The user, session and role as text in the users' panel; the severities as text in the report.
    const user = page.locator('#users .user').first();
    assert.equal(await user.locator('.name').textContent(), who.userId);
    assert.equal(await user.locator('.session .sid .mono').textContent(), who.sessionId);
    assert.equal(await user.locator('.session .tag').first().textContent(), who.role);
    await page.locator('#report table').waitFor();
    const rowNames = await page.locator('#report tbody th').allTextContents();
    for (const s of HOSTILE.map((j) => JSON.parse(j)).filter((v) => typeof v === 'string' && v.length <= 200)) {
      assert.ok(rowNames.includes(s), `report row for severity ${s} in ${rowNames}`);
    }
    assert.ok(rowNames.some((n) => n.startsWith('WWWW') && /cut/.test(n) && n.length < 1000), 'the 10 KB severity cut');
    await page.locator('.area-report').scrollIntoViewIfNeeded();
    await b.shot('hostile-report');

    // Nothing became an element, no script ran, nothing was polluted; the page stayed live throughout.
    const left = await page.evaluate(() => ({
      injected: document.querySelectorAll('[data-injected]').length,
      images: document.querySelectorAll('img').length,
      scripts: [...document.scripts].map((s) => new URL(s.src).pathname),
      polluted: ({}).polluted ?? null,
    }));
    assert.deepEqual(left, { injected: 0, images: 0, scripts: ['/admin/admin.js'], polluted: null });
    assert.deepEqual(dialogs, []);
    assert.equal(await page.textContent('#pill-live'), 'Live');
    assert.deepEqual(b.unexpectedErrors(), []);
    console.log(`hostile JSON: ${HOSTILE.length} values x 3 fields = ${checked} notifications, each in the list (badge, name, tooltip, recipient) and its timeline (badge, headline); plus user id, session id, role`);
    tab.close();
  } finally {
    await b.close();
    await server.stop();
  }
});

test('dashboard: the store unavailable on a full disk shows its banner, gone once space is back', async (t) => {
  const disk = smallDisk('4m');
  if (disk.skip) {
    disk.remove();
    return t.skip(disk.skip);
  }
  const server = await startServer({}, { dataDir: disk.dir });
  const b = await Browser.open('admin-store');
  const { page } = b;
  try {
    await page.goto(`${server.url}/admin`);
    await signIn(page, server.apiKey);
    await page.locator('#pill-store', { hasText: 'Store OK' }).waitFor();
    assert.equal(await page.isVisible('#banner-store'), false);

    // The disk fills: the next notifications cannot commit and are refused, and so is the readiness probe's
    // write that the dashboard's picture reads.
    const filler = disk.fill();
    const user = rid('full');
    await eventually(async () => (await server.notify(user, { title: 'x'.repeat(2000) })).status === 503, 10_000, 100);
    await page.locator('#banner-store').waitFor();
    await page.locator('#pill-store', { hasText: 'Store down' }).waitFor();
    assert.match(await page.textContent('#banner-store'), /refused \(503\)/);
    // The list is unknown, not empty: no "0", no "nothing waiting".
    await page.locator('#unacked-unknown', { hasText: 'Unknown: the store is not answering' }).waitFor();
    assert.equal(await page.textContent('#t-unacked'), '?');
    assert.equal(await page.isVisible('#unacked-empty'), false);
    await b.shot('store-unavailable');

    // Space again: the store commits, and the page says so on its own, without a reload or a restart.
    unlinkSync(filler);
    await page.locator('#pill-store', { hasText: 'Store OK' }).waitFor({ timeout: 15_000 });
    await page.locator('#banner-store').waitFor({ state: 'hidden' });
    await page.locator('#unacked-unknown').waitFor({ state: 'hidden' });
    assert.equal((await server.notify(user, { title: 'after' })).status, 202);
    await b.shot('store-back');
    assert.deepEqual(b.unexpectedErrors(), []);
  } finally {
    await b.close();
    await server.stop({ keepData: true });
    disk.remove();
  }
});

test('dashboard: a cluster shows sockets by node, and a Redis outage as degraded', async () => {
  const cluster = await startCluster({ nodes: 2 });
  const b = await Browser.open('admin-cluster');
  const { page } = b;
  try {
    const [na, nb] = cluster.nodes;
    // Two readers of one study, one on each node: node a's dashboard lists both in the room.
    const room = `study:${rid('1.2.840')}`;
    const [ua, ub] = [cluster.identity({ rooms: ['study:*'] }), cluster.identity({ rooms: ['study:*'] })];
    const a = await na.connect({ token: ua.token });
    const c = await nb.connect({ token: ub.token });
    for (const s of [a, c]) assert.equal((await s.emitAck('join_room', { room })).ok, true);
    await page.goto(`${na.url}/admin`);
    await signIn(page, cluster.apiKeys[0]);
    await page.locator('#pill-redis', { hasText: 'Redis OK' }).waitFor();
    await page.locator('#nodes tr', { hasText: 'node-b' }).waitFor();
    await page.locator('#nodes tr', { hasText: 'node-a' }).waitFor();
    const roomRow = page.locator(`#rooms tr[data-room="${room}"]`);
    await roomRow.locator(`[data-member="${ua.userId}"]`).waitFor();
    await roomRow.locator(`[data-member="${ub.userId}"]`).waitFor();
    await b.shot('two-nodes');

    await cluster.redis.stop();
    await page.locator('#banner-redis').waitFor();
    await page.locator('#pill-redis', { hasText: 'Redis degraded' }).waitFor();
    assert.match(await page.textContent('#banner-redis'), /own sockets/);
    await b.shot('redis-degraded');
    a.close();
    c.close();
    assert.deepEqual(b.unexpectedErrors(), []);
  } finally {
    await b.close();
    await cluster.stop();
  }
});
