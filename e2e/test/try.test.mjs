// The try-it page at /try in a real Chromium: with development credentials (no JWT_SECRET) it mints a
// token, connects the socket.io-client it serves, shows a notification sent through the HTTP API,
// acknowledges it and extends the session from the page; with a JWT_SECRET set, /try is a 404.
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
