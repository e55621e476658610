// Logs: human text by default, JSON lines with HERALD_LOG_FORMAT=json, a request id on every API line
// (and the X-Request-Id header), never a token, an API key, the JWT secret or a notification body.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, rid } from '../helpers.mjs';

describe('logs', () => {
  const servers = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  it('are human text by default', async () => {
    const srv = await startServer();
    servers.push(srv);
    assert.equal((await srv.api('GET', '/api/v1/users')).status, 200);
    await srv.stop();
    const lines = srv.log.split('\n').filter(Boolean);
    assert.ok(lines.some((l) => /INFO .*herald listening/.test(l)), srv.log.slice(0, 2000));
    assert.ok(lines.every((l) => !l.startsWith('{')), 'no JSON line');
  });

  it('are JSON lines with HERALD_LOG_FORMAT=json, with the request id on API lines and no secret at trace level', async () => {
    const srv = await startServer({ HERALD_LOG_FORMAT: 'json', HERALD_LOG: 'trace' });
    servers.push(srv);
    const a = srv.identity();
    const marker = `body-${rid('secret')}`;
    const c = await srv.connect({ token: a.token });
    const sent = await srv.notify(a.userId, { title: marker, body: { text: marker }, patientId: marker });
    assert.equal(sent.status, 202);
    const generated = sent.headers.get('x-request-id');
    assert.match(generated || '', /^[0-9a-f]{16}$/);
    const n = await c.waitFor('critical_notification');
    assert.equal((await c.emitAck('acknowledge_notification', { notificationId: n.id })).ok, true);
    const fresh = srv.token({ userId: a.userId, sessionId: a.sessionId, role: a.role });
    assert.equal((await c.emitAck('refresh_token', { token: fresh })).ok, true);
    // A caller's own id is kept; a malformed one is replaced.
    const mine = await srv.api('GET', `/api/v1/users/${a.userId}`, undefined, { headers: { 'x-request-id': 'pacs-req-42' } });
    assert.equal(mine.headers.get('x-request-id'), 'pacs-req-42');
    const forged = await srv.api('GET', '/api/v1/users', undefined, { headers: { 'x-request-id': 'a b\tc' } });
    assert.match(forged.headers.get('x-request-id'), /^[0-9a-f]{16}$/);
    const refused = await srv.api('GET', '/api/v1/users', undefined, { key: 'not-a-key-0123456789' });
    assert.equal(refused.status, 401);
    c.close();
    await srv.stop();

    const lines = srv.log.split('\n').filter(Boolean);
    const records = lines.map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        assert.fail(`not a JSON line: ${l}`);
      }
    });
    for (const r of records) {
      assert.ok(r.timestamp && r.level && r.target, JSON.stringify(r));
      assert.ok(r.fields && Object.keys(r.fields).length > 0, JSON.stringify(r));
    }
    const apiLines = records.filter((r) => r.target === 'herald::http');
    const lineOf = (id) => apiLines.find((r) => r.span?.id === id);
    const sendLine = lineOf(generated);
    assert.ok(sendLine, `an access line with request id ${generated}`);
    assert.equal(sendLine.fields.route, '/api/v1/users/{user_id}/notifications');
    assert.equal(sendLine.fields.status, 202);
    assert.ok(lineOf('pacs-req-42'), "the caller's request id on its line");
    assert.ok(apiLines.some((r) => r.fields.status === 401 && r.fields.route === 'unmatched'));
    for (const r of apiLines.filter((r) => r.fields.path?.startsWith('/api/v1'))) assert.ok(r.span?.id, `request id on ${JSON.stringify(r)}`);

    for (const [what, secret] of [
      ['token', a.token],
      ['refreshed token', fresh],
      ['API key', srv.apiKey],
      ['wrong API key', 'not-a-key-0123456789'],
      ['JWT secret', srv.secret],
      ['notification body', marker],
    ]) {
      assert.ok(!srv.log.includes(secret), `the ${what} is in the log`);
    }
  });
});
