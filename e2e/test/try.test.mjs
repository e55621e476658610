// The try-it page at /try in a real Chromium: with development credentials (no JWT_SECRET) it mints a
// token, connects the socket.io-client it serves, shows a notification sent through the HTTP API,
// acknowledges it and extends the session from the page; two tabs join a study room and see each other
// there and typing; with a JWT_SECRET set, /try is a 404.
// Screenshots: e2e/output/try-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid } from '../helpers.mjs';
import { Browser } from '../browser.mjs';

test('try: connects as a chosen user, shows an API notification, acknowledges and extends', async () => {
  // No JWT_SECRET: Herald generates a development secret, and serves /try.
  const server = await startServer({ JWT_SECRET: null });
  const b = await Browser.open('try');
  const { page } = b;
  try {
    await page.goto(`${server.url}/try`);
    await page.locator('#connect-form').waitFor();
    await b.shot('start');

    const user = rid('newcomer');
    await page.fill('#user', user);
    await page.fill('#role', 'technologist');
    await page.click('#connect');
    await page.locator('#status', { hasText: 'Connected' }).waitFor();
    await page.locator('.event .name', { hasText: /^connected$/ }).waitFor();
    const sessionId = await page.inputValue('#session');
    assert.ok(sessionId, 'the minted session id is shown');
    assert.match(await page.textContent('#curl'), new RegExp(`/api/v1/users/${user}/notifications`));
    // The server sees the page's socket as that user and role.
    const sessions = await server.api('GET', `/api/v1/users/${user}/sessions`);
    assert.equal(sessions.body.sessions.length, 1);
    assert.equal(sessions.body.sessions[0].role, 'technologist');

    // A notification sent through the HTTP API (as the page's curl line does) appears on the page.
    const sent = await server.notify(user, { type: 'critical_finding', severity: 'critical', title: 'Critical Finding Detected' });
    assert.equal(sent.status, 202);
    assert.equal(sent.body.deliveredTo, 1);
    const item = page.locator('.event.notification', { hasText: sent.body.notification.id });
    await item.waitFor();
    await b.shot('notification');

    await item.locator('button', { hasText: 'Acknowledge' }).click();
    await item.locator('.tag.ok', { hasText: 'Acknowledged' }).waitFor();
    await page.locator('.event .name', { hasText: 'notification_acknowledged' }).waitFor();
    const state = await server.api('GET', `/api/v1/users/${user}/notifications/${sent.body.notification.id}`);
    assert.equal(state.body.state, 'acknowledged');

    await page.click('#extend');
    await page.locator('.event .name', { hasText: 'session_extended' }).waitFor();
    await page.locator('.event', { hasText: 'extend_session answer' }).waitFor();
    assert.match(await page.textContent('.event:has-text("extend_session answer") pre'), /"ok": true/);
    await b.shot('acknowledged-and-extended');
    assert.deepEqual(b.unexpectedErrors(), []);
  } finally {
    await b.close();
    await server.stop();
  }
});

test('try: two tabs join a study room, see each other in room_presence and see each other typing', async () => {
  const server = await startServer({ JWT_SECRET: null, HERALD_ROOMS_PRESENCE_WINDOW: '100ms' });
  const b = await Browser.open('try-room');
  const { page } = b;
  const other = await b.context.newPage();
  try {
    const room = `study:${rid('1.2.840')}`;
    const tabs = [[page, rid('reader')], [other, rid('second')]];
    for (const [p, user] of tabs) {
      await p.goto(`${server.url}/try`);
      await p.fill('#user', user);
      await p.click('#connect');
      await p.locator('#status', { hasText: 'Connected' }).waitFor();
      assert.equal(await p.isDisabled('#draft'), true, 'no typing before joining');
      await p.fill('#room', room);
      await p.click('#join');
      await p.locator(`#room-members [data-member="${user}"]`).waitFor();
    }
    const [[, reader], [, second]] = tabs;
    // The first tab hears the second join (room_presence), and the page's answer listed both for the second.
    await page.locator(`#room-members [data-member="${second}"]`).waitFor();
    await page.locator('.event .name', { hasText: /^room_presence$/ }).first().waitFor();
    await other.locator(`#room-members [data-member="${reader}"]`).waitFor();
    const api = await server.api('GET', `/api/v1/rooms/${encodeURIComponent(room)}`);
    assert.deepEqual(api.body.members.map((m) => m.userId).sort(), [reader, second].sort());

    // The second tab types in the draft: the first shows it typing, then not once the keys stop.
    await other.click('#draft');
    await other.keyboard.type('Findings: ', { delay: 20 });
    await page.locator('#typing', { hasText: `${second} is typing` }).waitFor();
    await page.locator('.event .name', { hasText: /^typing$/ }).first().waitFor();
    await b.shot('typing');
    await page.locator('#typing', { hasText: /^$/ }).waitFor();
    assert.equal(await other.textContent('#typing'), '', 'their own typing is not news to them');

    // The second tab leaves: the first sees one member.
    await other.click('#leave');
    await page.locator(`#room-members [data-member="${second}"]`).waitFor({ state: 'detached' });
    await page.locator(`#room-members [data-member="${reader}"]`).waitFor();
    await b.shot('left');
    assert.deepEqual(b.unexpectedErrors(), []);
  } finally {
    await b.close();
    await server.stop();
  }
});

test('try: with a JWT_SECRET set, /try and its token mint are 404', async () => {
  const server = await startServer();
  try {
    for (const path of ['/try', '/try/socket.io.min.js', '/try/try.js', '/try/call.js']) {
      const r = await server.api('GET', path, undefined, { key: null });
      assert.equal(r.status, 404, path);
    }
    const mint = await server.api('POST', '/try/token', { userId: 'u1', role: 'radiologist' }, { key: null });
    assert.equal(mint.status, 404);
  } finally {
    await server.stop();
  }
});
