// The nginx example of docs/cluster.md (docs/nginx/herald.conf), run for real: the file is rendered with
// the three nodes' ports and a spare listen port, nginx runs as a child (daemon off, pid/logs/temp in a temp
// dir), and socket.io-client connects through it (polling with upgrade, websocket only, polling only) and
// receives notifications posted through nginx's /api/v1.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rid, sleep, eventually } from '../helpers.mjs';
import { startCluster } from '../cluster.mjs';
import { NO_NGINX, startNginx } from '../nginx.mjs';

describe('nginx in front of three nodes (docs/nginx/herald.conf)', { skip: NO_NGINX }, () => {
  let cl;
  let nginx;
  let edge; // a HeraldServer handle pointed at nginx: api() and connect() go through it
  const errorLog = () => nginx?.errorLog() ?? '';
  const accessLog = () => nginx?.accessLog() ?? [];
  before(async () => {
    cl = await startCluster({ nodes: 3, env: { HERALD_PING_INTERVAL: '500ms', HERALD_PING_TIMEOUT: '2s' } });
    nginx = await startNginx(cl);
    edge = nginx.edge;
  });
  after(async () => {
    await nginx?.stop();
    await cl?.stop();
  });

  it('polling with upgrade, websocket only and polling only all connect through nginx and get notifications posted through it', async () => {
    const userId = rid('u');
    const tok = () => cl.token({ userId, sessionId: rid('s'), role: 'radiologist' });
    const upgraded = await edge.connect({ token: tok() });
    const wsOnly = await edge.connect({ token: tok(), transports: ['websocket'] });
    const pollOnly = await edge.connect({ token: tok(), transports: ['polling'] });
    const socks = [upgraded, wsOnly, pollOnly];
    try {
      await eventually(() => upgraded.socket.io.engine.transport.name === 'websocket', 5000).catch(() => {
        throw new Error(`the polling client was not upgraded to websocket through nginx${errorLog()}`);
      });
      assert.equal(wsOnly.socket.io.engine.transport.name, 'websocket');
      // a few ping rounds (500 ms) of long-polling, every request sticky to the node that opened the session
      await sleep(2000);
      for (const s of socks) assert.equal(s.connected, true, `${JSON.stringify(s.summary())}${errorLog()}`);
      assert.equal(pollOnly.socket.io.engine.transport.name, 'polling');

      const sessions = await edge.api('GET', `/api/v1/users/${userId}/sessions`);
      assert.equal(sessions.status, 200, sessions.text);
      assert.deepEqual(
        sessions.body.sessions.map((x) => x.transport).sort(),
        ['polling', 'websocket', 'websocket'],
        sessions.text,
      );

      const sent = [];
      for (let i = 0; i < 6; i++) {
        const r = await edge.notify(userId, { id: rid(`via-nginx-${i}`), title: `through nginx ${i}` });
        assert.equal(r.status, 202, r.text);
        assert.equal(r.body.deliveredTo, 3, `notification ${i}: ${r.text}`);
        sent.push(r.body.notification.id);
      }
      for (const s of socks) {
        const got = await s.waitForN('critical_notification', sent.length, 5000);
        assert.deepEqual(got.map((n) => n.id).sort(), [...sent].sort());
      }
      for (const s of socks) assert.deepEqual(await s.none('critical_notification', 300), []);

      // the API calls were spread over the nodes, so delivery crossed nodes
      const apiUpstreams = new Set(
        accessLog()
          .filter((l) => l.startsWith('POST /api/v1/users/'))
          .map((l) => l.split(' ')[3]),
      );
      assert.ok(apiUpstreams.size >= 2, `least_conn spread the API calls: ${[...apiUpstreams].join(', ')}`);

      // an acknowledgement over the websocket-only socket is heard on the polling one
      const ack = await wsOnly.emitAck('acknowledge_notification', { notificationId: sent[0] });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.equal((await pollOnly.waitFor('notification_acknowledged', 5000)).notificationId, sent[0]);
    } finally {
      socks.forEach((s) => s.close());
    }
  });

  it('the event API and /readyz work through nginx', async () => {
    const role = rid('role');
    const c = await edge.connect({ token: cl.token({ userId: rid('u'), sessionId: rid('s'), role }), transports: ['websocket'] });
    try {
      const r = await edge.api('POST', `/api/v1/roles/${role}/events`, { event: 'worklist_updated', data: { n: 1 } });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.deliveredTo, 1, r.text);
      assert.deepEqual(await c.waitFor('worklist_updated'), { n: 1 });
      const ready = await fetch(`${edge.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.equal((await ready.json()).redis, 'ok');
    } finally {
      c.close();
    }
  });
});
